"""filesystem-monitor end to end: files created, changed and removed in a watched folder
reach the app in coalesced batches with their paths, read back from the app's pubsub; a path
that does not exist at start is followed once it appears; the node keeps serving."""

import os
import time

from conftest import NativeClient, Subscriber, endpoint, python_app

DEBOUNCE = 300


def start(node, tmp_path, watched, later):
    pubsub, native = endpoint(), endpoint()
    manifest = python_app(
        "fsmon.py",
        {
            "inbox": {"type": "filesystem-monitor", "path": str(watched), "debounce": DEBOUNCE},
            "later": {"type": "filesystem-monitor", "path": str(later), "recursive": True},
            "echo": {"type": "native-server", "endpoint": native},
        },
        pubsub={"endpoint": pubsub, "interval": 200},
    )
    n = node({"fsmon": manifest})
    return n, pubsub, native


def live_subscriber(zctx, pubsub):
    sub = Subscriber(zctx, pubsub, "fsmon:")
    # The subscription is live once a stats publication arrives.
    sub.wait_for(lambda w, v: w[1] == "stats", timeout=10)
    return sub


class Batches:
    """Every batch a task published, in order, as lists of (path, kind)."""

    def __init__(self, sub, task):
        self.sub, self.task, self.all = sub, task, []

    def until(self, done, timeout=10.0):
        """Reads batches until `done(self.last_kinds())` holds; returns the last kinds."""
        deadline = time.monotonic() + timeout
        while not done(self.last_kinds()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("batches so far: %r" % self.all)
            try:
                words, value = self.sub.wait_for(
                    lambda w, v: w[0] == "fsmon:" + self.task and w[1] == "changes", remaining)
            except TimeoutError:
                raise AssertionError("no such batch; batches so far: %r" % self.all)
            batch = [(c["path"], c["kind"]) for c in value]
            assert [p for p, _ in batch] == sorted(p for p, _ in batch), "not sorted: %r" % batch
            assert len({p for p, _ in batch}) == len(batch), "a path twice in a batch: %r" % batch
            self.all.append(batch)
        return self.last_kinds()

    def last_kinds(self):
        """Each path's kind in the last batch that named it."""
        kinds = {}
        for batch in self.all:
            kinds.update(dict(batch))
        return kinds

    def paths(self):
        return {p for batch in self.all for p, _ in batch}


def test_changes_in_a_watched_folder_reach_the_app_coalesced(node, zctx, tmp_path):
    watched = tmp_path / "watched"
    watched.mkdir()
    old = watched / "old.txt"
    old.write_text("before\n")
    (watched / "sub").mkdir()
    n, pubsub, native = start(node, tmp_path, watched, tmp_path / "nowhere")
    sub = live_subscriber(zctx, pubsub)
    batches = Batches(sub, "inbox")

    # A temporary file first (it opens the window): created and removed in one batch, so
    # it is never reported. Then a new file written in several steps, and an old one
    # changed: one entry each.
    tmp = watched / ".tmp.swp"
    tmp.write_text("x")
    tmp.unlink()
    new = watched / "new.txt"
    with open(new, "w") as f:
        f.write("one\n")
        f.flush()
        f.write("two\n")
    with open(old, "a") as f:
        f.write("after\n")
    # Below the folder: not reported, the task is not recursive.
    (watched / "sub" / "deep.txt").write_text("x")
    kinds = batches.until(lambda k: str(new) in k and str(old) in k)
    assert kinds[str(new)] == "created", batches.all
    assert kinds[str(old)] == "modified", batches.all

    new.unlink()
    kinds = batches.until(lambda k: k.get(str(new)) == "removed")
    renamed = watched / "renamed.txt"
    os.rename(old, renamed)
    kinds = batches.until(lambda k: str(renamed) in k and k.get(str(old)) == "removed")
    assert kinds[str(renamed)] == "created", batches.all

    assert str(tmp) not in batches.paths(), batches.all
    assert str(watched / "sub" / "deep.txt") not in batches.paths(), batches.all
    # Each path's first appearance says what it was before: new.txt is never "modified".
    assert all(k != "modified" for p, k in sum(batches.all, []) if p == str(new)), batches.all

    # The node kept serving calls all along.
    client = NativeClient(zctx, native)
    assert client.call("echo", b"still here").body == b"still here"
    client.close()
    sub.close()
    assert "cannot watch" not in n.log


def test_a_path_that_appears_later_is_followed(node, zctx, tmp_path):
    watched = tmp_path / "watched"
    watched.mkdir()
    later = tmp_path / "not" / "yet"
    n, pubsub, native = start(node, tmp_path, watched, later)
    sub = live_subscriber(zctx, pubsub)
    batches = Batches(sub, "later")

    # Outside the path, beside where it will be: never reported.
    (tmp_path / "not").mkdir()
    (tmp_path / "not" / "beside.txt").write_text("x")
    later.mkdir()
    (later / "a").mkdir()
    (later / "a" / "file.txt").write_text("x")
    kinds = batches.until(lambda k: str(later / "a" / "file.txt") in k)
    assert kinds[str(later / "a" / "file.txt")] == "created", batches.all
    assert kinds.get(str(later)) == "created", batches.all
    assert all(p.startswith(str(later)) for p in batches.paths()), batches.all

    # Recursive and watched itself now: a deeper change is seen; removing it all is too.
    (later / "a" / "file.txt").write_text("y")
    batches.until(lambda k: k.get(str(later / "a" / "file.txt")) == "modified")
    (later / "a" / "file.txt").unlink()
    (later / "a").rmdir()
    later.rmdir()
    kinds = batches.until(lambda k: k.get(str(later)) == "removed")
    assert kinds[str(later / "a" / "file.txt")] == "removed", batches.all
    # And made again: followed from its parent, then watched again.
    later.mkdir()
    (later / "again.txt").write_text("x")
    batches.until(lambda k: k.get(str(later / "again.txt")) == "created")

    client = NativeClient(zctx, native)
    assert client.call("echo", b"ok").body == b"ok"
    client.close()
    sub.close()
    assert "cannot watch" not in n.log
