"""Config errors: every problem reported at once, with file, key path and what was expected."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import attrs
import pytest
import triogate
from triogate.config import ConfigError, load_config, loads_config
from triogate.pipeline import Pipeline
from triogate.plugins import PluginRegistry
from triogate.upstream import HTTPClient

BAD = textwrap.dedent("""
    [gateway]
    listen = [8000, "127.0.0.1:x"]
    workers = "2"
    wrokers = 3
    [gateway.timeouts]
    idle = "x"
    [upstreams.u]
    targets = [{ url = "ftp://x" }, { weight = 2 }]
    balancer = "random"
    [upstreams.ok]
    targets = [{ url = "http://127.0.0.1:1/path" }]
    [routes.r]
    paths = ["api"]
    upstream = "nope"
    [routes.broken]
    methods = "GET"
    [routes.broken.plugins.limit]
    max = "ten"
    [plugins.nosuch]
""")


class Limit(triogate.Plugin):
    """A plugin with a typed config and a cross-field check."""

    priority = 900

    @attrs.define(frozen=True)
    class Config:
        max: int = triogate.setting(10, description="most requests")
        burst: int = triogate.setting(0, description="extra requests")
        mode: str = triogate.setting("local", description="where counters live")

        def __attrs_post_init__(self) -> None:
            if self.burst > self.max:
                raise ValueError("burst must not exceed max")


def registry(**plugins: type[triogate.Plugin]) -> PluginRegistry:
    reg = PluginRegistry(autoload=False)
    for name, cls in plugins.items():
        reg.register(name, cls)
    return reg


def errors_of(text: str, reg: PluginRegistry | None = None, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        cfg = loads_config(text, "gw.toml", env=env or {}, registry=reg)
        Pipeline(cfg, reg or registry(), HTTPClient())
    return info.value.errors


def test_every_error_is_reported_at_once_with_key_path_and_expectation(tmp_path: Path) -> None:
    """Errors come table by table (types, then each value's own check), then references across tables."""
    path = tmp_path / "gateway.toml"
    path.write_text(BAD)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={}, registry=registry(limit=Limit))
    exc = info.value
    assert exc.source == str(path)
    assert all(line.startswith(f"{path}: ") for line in str(exc).splitlines())
    assert exc.errors == [
        'gateway.listen[0]: expected "host:port" or a table, got an integer 8000',
        'gateway.workers: expected an integer, got a string "2"',
        "gateway.timeouts.idle: expected a number, got a string \"x\"",
        "gateway.wrokers: unknown key (did you mean 'workers'?)",
        "upstreams.u.targets[1].url: required key missing",
        ('upstreams.u.balancer: expected one of "round-robin", "weighted", "least-connections", '
         '"consistent-hash", got a string "random"'),
        "upstreams.ok.targets[0].url: a target is an origin, without path or query: 'http://127.0.0.1:1/path'",
        "routes.r.paths[0]: expected a path starting with /, got 'api'",
        'routes.broken.methods: expected an array, got a string "GET"',
        "routes.r.upstream: unknown upstream 'nope' (known: ok, u)",
        "plugins.nosuch: unknown plugin 'nosuch' (installed: limit)",
        'routes.broken.plugins.limit.max: expected an integer, got a string "ten"',
    ]


def test_values_a_type_cannot_express_are_checked() -> None:
    errs = errors_of("""
        [gateway]
        listen = ["127.0.0.1:99999", { address = "127.0.0.1:8443", tls_cert = "cert.pem" }]
        trusted_proxies = ["10.0.0.0/33"]
        log_level = "loud"
        [gateway.timeouts]
        drain = 0
        [upstreams.u]
        targets = [{ url = "http://a:1", weight = 0 }]
        hash_on = "cookie"
        [routes.r]
        paths = ["/users/{id}x"]
        methods = ["get"]
        upstream = "u"
        rewrite = "/v2/{user}"
    """)
    assert errs == [
        'gateway.listen[0]: expected "host:port" (e.g. "127.0.0.1:8000"), got \'127.0.0.1:99999\'',
        "gateway.listen[1]: tls_cert and tls_key go together (set both or neither)",
        "gateway.timeouts.drain: expected a number of seconds above 0",
        "gateway.trusted_proxies[0]: expected an IP address or CIDR, got '10.0.0.0/33'",
        'gateway.log_level: expected one of "debug", "info", "warning", "error", "critical", got \'loud\'',
        "upstreams.u.targets: every target has weight 0, so none would get traffic",
        'upstreams.u.hash_on: expected "client-ip", "path", "header:<name>" or "cookie:<name>", got \'cookie\'',
        "routes.r.paths[0]: a parameter must be a whole segment like /users/{id}, got '/users/{id}x'",
        'routes.r.methods[0]: expected an upper-case method name like "GET", got \'get\'',
        "routes.r.rewrite: {user} is not a parameter of this route's paths (available: id, rest)",
        "gateway.listen[1].tls_cert: no such file: 'cert.pem'",
    ]


