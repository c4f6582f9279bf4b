"""Test app for timing-dependent cases, driven by events instead of sleeps.

`gate_wait` blocks until some later job calls `gate_open`, which lets a test hold a job
running for exactly as long as it needs.
"""

import threading

import cocaine

_gate = threading.Event()
_cancel_seen = threading.Event()
_trickle_closed = threading.Event()


def echo(request):
    return [request]


def gate_wait(request):
    """Blocks until gate_open runs (10 s at most), then replies "waited"."""
    _gate.wait(10)
    return [b"waited"]


def gate_open(request):
    _gate.set()
    return [b"opened"]


def trickle(request):
    """A generator that yields once, then waits for the gate before yielding again.

    Once its job is cancelled the SDK must close it at its next yield rather than drain it.
    """
    try:
        yield b"first"
        _gate.wait(10)
        yield b"second"
        yield b"third"
    except GeneratorExit:
        _trickle_closed.set()
        raise


def trickle_closed(request):
    """Replies "yes" once a trickle generator was closed early (waits up to 10 s)."""
    return [b"yes" if _trickle_closed.wait(10) else b"no"]


@cocaine.streaming
def watch(request, response):
    """Echoes chunks; records the Cancelled it gets when cancelled while reading."""
    try:
        for chunk in request:
            response.write(chunk)
    except cocaine.Cancelled:
        _cancel_seen.set()
        raise


def cancel_seen(request):
    """Replies "yes" once a watch job has seen its Cancelled (waits up to 10 s)."""
    return [b"yes" if _cancel_seen.wait(10) else b"no"]


@cocaine.streaming
def show_meta(request, response):
    """Replies with the job's event and meta, to check they reach streaming handlers."""
    request.read()
    response.write("%s %s" % (request.event, sorted(request.meta.items())))


def big(request):
    """One chunk of the size asked for (to check the max-message guard)."""
    return [b"x" * int(request)]


def give_int(request):
    return [1]


def exit_handler(request):
    """sys.exit in a handler fails the job; it must not end the worker."""
    raise SystemExit(3)


# For workers that run handlers inline (COCAINE_CONCURRENCY=1), where no other job can run
# while one blocks: these wait for a file the test creates instead of a gate another job opens.

def _wait_for_file(path):
    """Waits for `path` to exist (10 s at most), and always at least 2 ms: longer than the
    SDK's threshold for reading the socket while an inline handler runs, so a cancel sent
    before the file was created is always seen when this returns."""
    import os
    import time
    limit = time.monotonic() + 10
    time.sleep(0.002)
    while not os.path.exists(path) and time.monotonic() < limit:
        time.sleep(0.002)


def wait_file(request):
    """Creates `<request>.started`, then blocks until the file named by the request exists
    (10 s at most); replies "waited"."""
    path = request.decode()
    open(path + ".started", "w").close()
    _wait_for_file(path)
    return [b"waited"]


def trickle_file(request):
    """Yields once, waits for the file named by the request, then yields twice more."""
    try:
        yield b"first"
        _wait_for_file(request.decode())
        yield b"second"
        yield b"third"
    except GeneratorExit:
        _trickle_closed.set()
        raise


def thread_name(request):
    """"main" on the main thread, else the running thread's id."""
    if threading.current_thread() is threading.main_thread():
        return [b"main"]
    return [str(threading.get_ident())]


def threads(request):
    """How many threads the worker process has (from the OS, whoever started them)."""
    import os
    return [str(len(os.listdir("/proc/self/task")))]
