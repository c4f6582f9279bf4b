"""Calls balanced over a cluster by load (docs/cluster.md, "How balancing chooses").

    from cocaine.client import Client

    with Client.cluster(["tcp://127.0.0.1:5000"], "echo", "hello") as cluster:
        reply = cluster.call("hello", b"hi")      # a ClusterReply
        print(reply.body, reply.node_id, reply.retries)

1. **Resolve.** The client asks a node's control endpoint (`resolve`, docs/control.md) which
   nodes run the app, where the task listens on each and how loaded each is, and asks again
   every `refresh` seconds (one announcement interval) and after a node fails to answer. Any
   node answers for the whole cluster; control endpoints the answer names are remembered, so
   the client keeps finding the cluster when the node it was given goes away.
2. **Choose.** Power of two choices: two nodes drawn at random, the less loaded one takes the
   call. "Loaded" is, first, this client's own calls in flight there per worker the app may
   have (fresh), then the announced load, `(queue + busy) / pool_limit`, then the queue (up
   to a second old). A node whose queue is full, or whose app is not `running` or `starting`
   (a starting app counts as if all its workers were busy), is never chosen.
3. **Retry.** A 503 means the node's queue was full and the job never started: the call goes
   to another node. So does a call whose node does not answer within the timeout (the node
   died, or the connection was lost): the client resolves again first. Each node is tried
   at most once per call; any other error is the answer.

The choice is the Rust `ClusterClient`'s (`cocaine_core::cluster::balance`), written again
here; `tests/test_cluster.py` checks it against the same cases.

One `ClusterClient` may be shared by threads: each thread gets its own connection to each
node (a ZeroMQ socket is not thread-safe), and the in-flight counts are shared, which is what
makes them worth choosing on. Signing (`user=`, `key=`) signs the calls (for `app`) and the
`resolve` requests, as `Client` does.
"""

import json
import os
import random as _random
import threading
import time

__all__ = ["ClusterClient", "ClusterReply", "NoNodeError", "UnresolvedError", "SCALE",
           "score", "client_score", "power_of_two", "reachable", "parse_nodes"]

# The fixed-point unit of a score: one request waiting or running per worker.
SCALE = 1 << 16
# How often membership and load are asked for again, in seconds: the announcement interval.
REFRESH = 1.0
BUSY = 503
_WILDCARDS = ("*", "0.0.0.0", "[::]", "::")


class UnresolvedError(Exception):
    """No control endpoint answered `resolve` for the app."""


class NoNodeError(Exception):
    """No node runs the task with room for a request (or every one was tried)."""


class ClusterReply:
    """A call's reply: its `body` (the chunks joined), who answered (`node_id`, `endpoint`)
    and how many nodes were tried before (`retries`)."""

    def __init__(self, body, node_id, endpoint, retries):
        self.body = body
        self.node_id = node_id
        self.endpoint = endpoint
        self.retries = retries

    def __repr__(self):
        return "ClusterReply(%r from %s at %s, %d retries)" % (
            self.body[:64], self.node_id, self.endpoint, self.retries)


# -- the choice (pure) --------------------------------------------------------------------------


