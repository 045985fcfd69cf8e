"""`triogate schema`: a valid JSON Schema of gateway.toml that agrees with `triogate check`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Literal

import attrs
import jsonschema
import pytest
import triogate
from triogate.cli import STARTER
from triogate.plugins import PluginRegistry
from triogate.schema import config_schema

ROOT = Path(__file__).resolve().parents[1]


@attrs.define(frozen=True)
class Window:
    limit: int = triogate.setting(description="requests per window")
    size: float = triogate.setting(60.0, description="seconds")


class Limiter(triogate.Plugin):
    """Limits requests."""

    priority = 900

    @attrs.define(frozen=True)
    class Config:
        windows: list[Window] = triogate.setting(description="limit windows")
        key: Literal["ip", "consumer"] = triogate.setting("ip", description="what is counted")
        header: str | None = triogate.setting(None, description="header to report the remaining count in")
        costs: dict[str, int] = triogate.setting(factory=dict, description="cost per method")
        strict: bool = triogate.setting(False, description="fail closed")


def registry() -> PluginRegistry:
    reg = PluginRegistry(autoload=False)
    reg.register("limiter", Limiter)
    return reg


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = config_schema(registry())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def paths_of_errors(validator: jsonschema.Draft202012Validator, doc: dict) -> list[str]:
    return sorted(".".join(str(p) for p in e.absolute_path) for e in validator.iter_errors(doc))


def test_repo_gateway_toml_and_the_starter_file_validate(validator: jsonschema.Draft202012Validator) -> None:
    repo_cfg = tomllib.loads((ROOT / "gateway.toml").read_text())
    repo_cfg.pop("plugins", None)  # installed first-party plugins are not in this test's registry
    for route in repo_cfg.get("routes", {}).values():
        route.pop("plugins", None)
    for consumer in repo_cfg.get("consumers", {}).values():
        consumer.pop("credentials", None)  # keyed by plugin name: those plugins are not in this registry either
    assert paths_of_errors(validator, repo_cfg) == []
    assert paths_of_errors(validator, STARTER) == []


def test_plugin_configs_are_in_the_schema(validator: jsonschema.Draft202012Validator) -> None:
    schema = validator.schema
    for plugins in (schema["properties"]["plugins"],
                    schema["properties"]["routes"]["additionalProperties"]["properties"]["plugins"]):
        limiter = plugins["properties"]["limiter"]
        assert limiter["description"] == "Limits requests."
        assert limiter["required"] == ["windows"]
        assert limiter["properties"]["key"] == {"enum": ["ip", "consumer"], "default": "ip",
                                                "description": "what is counted"}
        assert limiter["properties"]["windows"]["items"]["required"] == ["limit"]
        assert limiter["properties"]["priority"]["type"] == "integer"
    good = {"plugins": {"limiter": {"windows": [{"limit": 5}], "priority": 10}},
            "routes": {"r": {"plugins": {"limiter": {"windows": [{"limit": 1, "size": 1}], "key": "consumer",
                                                     "costs": {"POST": 2}, "header": "x-left"}}}}}
    assert paths_of_errors(validator, good) == []


@pytest.mark.parametrize(("doc", "where"), [
    ({"gateway": {"workers": "2"}}, ["gateway.workers"]),
    ({"gateway": {"workers": True}}, ["gateway.workers"]),
    ({"gateway": {"wrokers": 2}}, ["gateway"]),
    ({"gateway": {"listen": [8000]}}, ["gateway.listen.0"]),
    ({"gateway": {"listen": [{"address": "127.0.0.1:1", "protocol": "h3"}]}}, ["gateway.listen.0"]),
    ({"upstreams": {"u": {"balancer": "random", "targets": [{"url": "http://a:1"}]}}}, ["upstreams.u.balancer"]),
    ({"upstreams": {"u": {"targets": [{"weight": 1}]}}}, ["upstreams.u.targets.0"]),
    ({"routes": {"r": {"methods": "GET"}}}, ["routes.r.methods"]),
    ({"plugins": {"nosuch": {}}}, ["plugins"]),
    ({"routes": {"r": {"plugins": {"limiter": {"windows": [{"limit": "5"}]}}}}},
     ["routes.r.plugins.limiter.windows.0.limit"]),
    ({"routes": {"r": {"plugins": {"limiter": {"windows": [], "key": "user"}}}}}, ["routes.r.plugins.limiter.key"]),
    ({"plugins": {"limiter": {"windows": [], "colour": 1}}}, ["plugins.limiter"]),
])
def test_bad_files_are_rejected_where_check_rejects_them(
    validator: jsonschema.Draft202012Validator, doc: dict, where: list[str],
) -> None:
    assert paths_of_errors(validator, doc) == where
    with pytest.raises(triogate.ConfigError):
        from triogate.config import parse_config

        parse_config(doc, env={}, registry=registry())


def test_cli_schema_is_valid_json_schema_with_installed_plugins() -> None:
    proc = subprocess.run([sys.executable, "-m", "triogate", "schema"], capture_output=True, text=True, timeout=60,
                          env={**os.environ}, check=False)
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    installed = set(PluginRegistry(autoload=True).available)
    assert set(schema["properties"]["plugins"]["properties"]) == installed
    # the real gateway.toml, first-party plugins included, validates against what the CLI prints
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(tomllib.loads((ROOT / "gateway.toml").read_text())))
    assert errors == []


# --------------------------------------------------------------------------- schema and check agree

UP = {"upstreams": {"u": {"targets": [{"url": "http://127.0.0.1:9"}]}}}


def route(**settings: object) -> dict:
    return {**UP, "routes": {"r": {"upstream": "u", **settings}}}


def target(url: str) -> dict:
    return {"upstreams": {"u": {"targets": [{"url": url}]}}}


def rate_limit(*limits: str) -> dict:
    return route(plugins={"rate-limit": {"limits": list(limits)}})


AGREE_INVALID = {
    "lower-case method": (route(methods=["get"]), "routes.r.methods.0"),
    "port above 65535": (target("http://127.0.0.1:65536"), "upstreams.u.targets.0.url"),
    "target with a path": (target("http://127.0.0.1:9/api"), "upstreams.u.targets.0.url"),
    "target with a query": (target("http://127.0.0.1:9/?x=1"), "upstreams.u.targets.0.url"),
    "target not http": (target("ftp://127.0.0.1:9"), "upstreams.u.targets.0.url"),
    "target without host": (target("http://:9"), "upstreams.u.targets.0.url"),
    "listen port above 65535": ({"gateway": {"listen": ["127.0.0.1:70000"]}}, "gateway.listen.0"),
    "listen table port above 65535": ({"gateway": {"listen": [{"address": "[::1]:99999"}]}},
                                      "gateway.listen.0"),
    "listen without port": ({"gateway": {"listen": ["127.0.0.1"]}}, "gateway.listen.0"),
    "malformed rate": (rate_limit("100/minut"), "routes.r.plugins.rate-limit.limits.0"),
    "zero rate": (rate_limit("10/second", "0/hour"), "routes.r.plugins.rate-limit.limits.1"),
    "rate without period": (rate_limit("lots"), "routes.r.plugins.rate-limit.limits.0"),
    "credentials of an unknown plugin": ({"consumers": {"c": {"credentials": {"key-auht": {}}}}},
                                         "consumers.c.credentials"),
    "star inside a path": (route(paths=["/svc/*/x"]), "routes.r.paths.0"),
    "star suffix": (route(paths=["/svc*"]), "routes.r.paths.0"),
    "star extension": (route(paths=["*.json"]), "routes.r.paths.0"),
    "relative path": (route(paths=["api"]), "routes.r.paths.0"),
    "half a parameter": (route(paths=["/users/{id"]), "routes.r.paths.0"),
    "relative strip_prefix": (route(paths=["/api"], strip_prefix="api"), "routes.r.strip_prefix"),
    "bad header name": ({"gateway": {"request_id_header": "x id"}}, "gateway.request_id_header"),
    "bad access-log header": ({"gateway": {"access_log_headers": ["ok", "a:b"]}}, "gateway.access_log_headers.1"),
    "zero duration": ({"gateway": {"timeouts": {"idle": 0}}}, "gateway.timeouts.idle"),
    "negative grace": ({"gateway": {"timeouts": {"body_rate_grace": -1}}}, "gateway.timeouts.body_rate_grace"),
    "no workers": ({"gateway": {"workers": 0}}, "gateway.workers"),
    "negative retries": ({"upstreams": {"u": {"targets": [{"url": "http://a:1"}], "retries": -1}}},
                         "upstreams.u.retries"),
    "relative health-check path": ({"upstreams": {"u": {"targets": [{"url": "http://a:1"}],
                                                        "health_check": {"path": "health"}}}},
                                   "upstreams.u.health_check.path"),
}

AGREE_VALID = {
    "methods and star prefix": route(methods=["GET", "POST"], paths=["/svc/*", "/*", "/users/{id}/*", "/a/"]),
    "listen forms": {"gateway": {"listen": ["127.0.0.1:0", "[::1]:65535", {"address": "0.0.0.0:8080"}]}},
    "target forms": {"upstreams": {"u": {"targets": [
        {"url": "http://127.0.0.1:9"}, {"url": "https://[::1]:8443/"}, {"url": "HTTP://Example.com"},
        {"url": "http://svc.internal:65535"}]}}},
    "rates": rate_limit("10/second", "1000/Hour", "5/10 minutes", "100/30s", " 7 / 2 hrs "),
    "credentials": {"consumers": {"c": {"credentials": {"key-auth": {"keys": ["s3cret-key-0123456789"]}}}}},
    "strip_prefix": route(paths=["/api/v1"], strip_prefix="/api"),
    "bounds": {"gateway": {"workers": 1, "timeouts": {"idle": 0.5, "body_rate_grace": 0}}},
}


@pytest.fixture(scope="module")
def installed() -> tuple[PluginRegistry, jsonschema.Draft202012Validator]:
    reg = PluginRegistry(autoload=True)
    assert {"rate-limit", "key-auth"} <= set(reg.available)
    schema = config_schema(reg)
    jsonschema.Draft202012Validator.check_schema(schema)
    return reg, jsonschema.Draft202012Validator(schema)


def check_errors(doc: dict, reg: PluginRegistry) -> list[str]:
    """What `triogate check` says of ``doc``: the config load, then the pipeline build."""
    from triogate.config import parse_config
    from triogate.pipeline import Pipeline
    from triogate.upstream import HTTPClient

    try:
        Pipeline(parse_config(doc, env={}, registry=reg), reg, HTTPClient())
    except triogate.ConfigError as exc:
        return exc.errors
    return []


@pytest.mark.parametrize(("doc", "where"), AGREE_INVALID.values(), ids=AGREE_INVALID.keys())
def test_schema_and_check_reject_the_same_values(installed, doc: dict, where: str) -> None:
    reg, validator = installed
    assert paths_of_errors(validator, doc) == [where]
    errors = check_errors(doc, reg)
    assert errors, "check accepted it"
    key = where.replace(".0", "[0]").replace(".1", "[1]")
    assert any(e.startswith(key) for e in errors), errors


@pytest.mark.parametrize("doc", AGREE_VALID.values(), ids=AGREE_VALID.keys())
def test_schema_and_check_accept_the_same_values(installed, doc: dict) -> None:
    reg, validator = installed
    assert paths_of_errors(validator, doc) == []
    assert check_errors(doc, reg) == []
