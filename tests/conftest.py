"""Cross-package test configuration.

``both_parsers``: the HTTP/1.1 conformance modules use it (``pytestmark``) so every
test in them runs against the fast (llhttp) backend and the h11 reference.
"""

from __future__ import annotations

import pytest

from triogate.http1 import fast_available

PARSERS = ["fast", "h11"] if fast_available else ["h11"]


@pytest.fixture(params=PARSERS)
def both_parsers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    # gateways started in-process and `triogate run` subprocesses both read it ("auto" defers to it)
    monkeypatch.setenv("TRIOGATE_HTTP1_PARSER", request.param)
    return request.param
