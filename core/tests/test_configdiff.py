"""Config diffs (triogate.configdiff) and secret masking (triogate.masking): each kind of change is
found and printed, nothing else is, and no secret's value ever appears in the output."""

from __future__ import annotations

import json
from typing import ClassVar

import attrs
import pytest
import triogate
from triogate import accesslog, app
from triogate.config import loads_config
from triogate.configdiff import RESTART_ONLY, config_data, diff_configs, format_changes, render_config
from triogate.docgen import config_table
from triogate.masking import Secret, fingerprint, is_secret_name, mask_url, masked, plain
from triogate.plugins import PluginRegistry
from triogate.schema import config_schema

SECRETS = ("hmac-secret-old-0123456789", "hmac-secret-new-0123456789", "alice-key-old", "alice-key-new",
           "admin-token-old-0123456789", "admin-token-new-0123456789", "redis-pw-old", "redis-pw-new",
           "bearer-in-header-old", "bearer-in-header-new", "opaque-cred-old", "opaque-cred-new")


@attrs.define(frozen=True)
class Store:
    url: str = triogate.setting("redis://127.0.0.1:6379/0", description="server")
    timeout: float = triogate.setting(0.5, description="seconds")


@attrs.define(frozen=True)
class SignConfig:
    secret: str | None = triogate.setting(None, description="HMAC key", secret=True)
    algorithm: str = triogate.setting("HS256", description="algorithm")
    headers: dict[str, str] = triogate.setting(factory=dict, description="headers to send")
    store: Store = triogate.setting(factory=Store, description="where to keep state")


class Sign(triogate.Plugin):
    priority = 1000
    Config = SignConfig
    credential_secrets: ClassVar[frozenset[str] | None] = frozenset({"key"})


@attrs.define(frozen=True)
class LimitConfig:
    limits: list[str] = triogate.setting(description="limits")
    by: str = triogate.setting("ip", description="key")


class Limit(triogate.Plugin):
    priority = 900
    Config = LimitConfig


class Opaque(triogate.Plugin):
    """Says nothing about its credentials: every value of them is masked."""


@pytest.fixture
def registry() -> PluginRegistry:
    reg = PluginRegistry(autoload=False)
    reg.register("sign", Sign)
    reg.register("limit", Limit)
    reg.register("opaque", Opaque)
    return reg


def diff(old: str, new: str, registry: PluginRegistry) -> tuple[list[str], str, str]:
    """(change lines, text, JSON) of old -> new."""
    a = loads_config(old, registry=registry)
    b = loads_config(new, registry=registry)
    changes = diff_configs(a, b, registry)
    text = format_changes(changes)
    out = json.dumps([c.to_json() for c in changes])
    for secret in SECRETS:
        assert secret not in text and secret not in out, secret
    return text.splitlines(), text, out


BASE = """
[upstreams.users]
targets = [{ url = "http://127.0.0.1:9001" }, { url = "http://127.0.0.1:9002" }]
[routes.api]
paths = ["/api"]
upstream = "users"
"""


def test_equal_configs_have_no_changes(registry: PluginRegistry) -> None:
    _, text, out = diff(BASE, BASE, registry)
    assert (text, out) == ("no changes", "[]")
    # a default written out is no change: plugin tables are compared as their Config sees them
    old = BASE + '[routes.api.plugins.limit]\nlimits = ["1/s"]\n'
    assert diff(old, old + 'by = "ip"\n', registry)[1] == "no changes"
    assert diff(BASE, BASE + "[gateway]\nworkers = 1\n", registry)[1] == "no changes"


def test_routes_added_removed_and_changed(registry: PluginRegistry) -> None:
    old = BASE + '[routes.gone]\npaths = ["/gone"]\nupstream = "users"\n'
    new = BASE.replace('paths = ["/api"]', 'paths = ["/api", "/v2"]\nmethods = ["GET"]') + (
        '[routes.new]\npaths = ["/new"]\nupstream = "users"\nstrip_prefix = "/new"\n')
    lines, _, out = diff(old, new, registry)
    assert lines == [
        '- route "gone"',
        '+ route "new" (paths = ["/new"], upstream = "users", strip_prefix = "/new")',
        '~ route "api": paths: ["/api"] → ["/api", "/v2"]',
        '~ route "api": methods: [] → ["GET"]',
    ]
    first = json.loads(out)[2]
    assert first == {"op": "~", "kind": "route", "name": "api", "field": "paths", "old": ["/api"],
                     "new": ["/api", "/v2"], "text": lines[2]}