def test_h2_frame_budgets_are_zero_or_more() -> None:
    errs = errors_of("""
        [gateway.limits]
        h2_max_small_data_frames_per_second = -1
        h2_max_control_frames_per_second = -5
    """)
    assert errs == ["gateway.limits.h2_max_small_data_frames_per_second: expected 0 or more",
                    "gateway.limits.h2_max_control_frames_per_second: expected 0 or more"]


def test_booleans_are_not_integers_and_literals_keep_their_type() -> None:
    errs = errors_of("""
        [gateway]
        workers = true
        via = 1
        listen = [{ address = "127.0.0.1:0", protocol = 2 }]
    """)
    assert errs == [
        'gateway.listen[0].protocol: expected one of "http1", "h2", got an integer 2',
        "gateway.workers: expected an integer, got a boolean true",
        "gateway.via: expected true or false, got an integer 1",
    ]


def test_section_of_the_wrong_shape_and_unknown_top_level_key() -> None:
    errs = errors_of("""
        routes = ["a"]
        [upstream.u]
        targets = []
    """)
    assert errs == [
        "upstream: unknown key (did you mean 'upstreams'?)",
        'routes: expected a table of named routes, got an array ["a"]',
    ]


def test_env_interpolation_with_defaults_escapes_and_missing_variables() -> None:
    text = """
        [gateway]
        request_id_header = "${HDR}"
        access_log = "${LOG:-off}"
        [admin]
        token = "$${NOT_EXPANDED}-${TOKEN}"
        [upstreams.u]
        targets = [{ url = "http://${HOST}:${PORT:-9000}" }]
    """
    cfg = loads_config(text, env={"HDR": "x-trace", "TOKEN": "sekrit", "HOST": "10.0.0.5"})
    assert cfg.gateway.request_id_header == "x-trace"
    assert cfg.gateway.access_log == "off"
    assert cfg.admin.token == "${NOT_EXPANDED}-sekrit"
    assert cfg.upstreams["u"].targets[0].url == "http://10.0.0.5:9000"
    errs = errors_of(text, env={"HDR": "x"})
    assert errs == [
        "admin.token: environment variable TOKEN is not set (set it, or give a default: ${TOKEN:-default})",
        ("upstreams.u.targets[0].url: environment variable HOST is not set"
         " (set it, or give a default: ${HOST:-default})"),
    ]


def test_env_default_may_be_empty() -> None:
    cfg = loads_config('[gateway]\nrequest_id_header = "x-${SUFFIX:-}id"', env={})
    assert cfg.gateway.request_id_header == "x-id"


@pytest.mark.parametrize("value, found", [
    ("${X-default}", "'${X-…' ('-' cannot follow a variable name)"),
    ("pre-${UNCLOSED", "'${UNCLOSED' (no closing })"),
    ("${}", "'${}' (no variable name)"),
    ("${ 1X}", "'${ …' (no variable name)"),
    ("${1X}", "'${1…' (a variable name cannot start with a digit)"),
    ("${X:default}", "'${X:…' (':' cannot follow a variable name)"),
    ("${X:-unclosed default", "'${X:-…' (no closing })"),
    ("ok-${X}-then-${", "'${' (no closing })"),
    ("${X\\nY}", "'${X\\n…' ('\\n' cannot follow a variable name)"),
])
def test_malformed_placeholder_is_an_error_not_literal_text(value: str, found: str) -> None:
    """A typo in a placeholder must not silently turn a secret into the text of the placeholder; the
    message shows the text only up to the fault (what follows may be a secret) and stays on one line."""
    errs = errors_of(f'[admin]\ntoken = "{value}"\n', env={"X": "a-secret-from-the-env"})
    assert errs == [(f"admin.token: malformed placeholder {found}: expected ${{NAME}} or ${{NAME:-default}}"
                     " (NAME: letters, digits, _; not starting with a digit); write $${ for a literal ${")]
    assert "default" not in found and "\n" not in errs[0]


