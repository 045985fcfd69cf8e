"""Schema tests for acl."""

import pytest
import triogate
from triogate.testing import plugin_config

from triogate_acl import AclPlugin


def test_accepts_groups_and_prefixed_entries() -> None:
    c = plugin_config(AclPlugin, {"allow": ["staff", "role:admin", "scope:orders:write", "consumer:ci"],
                                  "deny": ["group:banned"]})
    assert c.roles_claim == "roles"


@pytest.mark.parametrize("raw, message", [
    ({}, "set at least one"),
    ({"allow": ["team:x"]}, "allow[0]"),
    ({"deny": ["role:"]}, "deny[0]"),
    ({"allow": [""]}, "allow[0]"),
    ({"allow": "staff"}, "allow"),
    ({"allow": ["x"], "whitelist": ["y"]}, "whitelist: unknown key"),
])
def test_rejected(raw, message) -> None:
    with pytest.raises(triogate.ConfigError) as err:
        plugin_config(AclPlugin, raw, path="routes.r.plugins.acl")
    assert message in str(err.value), err.value.errors
    assert all(e.startswith("routes.r.plugins.acl") for e in err.value.errors)
