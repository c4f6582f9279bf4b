"""One handler per task of all-tasks.json: each replies with what it got, so the pubsub
shows every task working."""

import json


def _describe(name, request):
    return [json.dumps({"task": name, "bytes": len(request), "text": request.decode("utf-8", "replace")})]


def tick(request):
    return _describe("tick", request)


def drift(request):
    return _describe("drift", request)


def every_ten_seconds(request):
    return _describe("every_ten_seconds", request)


def later(request):
    return _describe("later", request)


def inbox(request):
    return _describe("inbox", request)


def request(request):
    return [request.upper()]


def call(request):
    return [request]


def push(request):
    return _describe("push", request)


def invoke(request):
    return _describe("invoke", request)


def chain(request):
    return _describe("chain", request)


def lines(request):
    return [request[::-1]]
