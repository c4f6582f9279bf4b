"""The JavaScript SDK through a real node: calls, streaming, error codes, a crash (500), a
hang (504), and apps that cannot load (broken, with the reason)."""

import pytest

import script_sdks

JS = script_sdks.Language("javascript", "js", {
    "broken.js": "Cannot find module 'nonexistent_module_for_e2e'",
    "broken_syntax.js": "SyntaxError",
})


def test_calls(node, zctx):
    script_sdks.calls(JS, node, zctx)


def test_streaming(node, zctx):
    script_sdks.streaming(JS, node, zctx)


def test_error_codes(node, zctx):
    script_sdks.error_codes(JS, node, zctx)


def test_crash_is_500(node, zctx):
    script_sdks.crash_is_500(JS, node, zctx)


def test_hang_is_504(node, zctx):
    script_sdks.hang_is_504(JS, node, zctx)


@pytest.mark.parametrize("app_file", sorted(JS.broken))
def test_app_that_cannot_load(node, zctx, app_file):
    script_sdks.broken_app(JS, node, zctx, app_file)
