"""`python3 -m cocaine_conformance --worker "COMMAND"`: runs every scenario against a worker.

Prints one line per scenario and a closing `N passed, N failed` line; exits 1 if any failed.
"""

import argparse
import shlex
import sys
import time

from . import SCENARIOS, run_one


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python3 -m cocaine_conformance",
        description="Check a Cocaine worker SDK against the worker channel's scenarios. The "
                    "worker command runs once per scenario with the node's environment "
                    "(COCAINE_SOCKET, COCAINE_WORKER_ID, ...) and must serve the conformance "
                    "app's events (echo, count, stream, fail, code, slow).")
    parser.add_argument("--worker", required=True,
                        help='the worker command, e.g. "node adapters/javascript/bin/'
                             'cocaine-worker.js adapters/conformance/apps/conformance.js"')
    parser.add_argument("--cwd", help="the worker's working directory")
    parser.add_argument("-k", dest="only", action="append", default=[],
                        help="run only scenarios whose name holds this (repeatable)")
    parser.add_argument("--without", action="append", default=[], metavar="ABILITY",
                        help="skip scenarios that need this ability (e.g. overlap, for a "
                             "worker that runs one job at a time)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)

    if args.list:
        for s in SCENARIOS:
            needs = " [needs %s]" % ", ".join(sorted(s.needs)) if s.needs else ""
            print("%-22s %s%s" % (s.name, s.doc, needs))
        return 0
    command = shlex.split(args.worker)
    passed = failed = skipped = 0
    for s in SCENARIOS:
        if args.only and not any(k in s.name for k in args.only):
            continue
        if s.needs & set(args.without):
            print("SKIP %-22s (needs %s)" % (s.name, ", ".join(sorted(s.needs))))
            skipped += 1
            continue
        began = time.monotonic()
        failure = run_one(s, command, cwd=args.cwd)
        if failure is not None and len(failure) > 3000:
            failure = failure[:3000] + "..."
        took = time.monotonic() - began
        if failure is None:
            print("PASS %-22s %5.2fs  %s" % (s.name, took, s.doc))
            passed += 1
        else:
            print("FAIL %-22s %5.2fs  %s\n     %s" % (s.name, took, s.doc,
                                                     failure.replace("\n", "\n     ")))
            failed += 1
        sys.stdout.flush()
    line = "%d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
