"""filesystem-monitor.json's app: watches apps/filesystem-monitor/inbox (and below it).

Each job is one batch of changes, coalesced over the task's `debounce`: its request is a JSON
list of {"path": absolute path, "kind": "created" | "modified" | "removed"}, sorted by path.
The reply sorts the paths by kind; the node publishes each of its fields on the pubsub, so
`cocaine watch tcp://127.0.0.1:9210` shows `filesystem-monitor:inbox created ...` and so on.
"""

import json


def inbox(request):
    changes = json.loads(request)
    by_kind = {"created": [], "modified": [], "removed": []}
    for change in changes:
        by_kind[change["kind"]].append(change["path"])
    by_kind["count"] = len(changes)
    return [json.dumps(by_kind)]
