"""HTTP for handlers of an http-server task: the request's method, path, query and headers,
and the reply's status and headers.

A plain handler reads the request with `request()` and may return a `Response`::

    import cocaine.http

    def users(body):
        req = cocaine.http.request()
        if req.method != "GET":
            return cocaine.http.Response(405, [("allow", "GET")], b"GET only\\n")
        return cocaine.http.Response(200, [("content-type", "application/json")], b"[]")

A streaming handler sets the head before its first write::

    @cocaine.streaming
    def upload(request, response):
        info = cocaine.http.Request.from_meta(request.meta)
        response.head(201, [("location", "/files/1")])
        response.write(b"stored %d bytes\\n" % len(request.read()))

Without a head the reply is `200` with no extra headers. The node sets `content-length`,
`transfer-encoding` and `connection` itself and drops them from a handler's headers.
On the wire the head is `[9, sid, {"status": int, "headers": [[name, value], ...]}]`.
"""

from urllib.parse import parse_qsl

from . import job as _job

__all__ = ["Request", "Response", "request", "check_head"]

_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789"
                   b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class Request:
    """An HTTP request as the node describes it in the job's `meta["http"]`.

    `method`, `path` (no query), `query` (as sent, not decoded) and `version` ("1.0" or
    "1.1") are strings; `headers` is a list of (name, value) with names lowercase, in the
    order received.
    """

    __slots__ = ("method", "path", "query", "version", "headers")

    def __init__(self, method, path, query="", version="1.1", headers=()):
        self.method = method
        self.path = path
        self.query = query
        self.version = version
        self.headers = [(str(n).lower(), str(v)) for n, v in headers]

    @classmethod
    def from_meta(cls, meta):
        """The request in an invoke's meta, or None when the job did not come over HTTP."""
        http = (meta or {}).get("http")
        if not isinstance(http, dict):
            return None
        return cls(http.get("method", ""), http.get("path", ""), http.get("query", ""),
                   http.get("version", "1.1"), http.get("headers") or ())

    def header(self, name, default=None):
        """The first value of header `name` (any case), or `default`."""
        name = name.lower()
        for n, v in self.headers:
            if n == name:
                return v
        return default

    def header_list(self, name):
        """Every value of header `name` (any case), in order."""
        name = name.lower()
        return [v for n, v in self.headers if n == name]

    @property
    def params(self):
        """The query decoded into a dict (the last value of a repeated key wins)."""
        return dict(parse_qsl(self.query, keep_blank_values=True))

    def __repr__(self):
        return "Request(%r, %r, query=%r)" % (self.method, self.path, self.query)


def request():
    """The HTTP request of the job whose handler runs in this thread, or None when that job
    did not come over HTTP (or when called outside a handler)."""
    job = _job.current()
    return Request.from_meta(job.meta) if job is not None else None


def check_head(status, headers):
    """Checks a reply head the node would accept; returns it as (int, [[str, str], ...]).

    Raises ValueError for a status outside 200..599, a header name that is not a token, or a
    value holding CR, LF or NUL (which could forge a second response).
    """
    if type(status) is not int or not 200 <= status <= 599:
        raise ValueError("an HTTP status must be an integer in 200..599, got %r" % (status,))
    pairs = []
    for pair in headers:
        try:
            name, value = pair
        except (TypeError, ValueError):
            raise ValueError("a header is a (name, value) pair, got %r" % (pair,)) from None
        name, value = str(name), str(value)
        raw = name.encode("utf-8", "replace")
        if not raw or any(b not in _TOKEN for b in raw):
            raise ValueError("invalid header name %r" % name)
        if any(c in value for c in "\r\n\0"):
            raise ValueError("header %r: a value must not hold CR, LF or NUL" % name)
        pairs.append([name, value])
    if len(pairs) > 256:
        raise ValueError("more than 256 headers")
    return status, pairs


class Response:
    """What a plain handler returns to choose the status and headers of its reply.

    `body` is bytes, a str (sent as UTF-8), an iterable of chunks, or None for an empty
    body. The head is checked here, so a bad one fails the job (502) from the handler's
    own line.
    """

    def __init__(self, status=200, headers=(), body=b""):
        self.status, self.headers = check_head(status, headers)
        self.body = body

    def _cocaine_split(self):
        """((status, headers), chunks) for the worker: the head, then the body as chunks."""
        body = self.body
        if body is None or isinstance(body, (bytes, bytearray, memoryview, str)):
            body = [body] if body else []
        return (self.status, self.headers), body

    def __repr__(self):
        return "Response(%d, %r)" % (self.status, self.headers)