def test_upstreams_and_targets(registry: PluginRegistry) -> None:
    new = BASE.replace('{ url = "http://127.0.0.1:9001" }, { url = "http://127.0.0.1:9002" }',
                       '{ url = "http://127.0.0.1:9002", weight = 3 }, { url = "http://127.0.0.1:9003" }')
    new += '[upstreams.users.health_check]\npath = "/health"\n[upstreams.more]\ntargets = [{ url = "http://10.0.0.1:80" }]\n'
    lines, _, out = diff(BASE, new, registry)
    assert lines == [
        '+ upstream "more" (targets = ["http://10.0.0.1:80"])',
        '~ upstream "users": targets: - http://127.0.0.1:9001  + http://127.0.0.1:9003',
        '~ upstream "users": target http://127.0.0.1:9002: weight: 1 → 3',
        '~ upstream "users": health_check.path: unset → "/health"',
    ]
    kinds = [(c["op"], c["kind"], c.get("name")) for c in json.loads(out)]
    assert kinds[:3] == [("+", "upstream", "more"), ("-", "target", "http://127.0.0.1:9001"),
                         ("+", "target", "http://127.0.0.1:9003")]  # one record per target in JSON
    lines, _, _ = diff(new, BASE, registry)
    assert lines[0] == '- upstream "more"'


def test_route_plugins_added_removed_changed(registry: PluginRegistry) -> None:
    old = BASE + ('[routes.api.plugins.sign]\nsecret = "hmac-secret-old-0123456789"\n'
                  '[routes.api.plugins.sign.headers]\nauthorization = "Bearer bearer-in-header-old"\nx-env = "a"\n')
    new = BASE + ('[routes.api.plugins.sign]\nsecret = "hmac-secret-new-0123456789"\nalgorithm = "HS512"\n'
                  '[routes.api.plugins.sign.headers]\nauthorization = "Bearer bearer-in-header-new"\nx-env = "b"\n'
                  '[routes.api.plugins.limit]\nlimits = ["10/s"]\npriority = 950\n')
    lines, _, out = diff(old, new, registry)
    assert lines[0] == '~ route "api": plugins: + limit (limits = ["10/s"], priority = 950)'
    assert lines[1].startswith('~ plugin "sign" on route "api": secret changed: <secret ')
    assert lines[2] == '~ plugin "sign" on route "api": algorithm: "HS256" → "HS512"'
    assert lines[3].startswith('~ plugin "sign" on route "api": headers.authorization changed: <secret ')
    assert lines[4] == '~ plugin "sign" on route "api": headers.x-env: "a" → "b"'
    assert len(lines) == 5
    records = json.loads(out)
    assert [r.get("secret", False) for r in records] == [False, True, False, True, False]
    assert records[1]["old"] != records[1]["new"]  # the fingerprints show that it changed
    lines, _, _ = diff(new, old, registry)
    assert lines[0] == '~ route "api": plugins: - limit'


def test_global_plugins(registry: PluginRegistry) -> None:
    new = BASE + '[plugins.limit]\nlimits = ["5/s"]\n'
    assert diff(BASE, new, registry)[0] == ['+ global plugin "limit" (limits = ["5/s"])']
    assert diff(new, BASE, registry)[0] == ['- global plugin "limit"']
    assert diff(new, new.replace("5/s", "6/s"), registry)[0] == [
        '~ global plugin "limit": limits: ["5/s"] → ["6/s"]']


def test_consumers_and_masked_credentials(registry: PluginRegistry) -> None:
    old = BASE + ('[consumers.bob]\ngroups = ["a"]\n'
                  '[consumers.alice]\n[consumers.alice.credentials.sign]\nkey = "alice-key-old"\nkid = "k1"\n'
                  '[consumers.alice.credentials.opaque]\nsomething = "opaque-cred-old"\n')
    new = BASE + ('[consumers.carol]\ngroups = ["ops"]\n[consumers.carol.credentials.sign]\nkey = "alice-key-new"\n'
                  '[consumers.alice]\ngroups = ["b"]\n[consumers.alice.credentials.sign]\nkey = "alice-key-new"\n'
                  'kid = "k2"\n[consumers.alice.credentials.opaque]\nsomething = "opaque-cred-new"\n')
    lines, _, _ = diff(old, new, registry)
    assert lines[0] == '- consumer "bob"'
    assert lines[1] == '+ consumer "carol" (groups = ["ops"], credentials = ["sign"])'
    assert lines[2] == '~ consumer "alice": groups: [] → ["b"]'
    assert lines[3].startswith('~ consumer "alice": credentials.sign.key changed: <secret ')
    assert lines[4] == '~ consumer "alice": credentials.sign.kid: "k1" → "k2"'  # credential_secrets names key only
    assert lines[5].startswith('~ consumer "alice": credentials.opaque.something changed: <secret ')
    assert len(lines) == 6