def test_dollar_dollar_brace_is_a_literal_dollar_brace() -> None:
    cfg = loads_config('[admin]\ntoken = "$${X-literal}-$${}-${X}-$${Y:-z}"\n', env={"X": "x"})
    assert cfg.admin.token == "${X-literal}-${}-x-${Y:-z}"


def test_unknown_plugin_lists_installed_ones_with_a_did_you_mean() -> None:
    reg = registry(limit=Limit, **{"rate-limit": Limit})
    assert errors_of("[plugins.rate-limt]\n", reg) == [
        "plugins.rate-limt: unknown plugin 'rate-limt' (did you mean 'rate-limit'? installed: limit, rate-limit)"]
    assert errors_of("[plugins.zzz]\n", reg) == ["plugins.zzz: unknown plugin 'zzz' (installed: limit, rate-limit)"]
    assert errors_of('[consumers.c.credentials.limt]\nx = 1\n', reg) == [
        "consumers.c.credentials.limt: unknown plugin 'limt' (did you mean 'limit'? installed: limit, rate-limit)"]


def test_a_first_party_plugin_that_is_not_installed_names_its_distribution() -> None:
    reg = PluginRegistry(autoload=True)  # this checkout installs every first-party plugin ...
    for name in ("jwt", "key-auth", "cors"):
        reg.infos.pop(name)  # ... so take some away, as a pip user who installed only the core has them
    assert errors_of("[plugins.jwt]\n[routes.r]\npaths = [\"/\"]\n[routes.r.plugins.cors]\n", reg) == [
        "plugins.jwt: plugin 'jwt' is not installed (install the distribution triogate-jwt)",
        "routes.r.plugins.cors: plugin 'cors' is not installed (install the distribution triogate-cors)",
    ]
    assert errors_of("[plugins.key_auth]\n", reg)[0].startswith(
        "plugins.key_auth: unknown plugin 'key_auth' (did you mean 'key-auth'? it comes with the distribution"
        " triogate-key-auth, which is not installed; installed: acl, ")
    # with autoload disabled, nothing installed is "missing": say why it is not seen
    assert errors_of("[plugins.jwt]\n", registry()) == [(
        "plugins.jwt: unknown plugin 'jwt' (installed plugins are ignored because TRIOGATE_DISABLE_PLUGIN_AUTOLOAD"
        " is set; installed: none)")]


def test_first_party_plugin_names_match_the_repository() -> None:
    import tomllib

    from triogate.plugins import FIRST_PARTY_PLUGINS

    root = Path(__file__).resolve().parents[1]
    found = {}
    for pyproject in [*root.glob("plugins/*/pyproject.toml"), *root.glob("contrib/*/pyproject.toml")]:
        meta = tomllib.loads(pyproject.read_text())["project"]
        for name in meta.get("entry-points", {}).get("triogate.plugins", {}):
            found[name] = meta["name"]
    assert found == FIRST_PARTY_PLUGINS


def test_plugin_config_errors_carry_route_plugin_key_paths() -> None:
    errs = errors_of("""
        [routes.users]
        paths = ["/users"]
        [routes.users.plugins.limit]
        max = 5
        burst = 9
        [routes."odd name".plugins.limit]
        mode = 1
        colour = "red"
        priority = "high"
        [plugins.limit]
        max = -1.5
    """, registry(limit=Limit))
    assert errs == [
        "plugins.limit.max: expected an integer, got a number -1.5",
        "routes.users.plugins.limit: burst must not exceed max",
        'routes."odd name".plugins.limit.priority: expected an integer, got a string "high"',
        'routes."odd name".plugins.limit.mode: expected a string, got an integer 1',
        'routes."odd name".plugins.limit.colour: unknown key (expected one of max, burst, mode)',
    ]
    errs = errors_of("""
        [routes.r.plugins.limit]
        mode = 1
        colour = "red"
    """, registry(limit=Limit))
    assert errs == [
        "routes.r.plugins.limit.mode: expected a string, got an integer 1",
        "routes.r.plugins.limit.colour: unknown key (expected one of max, burst, mode)",
    ]


