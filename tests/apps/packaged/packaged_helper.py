"""A sibling module of packaged_app.py, imported from the package folder."""


def frame(greeting, request):
    return greeting + b", " + request + b"!"