def test_gateway_and_admin_settings(registry: PluginRegistry) -> None:
    old = BASE + '[admin]\nlisten = "127.0.0.1:9901"\ntoken = "admin-token-old-0123456789"\n'
    new = BASE + ('[gateway]\nworkers = 2\nvia = false\n[gateway.timeouts]\nidle = 5\n'
                  '[admin]\nlisten = "127.0.0.1:9901"\ntoken = "admin-token-new-0123456789"\n')
    lines, _, out = diff(old, new, registry)
    assert lines[0] == "~ gateway: workers: 1 → 2 (takes effect after a restart, not a reload)"
    assert lines[1] == "~ gateway: timeouts.idle: 60.0 → 5.0"
    assert lines[2] == "~ gateway: via: true → false"
    assert lines[3].startswith("~ admin: token changed: <secret ")
    assert json.loads(out)[0]["note"] == "takes effect after a restart, not a reload"


def test_urls_with_passwords_are_masked(registry: PluginRegistry) -> None:
    old = BASE + '[plugins.sign.store]\nurl = "redis://:redis-pw-old@10.0.0.5:6379/0"\n'
    new = BASE + '[plugins.sign.store]\nurl = "redis://:redis-pw-new@10.0.0.6:6379/0"\n'
    (line,), _, _ = diff(old, new, registry)
    assert line.startswith('~ global plugin "sign": store.url changed: "redis://:<secret ')
    assert "@10.0.0.5:6379/0" in line and "@10.0.0.6:6379/0" in line  # the host is not a secret
    # the same password on another host: its fingerprint is the same
    masks = [part.split("<secret ")[1][:8] for part in line.split("→")]
    assert masks[0] != masks[1]
    same = new.replace("redis-pw-new", "redis-pw-old")
    (line,), _, _ = diff(old, same, registry)
    masks = [part.split("<secret ")[1][:8] for part in line.split("→")]
    assert masks[0] == masks[1]


def test_a_plugin_nobody_can_describe_is_masked_whole() -> None:
    """Without the plugin's Config (no registry), every value of its table is a secret."""
    cfg = loads_config(BASE + '[plugins.sign]\nsecret = "hmac-secret-old-0123456789"\nalgorithm = "HS256"\n')
    rendered = json.dumps(render_config(cfg))
    assert "hmac-secret-old" not in rendered and "HS256" not in rendered
    assert "<secret " in rendered


def test_render_config_masks_and_keeps_the_rest(registry: PluginRegistry) -> None:
    cfg = loads_config(BASE + '[plugins.sign]\nsecret = "hmac-secret-old-0123456789"\n'
                       '[admin]\nlisten = "127.0.0.1:9901"\ntoken = "admin-token-old-0123456789"\n', registry=registry)
    data = render_config(cfg, registry)
    assert data["plugins"]["sign"]["secret"].startswith("<secret ")
    assert data["plugins"]["sign"]["algorithm"] == "HS256"
    assert data["plugins"]["sign"]["priority"] == 1000
    assert data["admin"]["token"].startswith("<secret ") and data["admin"]["listen"] == "127.0.0.1:9901"
    assert data["routes"]["api"]["paths"] == ["/api"]
    assert "source" not in data  # internal
    text = json.dumps(data)
    assert "hmac-secret-old" not in text and "admin-token-old" not in text
    assert isinstance(config_data(cfg, registry)["admin"]["token"], Secret)


