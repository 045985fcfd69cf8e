"""The `triogate` command: init → check, routes, plugins, schema, reload without a gateway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from triogate.cli import STARTER, main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIOGATE_DISABLE_PLUGIN_AUTOLOAD", "1")


def test_init_writes_a_starter_that_check_accepts(tmp_path: Path) -> None:
    env = {**os.environ, "TRIOGATE_DISABLE_PLUGIN_AUTOLOAD": "1"}
    run = lambda *a: subprocess.run([sys.executable, "-m", "triogate", *a], cwd=tmp_path, env=env,
                                    capture_output=True, text=True, timeout=60, check=False)
    done = run("init")
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "gateway.toml").read_text()
    assert text.startswith("#:schema ./gateway.schema.json\n# triogate configuration. Reference: https://")
    assert "docs/configuration.md" not in text.replace("/blob/main/docs/configuration.md", "")  # no local path
    assert tomllib.loads(text) == STARTER
    # the file the #:schema hint points to exists, and is what `triogate schema` prints
    schema = json.loads((tmp_path / "gateway.schema.json").read_text())
    assert schema == json.loads(run("schema").stdout)
    done = run("check")
    assert (done.returncode, done.stdout) == (0, "gateway.toml: ok (1 route, 1 upstream, 0 plugin instances)\n")
    assert run("init").returncode == 1  # never overwrites without --force
    assert run("init", "--force", "-o", "other.toml").returncode == 0
    assert (tmp_path / "other.toml").read_text() == text


def test_routes_in_match_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text(textwrap.dedent("""
        [upstreams.u]
        targets = [{ url = "http://127.0.0.1:9" }]
        [routes.catchall]
        paths = []
        upstream = "u"
        [routes.users]
        paths = ["/api/users", "/api/users/{id}"]
        methods = ["GET"]
        upstream = "u"
        [routes.exact]
        paths = ["/api/users/me"]
        path_match = "exact"
        hosts = ["api.example.com"]
        upstream = "u"
    """))
    assert main(["routes", "-c", str(cfg), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["route"], r["path"]) for r in rows] == [
        ("exact", "/api/users/me"), ("users", "/api/users/{id}"), ("users", "/api/users"), ("catchall", "/")]
    assert main(["routes", "-c", str(cfg)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["ROUTE", "MATCH", "PATH", "METHODS", "HOSTS", "UPSTREAM", "PLUGINS", "(run", "order)"]
    assert out[1].split() == ["exact", "exact", "/api/users/me", "*", "api.example.com", "u", "-"]
    assert out[4].split() == ["catchall", "prefix", "/", "*", "*", "u", "-"]


def test_routes_and_check_exit_2_on_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text("[routes.r]\nupstream = 'nope'\n")
    for command in ("routes", "check"):
        assert main([command, "-c", str(cfg)]) == 2
        err = capsys.readouterr().err
        assert err == (f"triogate: invalid configuration (1 error):\n"
                       f"  {cfg}: routes.r.upstream: unknown upstream 'nope' (known: none defined)\n")


def test_plugins_without_autoload_and_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    assert capsys.readouterr().out == "no plugins installed\n"
    assert main(["plugins", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "triogate gateway.toml"
    assert set(schema["properties"]) == {"gateway", "admin", "upstreams", "routes", "plugins", "consumers"}


def test_reload_without_a_running_gateway(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text("")
    assert main(["reload", "-c", str(cfg)]) == 1
    assert capsys.readouterr().err == f"triogate: no running gateway found (no pid in {tmp_path / '.gw.toml.pid'})\n"
    (tmp_path / ".gw.toml.pid").write_text("999999999\n")
    assert main(["reload", "-c", str(cfg)]) == 1
    assert "process 999999999" in capsys.readouterr().err


def test_config_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "custom.toml").write_text("")
    monkeypatch.setenv("TRIOGATE_CONFIG", str(tmp_path / "custom.toml"))
    assert main(["check"]) == 0
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'custom.toml'}: ok")


def test_repo_gateway_toml_checks(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIOGATE_DISABLE_PLUGIN_AUTOLOAD")  # it uses the installed first-party plugins
    assert main(["check", "-c", str(ROOT / "gateway.toml")]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("command", [["schema"], ["plugins", "--verbose"]])
def test_output_into_a_pipe_closed_early_exits_quietly(command: list[str]) -> None:
    """`triogate schema | head`: no BrokenPipeError traceback; the exit status of a command killed by SIGPIPE."""
    import fcntl

    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)  # smaller than the output: the writer must block
    env = {k: v for k, v in os.environ.items() if k != "TRIOGATE_DISABLE_PLUGIN_AUTOLOAD"}  # the plugins print a lot
    proc = subprocess.Popen([sys.executable, "-m", "triogate", *command], stdout=write_end,
                            stderr=subprocess.PIPE, env=env)
    os.close(write_end)
    try:
        first = os.read(read_end, 64)  # like `head -c 64`: read a little, then go away
    finally:
        os.close(read_end)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert first
    assert err.decode() == ""
    assert proc.returncode == 141


def test_version_names_python_parser_and_plugin_distributions() -> None:
    import importlib.metadata as md
    import platform

    env = {k: v for k, v in os.environ.items() if k not in ("TRIOGATE_DISABLE_PLUGIN_AUTOLOAD", "TRIOGATE_HTTP1_PARSER")}
    done = subprocess.run([sys.executable, "-m", "triogate", "--version"], env={**env, "TRIOGATE_HTTP1_PARSER": "h11"},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"triogate {md.version('triogate')}"
    assert lines[1].startswith(f"Python {platform.python_version()} (CPython")
    assert lines[2] == f"HTTP/1.1 parser: h11 {md.version('h11')} (the reference) unless [gateway] http1_parser says otherwise"
    dists = sorted({f"{ep.dist.metadata['Name']} {ep.dist.version}" for ep in md.entry_points(group="triogate.plugins")})
    assert dists, "this checkout installs the first-party plugins"
    assert lines[3] == f"plugin distributions: {', '.join(dists)}"
    from triogate.http1 import fast_available

    if not fast_available:  # the [fast] extra is not installed: h11 was the only possible answer
        return
    done = subprocess.run([sys.executable, "-m", "triogate", "--version"], env={**env, "TRIOGATE_HTTP1_PARSER": "fast"},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.splitlines()[2] == (f"HTTP/1.1 parser: fast (llhttp through httptools {md.version('httptools')})"
                                           " unless [gateway] http1_parser says otherwise")


def test_plugins_listing_columns_and_types_as_the_docs_write_them(capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIOGATE_DISABLE_PLUGIN_AUTOLOAD")  # the first-party plugins this checkout installs
    assert main(["plugins"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert any(r.startswith("oauth2-introspection  triogate-oauth2-introspection 0.1.0  priority ") for r in rows)
    assert len({r.index(" priority ") for r in rows}) == 1  # one column, however long a distribution name is
    assert main(["plugins", "--verbose"]) == 0
    out = capsys.readouterr().out
    assert '      store ("memory" | "redis", default "memory"): ' in out
    assert "      allow (list of string, default []): " in out
    assert "      anonymous (string (optional), unset): " in out
    assert '      redis (table, default {"url": "redis://127.0.0.1:6379/0", ' in out
    assert "Literal[" not in out and "<class" not in out and "list[" not in out and "NoneType" not in out
