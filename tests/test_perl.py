"""The Perl SDK through a real node: calls, streaming, error codes, a crash (500), a
hang (504), and apps that cannot load (broken, with the reason)."""

import pytest

import script_sdks

PERL = script_sdks.Language("perl", "pl", {
    "broken.pl": "Can't locate Nonexistent/Module/ForE2e.pm",
    "broken_syntax.pl": "syntax error",
})


def test_calls(node, zctx):
    script_sdks.calls(PERL, node, zctx)


def test_streaming(node, zctx):
    script_sdks.streaming(PERL, node, zctx)


def test_error_codes(node, zctx):
    script_sdks.error_codes(PERL, node, zctx)


def test_crash_is_500(node, zctx):
    script_sdks.crash_is_500(PERL, node, zctx)


def test_hang_is_504(node, zctx):
    script_sdks.hang_is_504(PERL, node, zctx)


@pytest.mark.parametrize("app_file", sorted(PERL.broken))
def test_app_that_cannot_load(node, zctx, app_file):
    script_sdks.broken_app(PERL, node, zctx, app_file)
