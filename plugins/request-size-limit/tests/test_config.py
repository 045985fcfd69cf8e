"""Schema: what [plugins.request-size-limit] accepts and rejects, with key paths."""

import pytest
import triogate
from triogate.testing import plugin_config
from triogate_request_size_limit import RequestSizeLimitPlugin

P = "routes.upload.plugins.request-size-limit"


def error(raw: dict) -> str:
    with pytest.raises(triogate.ConfigError) as err:
        plugin_config(RequestSizeLimitPlugin, raw, path=P)
    [e] = err.value.errors
    return e


def test_defaults() -> None:
    cfg = plugin_config(RequestSizeLimitPlugin, {})
    assert cfg.max_bytes == 1024 * 1024 and cfg.require_content_length is False


def test_negative_limit() -> None:
    assert error({"max_bytes": -1}).startswith(f"{P}: max_bytes:")


@pytest.mark.parametrize("raw, where", [
    ({"max_bytes": "1MB"}, f"{P}.max_bytes"),
    ({"max_bytes": 1.5}, f"{P}.max_bytes"),
    ({"require_content_length": 1}, f"{P}.require_content_length"),
    ({"limit": 10}, f"{P}.limit"),
])
def test_wrong_types_and_unknown_keys(raw: dict, where: str) -> None:
    assert error(raw).startswith(where + ":")