def test_plugin_table_must_be_a_table_and_priorities_must_name_configured_plugins() -> None:
    errs = errors_of("""
        [routes.r]
        plugins = { limit = 3 }
        [routes.s]
        plugins = { limit = {} }
        priorities = { limit = 5, other = 5 }
    """, registry(limit=Limit))
    assert errs == [
        "routes.r.plugins.limit: expected a table, got an integer 3",
        "routes.s.priorities.other: plugin 'other' is not configured on this route or globally",
    ]


class Exploding(triogate.Plugin):
    def __init__(self, config, gateway, route=None):
        super().__init__(config, gateway, route)
        raise RuntimeError("cannot reach the key store")


class SyncHook(triogate.Plugin):
    @triogate.hookimpl
    def auth(self, ctx):
        return None


class BadArgs(triogate.Plugin):
    @triogate.hookimpl
    async def transform(self, ctx, extra):
        return None


def test_plugins_that_fail_to_build_or_have_bad_hooks_are_config_errors() -> None:
    errs = errors_of("""
        [plugins.exploding]
        [routes.r.plugins.sync]
        [routes.r.plugins.badargs]
    """, registry(exploding=Exploding, sync=SyncHook, badargs=BadArgs))
    assert errs[0] == ("plugins.exploding: plugin 'exploding' failed to initialize: "
                       "RuntimeError: cannot reach the key store")
    assert errs[1] == "routes.r.plugins.sync: hook auth must be an async function (async def auth(...))"
    assert errs[2].startswith("routes.r.plugins.badargs: plugin 'badargs': Plugin 'badargs@r' for hook 'transform'")
    assert "extra" in errs[2]
    assert len(errs) == 3


def test_hook_module_errors(tmp_path: Path) -> None:
    (tmp_path / "sync_hooks.py").write_text(
        "import triogate\nPRIORITY = 'high'\n@triogate.hookimpl\ndef transform(ctx):\n    return None\n")
    (tmp_path / "broken_hooks.py").write_text("import nonexistent_module_xyz\n")
    (tmp_path / "gw.toml").write_text(
        '[gateway]\nhooks = ["./sync_hooks.py", "./broken_hooks.py", "./missing.py", "no_such_module_abc"]\n')
    reg = registry()
    cfg = load_config(tmp_path / "gw.toml", registry=reg)
    with pytest.raises(ConfigError) as info:
        Pipeline(cfg, reg, HTTPClient())
    errs = info.value.errors
    assert errs[0] == "gateway.hooks[1]: cannot load './broken_hooks.py': ModuleNotFoundError: " \
                      "No module named 'nonexistent_module_xyz'"
    assert errs[1] == f"gateway.hooks[2]: cannot load './missing.py': FileNotFoundError: no such file: " \
                      f"{tmp_path / 'missing.py'}"
    assert errs[2] == ("gateway.hooks[3]: cannot load 'no_such_module_abc': ModuleNotFoundError: "
                       "No module named 'no_such_module_abc'")
    assert errs[3] == "gateway.hooks[0]: PRIORITY must be an integer, got 'high'"
    assert len(errs) == 4


