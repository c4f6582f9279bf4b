"""An app deployed as a package (a tar of this folder): it imports a sibling module and
reads a data file beside it, so a reply proves the whole package was unpacked and used."""

import os

import packaged_helper

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "greeting.txt"), "rb") as f:
    _GREETING = f.read().strip()


def hello(request):
    return [packaged_helper.frame(_GREETING, request)]


def job(request):
    """A manual-scheduler task: the result goes to pubsub."""
    return [b"packaged ran:" + request]