def test_mask_secrets_is_public() -> None:
    conf = SignConfig(secret="hmac-secret-old-0123456789", headers={"X-Api-Key": "k", "accept": "json"})
    data = triogate.mask_secrets(conf)
    assert data["secret"] == f"<secret {fingerprint('hmac-secret-old-0123456789')}>"
    assert data["headers"] == {"X-Api-Key": f"<secret {fingerprint('k')}>", "accept": "json"}
    assert data["store"] == {"url": "redis://127.0.0.1:6379/0", "timeout": 0.5}
    assert triogate.mask_secrets(SignConfig())["secret"] is None  # unset is not a secret


def test_mask_secrets_of_a_whole_config_masks_every_plugin_value() -> None:
    """Without the plugins' Config classes nobody knows which keys are secret: all values are masked."""
    cfg = loads_config(BASE + '[routes.api.plugins.sign]\nsecret = "hmac-secret-old-0123456789"\n'
                       '[plugins.sign]\nkey = "opaque-cred-old"\n'
                       '[consumers.c.credentials.sign]\nkeys = ["alice-key-old"]\n')
    data = triogate.mask_secrets(cfg)
    text = json.dumps(data)
    assert "hmac-secret-old" not in text and "opaque-cred-old" not in text and "alice-key-old" not in text
    assert data["routes"]["api"]["plugins"]["sign"]["secret"].startswith("<secret ")
    assert data["consumers"]["c"]["credentials"]["sign"]["keys"][0].startswith("<secret ")
    assert data["routes"]["api"]["paths"] == ["/api"] and "source" not in data


def test_secret_wrapper_never_shows_its_value() -> None:
    s = Secret("hunter2-hunter2")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s) and "hunter2" not in f"{[s]}"
    assert s == Secret("hunter2-hunter2") and s != Secret("other") and s != "hunter2-hunter2"
    assert masked({"a": [s]}) == {"a": [s.shown]}
    assert fingerprint("x") == fingerprint("x") != fingerprint("y")


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:pw@h:6379/0", "redis://:<secret {}>@h:6379/0"),
    ("redis://user:pw@h/0", "redis://user:<secret {}>@h/0"),
    ("https://user:pw@example.com/p?q=1", "https://user:<secret {}>@example.com/p?q=1"),
    ("redis://user@h/0", None),
    ("http://h/a:b@c", None),  # not userinfo: after the path started
    ("redis://h:6379/0", None),
])
def test_url_passwords(url: str, shown: str | None) -> None:
    assert mask_url(url) == (shown.format(fingerprint("pw")) if shown else None)
    rendered = plain(url)
    assert isinstance(rendered, Secret) == (shown is not None)


def test_secret_names_are_the_access_logs() -> None:
    """One notion of a credential-looking name for the access log and config renders."""
    assert accesslog.is_secret_name is is_secret_name
    assert is_secret_name("Authorization") and is_secret_name("x-api-key") and not is_secret_name("x-env")


def test_restart_only_settings_agree_with_the_gateway() -> None:
    assert {key for section, key in RESTART_ONLY if section == "gateway"} == set(app._RESTART_ONLY)


def test_schema_and_docs_say_which_settings_are_secret(registry: PluginRegistry) -> None:
    schema = config_schema(registry)
    assert schema["properties"]["admin"]["properties"]["token"]["writeOnly"] is True
    assert "writeOnly" not in schema["properties"]["admin"]["properties"]["listen"]
    sign = schema["properties"]["plugins"]["properties"]["sign"]["properties"]
    assert sign["secret"]["writeOnly"] is True and "writeOnly" not in sign["algorithm"]
    rows = {line.split("|")[1].strip(): line for line in config_table(SignConfig).splitlines()[2:]}
    assert "(secret: `triogate diff` shows it masked)" in rows["`secret`"]
    assert "secret:" not in rows["`algorithm`"]


def test_arrays_of_tables_are_compared_item_by_item(registry: PluginRegistry) -> None:
    old = BASE + '[gateway]\nlisten = ["127.0.0.1:8000"]\n'
    new = BASE + '[gateway]\nlisten = [{ address = "127.0.0.1:8000", protocol = "h2" }]\n'
    assert diff(old, new, registry)[0] == [
        '~ gateway: listen[0].protocol: "http1" → "h2" (takes effect after a restart, not a reload)']
    more = BASE + '[gateway]\nlisten = ["127.0.0.1:8000", "127.0.0.1:8002"]\n'
    (line,) = diff(old, more, registry)[0]  # another length: the whole array
    assert line.startswith('~ gateway: listen: [{ address = "127.0.0.1:8000", ') and '"127.0.0.1:8002"' in line
