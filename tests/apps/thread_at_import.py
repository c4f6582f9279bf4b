"""An app that starts a thread when imported: forking it would not copy the thread, so the
node must start its workers without a fork server (tests/test_fork_server.py)."""

import threading
import time

threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()


def echo(request):
    return [request]