def test_unreadable_and_invalid_toml_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.toml")
    assert info.value.errors == ["cannot read file: No such file or directory"]
    bad = tmp_path / "bad.toml"
    bad.write_text("[gateway\nworkers = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert info.value.errors[0].startswith("invalid TOML: ")
    assert "line 1" in info.value.errors[0]


# --------------------------------------------------------------------------- the CLI, as a user runs it


def triogate_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "TRIOGATE_DISABLE_PLUGIN_AUTOLOAD": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "triogate", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.mark.parametrize("command", ["check", "run"])
def test_cli_prints_every_error_and_exits_2_without_traceback(tmp_path: Path, command: str) -> None:
    (tmp_path / "gateway.toml").write_text(BAD)
    proc = triogate_cli(command, "-c", "gateway.toml", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.splitlines()
    assert lines[0] == "triogate: invalid configuration (12 errors):"
    assert "  gateway.toml: gateway.workers: expected an integer, got a string \"2\"" in lines
    assert "  gateway.toml: plugins.nosuch: unknown plugin 'nosuch' (installed: none)" in lines
    assert ("  gateway.toml: routes.broken.plugins.limit: unknown plugin 'limit' (did you mean 'rate-limit'?"
            " installed plugins are ignored because TRIOGATE_DISABLE_PLUGIN_AUTOLOAD is set; installed: none)") in lines


def test_cli_check_reports_a_malformed_placeholder_with_file_and_key_path(tmp_path: Path) -> None:
    (tmp_path / "gateway.toml").write_text(
        '[gateway]\nlisten = ["127.0.0.1:0"]\n[admin]\ntoken = "${ADMIN_TOKEN-oops}"\n'
        '[upstreams.u]\ntargets = [{ url = "http://${HOST" }]\n')
    proc = triogate_cli("check", "-c", "gateway.toml", cwd=tmp_path, env={"ADMIN_TOKEN": "x" * 32})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.splitlines()
    assert lines[0] == "triogate: invalid configuration (2 errors):"
    assert lines[1].startswith("  gateway.toml: admin.token: malformed placeholder '${ADMIN_TOKEN-…' ('-' cannot"
                               " follow a variable name): expected ${NAME} or ${NAME:-default}")
    assert lines[2].startswith("  gateway.toml: upstreams.u.targets[0].url: malformed placeholder '${HOST' (no closing }):")
    assert "oops" not in proc.stderr


def test_cli_run_with_failing_hook_module_exits_2_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "hooks.py").write_text("raise RuntimeError('boom at import')\n")
    (tmp_path / "gateway.toml").write_text('[gateway]\nlisten = ["127.0.0.1:0"]\nhooks = ["./hooks.py"]\n')
    proc = triogate_cli("run", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "gateway.hooks[0]: cannot load './hooks.py': RuntimeError: boom at import" in proc.stderr


def test_cli_missing_file(tmp_path: Path) -> None:
    proc = triogate_cli("check", "-c", "nope.toml", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[1] == "  nope.toml: cannot read file: No such file or directory"


def test_route_paths_the_path_policy_refuses_are_errors():
    from triogate.config import ConfigError, parse_config

    raw = {"routes": {"a": {"paths": ["/files.", "/x;v=1", "/a%2Fb", "/ok.txt", "/v1.0/x"]},
                      "b": {"paths": ["/m;v=1"], "allow_matrix_params": True}}}
    try:
        parse_config(raw)
    except ConfigError as exc:
        errors = exc.errors
    else:
        raise AssertionError("expected errors")
    assert errors == [
        "routes.a.paths[0]: path segments ending in '.' are refused (gateway.paths.trailing_dot),"
        " so '/files.' can never match",
        "routes.a.paths[1]: routes are matched without ';' path parameters (and refuse them),"
        " so '/x;v=1' can never match",
        "routes.a.paths[2]: encoded slashes are refused (gateway.paths.encoded_slash), so '/a%2Fb' can never match",
        "routes.b.paths[0]: routes are matched without ';' path parameters, so '/m;v=1' can never match",
    ]
    kept = {"gateway": {"paths": {"encoded_slash": "keep", "trailing_dot": "keep"}},
            "routes": {"a": {"paths": ["/files.", "/a%2Fb"]}}}
    assert parse_config(kept).routes["a"].paths == ["/files.", "/a%2Fb"]


def test_header_names_in_gateway_and_upstream_settings_are_checked() -> None:
    """A header name that could never arrive (a space in it) is refused where it is configured."""
    errors = errors_of("""
        [gateway]
        access_log_headers = ["x ok", "user-agent"]
        [upstreams.u]
        targets = [{ url = "http://127.0.0.1:9" }]
        balancer = "consistent-hash"
        hash_on = "header:bad name"
        [upstreams.v]
        targets = [{ url = "http://127.0.0.1:9" }]
        hash_on = "cookie:"
    """)
    assert "gateway.access_log_headers[0]: expected a header name, got 'x ok'" in errors
    assert any(e.startswith("upstreams.u.hash_on: expected") and "'header:bad name'" in e for e in errors), errors
    assert any(e.startswith("upstreams.v.hash_on: expected") and "'cookie:'" in e for e in errors), errors


UPSTREAM = '[upstreams.u]\ntargets = [{ url = "http://127.0.0.1:9" }]\n'
STAR_HELP = ("a path is a prefix already (/svc matches /svc and everything below it; /svc/* means the same), "
             'a segment can be a parameter (/users/{id}/orders), and path_match = "exact" matches one path only')


def test_a_star_is_only_a_trailing_prefix_marker() -> None:
    """``/svc/*`` is the prefix ``/svc`` (what Kong, Traefik and KrakenD users write); any other ``*``
    would never match, so it is refused with how to write the route instead."""
    ok = loads_config(UPSTREAM + '[routes.r]\npaths = ["/svc/*", "/*", "/u/{id}/*"]\nupstream = "u"\n', env={})
    assert ok.routes["r"].paths == ["/svc/*", "/*", "/u/{id}/*"]  # shown as configured by `routes` and /routes
    errors = errors_of(UPSTREAM + textwrap.dedent("""
        [routes.r]
        paths = ["/svc/*/x", "/svc*", "*.json", "/a/**", "/ok"]
        upstream = "u"
        [routes.e]
        paths = ["/svc/*"]
        path_match = "exact"
        upstream = "u"
    """))
    assert errors == [
        f"routes.r.paths[0]: '*' is only allowed as a trailing /* (a prefix), got '/svc/*/x': {STAR_HELP}",
        f"routes.r.paths[1]: '*' is only allowed as a trailing /* (a prefix), got '/svc*': {STAR_HELP}",
        f"routes.r.paths[2]: '*' is only allowed as a trailing /* (a prefix), got '*.json': {STAR_HELP}",
        f"routes.r.paths[3]: '*' is only allowed as a trailing /* (a prefix), got '/a/**': {STAR_HELP}",
        "routes.e.paths[0]: '/svc/*' ends in /* (a prefix), but path_match = \"exact\": drop the /* or the path_match",
    ]


def test_strip_prefix_must_be_able_to_match_the_routes_paths() -> None:
    errors = errors_of(UPSTREAM + textwrap.dedent("""
        [routes.a]
        paths = ["/api", "/internal/x"]
        strip_prefix = "/v1"
        upstream = "u"
        [routes.b]
        paths = ["/users/{id}"]
        path_match = "exact"
        strip_prefix = "/users/7/orders"
        upstream = "u"
        [routes.c]
        paths = ["/Api"]
        strip_prefix = "/api"
        upstream = "u"
        [routes.d]
        paths = ["/api"]
        strip_prefix = "api"
        upstream = "u"
    """))
    assert errors == [
        ("routes.a.strip_prefix: '/v1' is not a prefix of any path this route matches ('/api', '/internal/x'), "
         "so it would never be stripped"),
        ("routes.b.strip_prefix: '/users/7/orders' is not a prefix of any path this route matches ('/users/{id}'), "
         "so it would never be stripped"),
        ("routes.c.strip_prefix: '/api' is not a prefix of any path this route matches ('/Api'), "
         "so it would never be stripped"),
        "routes.d.strip_prefix: expected a path starting with /, got 'api'",
    ]
    fine = loads_config(UPSTREAM + textwrap.dedent("""
        [routes.same]
        paths = ["/v2", "/api/v1/"]
        strip_prefix = "/api/v1"
        upstream = "u"
        [routes.deeper]
        paths = ["/api"]
        strip_prefix = "/api/v1"
        upstream = "u"
        [routes.param]
        paths = ["/users/{id}/orders"]
        strip_prefix = "/users/7"
        upstream = "u"
        [routes.star]
        paths = ["/svc/*"]
        strip_prefix = "/svc"
        upstream = "u"
        [routes.case]
        paths = ["/Api"]
        case_insensitive = true
        strip_prefix = "/api"
        upstream = "u"
        [routes.all]
        strip_prefix = "/anything"
        upstream = "u"
    """), env={})
    assert set(fine.routes) == {"same", "deeper", "param", "star", "case", "all"}


class Answers(triogate.Plugin):
    """Could answer a request itself (it has a request-phase hook)."""

    priority = 800

    @attrs.define(frozen=True)
    class Config:
        pass

    @triogate.hookimpl
    async def pre_route(self, ctx):
        return None


class OnlyLogs(triogate.Plugin):
    """Runs after the response only: it can never answer."""

    priority = 10

    @attrs.define(frozen=True)
    class Config:
        pass

    @triogate.hookimpl
    async def post_response(self, ctx, response):
        return None


def test_a_route_nothing_can_answer_is_an_error_and_one_only_a_plugin_can_answer_a_warning() -> None:
    reg = registry(answers=Answers, logs=OnlyLogs)
    errors = errors_of(UPSTREAM + textwrap.dedent("""
        [routes.bare]
        paths = ["/bare"]
        [routes.logged]
        paths = ["/logged"]
        [routes.logged.plugins.logs]
        [routes.fine]
        upstream = "u"
    """), reg)
    assert errors == [
        ("routes.bare: no upstream and no plugins, so every request would get 502: set routes.bare.upstream "
         "(or add a plugin that answers)")]
    cfg = loads_config(UPSTREAM + textwrap.dedent("""
        [plugins.answers]
        [routes.mock]
        paths = ["/mock"]
        [routes.logged]
        paths = ["/logged"]
        [routes.logged.plugins.logs]
        [routes.proxied]
        upstream = "u"
    """), env={}, registry=reg)
    pipeline = Pipeline(cfg, reg, HTTPClient())
    assert pipeline.warnings == [
        ("routes.mock: no upstream, so requests get 502 unless a plugin answers them (answers); "
         "set routes.mock.upstream if none of them does"),
        ("routes.logged: no upstream, so requests get 502 unless a plugin answers them (answers); "
         "set routes.logged.upstream if none of them does")]
    only_logs = loads_config(UPSTREAM + '[routes.logged]\npaths = ["/logged"]\n[routes.logged.plugins.logs]\n',
                             env={}, registry=reg)
    assert Pipeline(only_logs, reg, HTTPClient()).warnings == [
        ("routes.logged: no upstream, and none of its plugins runs before the upstream call, "
         "so every request will get 502: set routes.logged.upstream")]


def test_cli_check_prints_the_no_upstream_warning_and_passes(tmp_path: Path) -> None:
    hook = tmp_path / "answer_hook.py"
    hook.write_text(textwrap.dedent("""
        import triogate

        @triogate.hookimpl
        async def pre_route(ctx):
            return ctx.problem(418, "a teapot answers")
    """))
    (tmp_path / "gateway.toml").write_text(
        '[gateway]\nlisten = ["127.0.0.1:0"]\nhooks = ["answer_hook.py"]\n[routes.teapot]\npaths = ["/tea/*"]\n')
    proc = triogate_cli("check", "-c", "gateway.toml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert ("triogate: warning: routes.teapot: no upstream, so requests get 502 unless a plugin answers them "
            "(hooks:answer_hook.py); set routes.teapot.upstream if none of them does") in proc.stderr.splitlines()


def test_a_plugin_that_answers_every_request_needs_no_upstream() -> None:
    """Plugin.answers_requests (aggregate sets it): the route has no upstream on purpose, so no warning."""

    class Answering(triogate.Plugin):
        answers_requests = True

        @triogate.hookimpl
        async def transform(self, ctx: triogate.Context) -> triogate.Response:
            return triogate.Response(200, body=b"ok")

    reg = registry(answering=Answering, answers=Answers)
    cfg = loads_config(UPSTREAM + textwrap.dedent("""
        [routes.merged]
        paths = ["/merged"]
        [routes.merged.plugins.answering]
        [routes.mock]
        paths = ["/mock"]
        [routes.mock.plugins.answers]
    """), env={}, registry=reg)
    warnings = Pipeline(cfg, reg, HTTPClient()).warnings
    assert warnings == [("routes.mock: no upstream, so requests get 502 unless a plugin answers them (answers); "
                         "set routes.mock.upstream if none of them does")]
