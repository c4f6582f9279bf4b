"""For tests/test_security_native.py: who called (the verified `user` in the job's meta) and
how many calls reached this worker, so a test can prove a refused request never did."""

import json

import cocaine

_calls = [0]


@cocaine.streaming
def whoami(request, response):
    body = b"".join(request)
    _calls[0] += 1
    response.write(json.dumps({"user": request.meta.get("user"), "body": body.decode(),
                               "calls": _calls[0]}).encode())
    response.close()


def calls(request):
    return [str(_calls[0])]
