"""An app that cannot be imported."""

import nonexistent_module_for_e2e  # noqa: F401


def echo(request):
    return [request]