def score(node):
    """How loaded a node looks by its announcement: `(per_worker, queue)`, lower is better;
    None when it cannot take a request (full queue, or an app not running nor starting)."""
    state = node.get("state")
    if state not in ("running", "starting") or node["queue"] >= node["queue_limit"]:
        return None
    capacity = max(node["pool_limit"], 1)
    busy = capacity if state == "starting" else node["busy"]
    return ((node["queue"] + busy) * SCALE // capacity, node["queue"])


def client_score(node, in_flight):
    """This client's own calls in flight there per worker first, the announced score second;
    None when the node cannot take a request."""
    announced = score(node)
    if announced is None:
        return None
    return (in_flight * SCALE // max(node["pool_limit"], 1), announced)


def power_of_two(candidates, load, draw):
    """The index of the less loaded of two candidates drawn with `draw` (a uniform 64-bit
    integer); if both drawn cannot take the call, the least loaded that can. None when none
    can. The same draws as the core's `power_of_two`."""
    n = len(candidates)
    if n == 0:
        return None
    if n == 1:
        return 0 if load(candidates[0]) is not None else None
    a = draw % n
    step = 1 + (draw // n) % (n - 1)
    b = (a + step) % n
    la, lb = load(candidates[a]), load(candidates[b])
    if la is not None and (lb is None or la <= lb):
        return a
    if lb is not None:
        return b
    available = [(s, i) for i, s in ((i, load(c)) for i, c in enumerate(candidates))
                 if s is not None]
    return min(available)[1] if available else None


def reachable(bound, via):
    """A task endpoint as a client can reach it: a wildcard host (`tcp://*:9100`) is replaced
    by the host of `via` (the node's control endpoint), or 127.0.0.1."""
    host_port = _split_tcp(bound)
    if host_port is None or host_port[0] not in _WILDCARDS:
        return bound
    via_host = _split_tcp(via)
    host = via_host[0] if via_host and via_host[0] not in _WILDCARDS else "127.0.0.1"
    return "tcp://%s:%s" % (host, host_port[1])


def _split_tcp(endpoint):
    if not isinstance(endpoint, str) or not endpoint.startswith("tcp://"):
        return None
    host, sep, port = endpoint[len("tcp://"):].rpartition(":")
    return (host, port) if sep else None


def parse_nodes(answer, task, asked):
    """The nodes of a `resolve` answer that run `task`: dicts with `node_id`, `control`,
    `endpoint` (reachable) and the load numbers. `asked` is the control endpoint that
    answered (the way to reach the node that answered, whose entry is `local`)."""
    nodes = []
    for entry in answer.get("nodes") or []:
        if not isinstance(entry, dict):
            continue
        bound = (entry.get("tasks") or {}).get(task)
        if not isinstance(bound, str):
            continue
        control = entry.get("control") if isinstance(entry.get("control"), str) else None
        via = control if control and entry.get("local") is not True else asked
        node = {"node_id": entry.get("node_id"), "control": control,
                "endpoint": reachable(bound, via), "state": entry.get("state")}
        for key in ("queue", "busy", "workers", "pool_limit", "queue_limit"):
            value = entry.get(key)
            node[key] = value if isinstance(value, int) and value >= 0 else 0
        nodes.append(node)
    return nodes


# -- the client ---------------------------------------------------------------------------------


class ClusterClient:
    """Calls to task `task` of `app`, each sent to a node chosen by load, retried elsewhere on
    503 and on a node that does not answer. `controls`: control endpoints of any nodes of the
    cluster (one is enough). `timeout` bounds each attempt (seconds); `refresh` is how often
    membership and load are asked for again.

    `connect(endpoint)` and `resolver(control, app, timeout)` are the transport (a `Client`
    per node and thread; a `resolve` over ZeroMQ); tests give their own."""

    def __init__(self, controls, app, task, timeout=30.0, refresh=REFRESH, context=None,
                 user=None, key=None, connect=None, resolver=None, clock=time.monotonic,
                 draw=None):
        if isinstance(controls, str):
            controls = [controls]
        if not controls:
            raise ValueError("give at least one control endpoint")
        self.app = app
        self.task = task
        self.timeout = timeout
        self.refresh = refresh
        self._controls = list(controls)
        self._context = context
        self._user, self._key = user, key
        self._connect = connect or self._connect_zmq
        self._resolver = resolver or self._resolve_zmq
        self._clock = clock
        self._draw = draw or (lambda: _random.getrandbits(64))
        self._lock = threading.Lock()
        self._nodes = []
        self._in_flight = {}
        self._resolved_at = None
        self._local = threading.local()
        self._all_clients = []
        self._signing = None
        if user is not None or key is not None:
            if user is None or key is None:
                raise ValueError("signing needs both user= and key=")
        self.resolve()

    # -- membership ---------------------------------------------------------------------------

    @property
    def nodes(self):
        """The nodes last resolved, each with its load and this client's calls in flight."""
        with self._lock:
            return [dict(n, in_flight=self._in_flight.get(n["endpoint"], 0))
                    for n in self._nodes]

    @property
    def controls(self):
        """Every control endpoint known: those given and those resolve named."""
        with self._lock:
            return list(self._controls)

    def resolve(self):
        """Asks the control endpoints in turn for the app's nodes; the first answer wins."""
        reason = "no control endpoint given"
        for control in self.controls:
            try:
                answer = self._resolver(control, self.app, self.timeout)
            except Exception as error:  # any failure of one endpoint: try the next
                reason = "%s: %s" % (control, error)
                continue
            nodes = parse_nodes(answer, self.task, control)
            with self._lock:
                self._nodes = nodes
                for node in nodes:
                    if node["control"] and node["control"] not in self._controls:
                        self._controls.append(node["control"])
                self._resolved_at = self._clock()
            return
        raise UnresolvedError("no node answered resolve for %r: %s" % (self.app, reason))

    def _refresh_if_due(self):
        with self._lock:
            due = self._resolved_at is None or self._clock() - self._resolved_at >= self.refresh
        if due:
            try:
                self.resolve()
            except UnresolvedError:
                pass  # keep calling the nodes known; the next call tries again

    # -- calls --------------------------------------------------------------------------------

    def call(self, event="", body=b"", timeout=None):
        """Sends `body` as one request to a node chosen by load and returns a `ClusterReply`.
        Raises `CallError` for an answer that is not a 503, `NoNodeError` when no node can take
        the call (the last 503 or time out is its `__cause__`)."""
        self._refresh_if_due()
        tried = set()
        last = None
        while True:
            node = self._choose(tried)
            if node is None:
                raise NoNodeError("no node runs task %r of %r with room for a request (%d tried)"
                                  % (self.task, self.app, len(tried))) from last
            endpoint = node["endpoint"]
            tried.add(endpoint)
            try:
                body_out = self._call_at(endpoint, event, body, timeout)
                return ClusterReply(body_out, node["node_id"], endpoint, len(tried) - 1)
            except TimeoutError as error:
                # Dead, partitioned or too slow: its connection goes, and membership is asked
                # for again (a job it had started may run twice: choose the timeout so).
                self._drop_client(endpoint)
                last = error
                try:
                    self.resolve()
                except UnresolvedError:
                    pass
            except Exception as error:
                # `CallError` (kept duck-typed: `cocaine.client` needs pyzmq to import).
                if getattr(error, "code", None) != BUSY:
                    raise
                last = error

    def _choose(self, tried):
        with self._lock:
            nodes = [n for n in self._nodes if n["endpoint"] not in tried]
            in_flight = dict(self._in_flight)
        index = power_of_two(
            nodes, lambda n: client_score(n, in_flight.get(n["endpoint"], 0)), self._draw())
        return None if index is None else nodes[index]

    def _call_at(self, endpoint, event, body, timeout):
        client = self._client(endpoint)
        with self._lock:
            self._in_flight[endpoint] = self._in_flight.get(endpoint, 0) + 1
        try:
            return client.call(event, body, timeout=timeout)
        finally:
            with self._lock:
                self._in_flight[endpoint] -= 1

    def _client(self, endpoint):
        clients = getattr(self._local, "clients", None)
        if clients is None:
            clients = self._local.clients = {}
        client = clients.get(endpoint)
        if client is None:
            client = clients[endpoint] = self._connect(endpoint)
            with self._lock:
                self._all_clients.append(client)
        return client

    def _drop_client(self, endpoint):
        clients = getattr(self._local, "clients", {})
        client = clients.pop(endpoint, None)
        if client is not None:
            with self._lock:
                if client in self._all_clients:
                    self._all_clients.remove(client)
            client.close()

    def close(self):
        """Closes every connection this client opened (in any thread)."""
        with self._lock:
            clients, self._all_clients = self._all_clients, []
        for client in clients:
            client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the ZeroMQ transport -----------------------------------------------------------------

    def _connect_zmq(self, endpoint):
        from .client import Client

        if self._user is not None:
            return Client(endpoint, timeout=self.timeout, context=self._context,
                          user=self._user, key=self._key, app=self.app)
        return Client(endpoint, timeout=self.timeout, context=self._context)

    def _resolve_zmq(self, control, app, timeout):
        import zmq

        context = self._context or zmq.Context.instance()
        request = {"version": 1, "action": "resolve", "app": app}
        frames = [json.dumps(request).encode()]
        if self._user is not None:
            frames = self._signed_control(request)
        socket = context.socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.MAXMSGSIZE, 16 << 20)
        try:
            socket.connect(control)
            socket.send_multipart([b""] + frames)
            if not socket.poll(int(timeout * 1000) + 1):
                raise TimeoutError("no answer")
            reply = socket.recv_multipart()
        finally:
            socket.close(0)
        answer = json.loads(reply[-1])
        if "error" in answer:
            raise RuntimeError("error %s: %s" % (answer["error"].get("code"),
                                                  answer["error"].get("message")))
        ok = answer.get("ok")
        if not isinstance(ok, dict) or not isinstance(ok.get("nodes"), list):
            raise RuntimeError("the answer has no list of nodes")
        return ok

    def _signed_control(self, request):
        """A signed control request's frames: the JSON with user, ts and nonce, then the
        signature (docs/security.md)."""
        from ._signing import Signing

        if self._signing is None:
            self._signing = Signing(self._user, self._key, self.app)
        body = dict(request, user=self._user, ts=int(time.time() * 1000),
                    nonce=os.urandom(16).hex())
        text = json.dumps(body, separators=(",", ":")).encode()
        return [text, self._signing.sign(text)]
