"""Entry-point discovery from really installed distributions (pip-installed wheels), plugins
that cannot load (incompatible triogate, failing import), TRIOGATE_DISABLE_PLUGIN_AUTOLOAD."""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import os
import signal
import sys
import textwrap
import zipfile
from functools import partial
from pathlib import Path

import pytest
import trio
import triogate
from triogate.plugins import PluginRegistry
from triogate.testing import GatewayClient, UpstreamServer, free_port

HELLO = textwrap.dedent('''
    """A tiny plugin shipped as its own distribution."""
    import attrs
    import triogate


    class Hello(triogate.Plugin):
        """Adds a greeting header to forwarded requests."""

        priority = 500

        @attrs.define(frozen=True)
        class Config:
            greeting: str = triogate.setting("hello", description="value of the x-greeting header")

        @triogate.hookimpl
        async def startup(self, gateway):
            (await gateway.shared("hello", list, scope="process")).append(self.route)

        @triogate.hookimpl
        async def transform(self, ctx):
            ctx.request.headers.set("x-greeting", self.config.greeting)
''')
FUTURE = textwrap.dedent('''
    import triogate


    class Future(triogate.Plugin):
        priority = 1
''')
BROKEN = "raise ImportError('libfoo.so.1: cannot open shared object file')\n"


def make_wheel(out_dir: Path, dist: str, version: str, modules: dict[str, str], entry_points: dict[str, str],
               requires: tuple[str, ...] = ()) -> Path:
    """A minimal, valid pure-Python wheel (PEP 427) with ``triogate.plugins`` entry points."""
    norm = dist.replace("-", "_")
    info = f"{norm}-{version}.dist-info"
    files = dict(modules)
    files[f"{info}/METADATA"] = "\n".join(
        ["Metadata-Version: 2.1", f"Name: {dist}", f"Version: {version}", "Summary: a test plugin",
         *(f"Requires-Dist: {r}" for r in requires)]) + "\n"
    files[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: triogate-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{info}/entry_points.txt"] = "[triogate.plugins]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    record = []
    for name, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    path = out_dir / f"{norm}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three plugin distributions, pip-installed into their own directory."""
    import subprocess

    build = tmp_path_factory.mktemp("wheels")
    target = tmp_path_factory.mktemp("site")
    wheels = [
        make_wheel(build, "triogate-hello", "1.2.3", {"triogate_hello/__init__.py": HELLO},
                   {"hello": "triogate_hello:Hello"}, ("triogate>=0.1,<0.2",)),
        make_wheel(build, "triogate-future", "2.0.0", {"triogate_future/__init__.py": FUTURE},
                   {"future": "triogate_future:Future"}, ("triogate>=9",)),
        make_wheel(build, "triogate-broken", "0.0.1", {"triogate_broken/__init__.py": BROKEN},
                   {"broken": "triogate_broken:Broken"}, ("triogate",)),
    ]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--disable-pip-version-check", "--target", str(target), *map(str, wheels)],
                   check=True, timeout=120)
    assert (target / "triogate_hello-1.2.3.dist-info" / "entry_points.txt").exists()
    return target


def env_with(site: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TRIOGATE_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = str(site)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


async def cli(site: Path, *args: str, cwd: Path | None = None, **env: str) -> trio.CompletedProcess:
    with trio.fail_after(60):
        return await trio.run_process([sys.executable, "-m", "triogate", *args], cwd=cwd, env=env_with(site, **env),
                                      capture_stdout=True, capture_stderr=True, check=False)


async def test_triogate_plugins_lists_installed_distributions(site: Path) -> None:
    done = await cli(site, "plugins", "--json")
    assert done.returncode == 0, done.stderr
    infos = {i["name"]: i for i in json.loads(done.stdout)}
    assert infos["hello"] == {
        "name": "hello", "distribution": "triogate-hello", "version": "1.2.3", "priority": 500,
        "hooks": ["startup", "transform"],
        "config": [{"name": "greeting", "type": "string", "required": False, "default": "hello",
                    "description": "value of the x-greeting header"}],
    }
    assert infos["future"] == {
        "name": "future", "distribution": "triogate-future", "version": "2.0.0",
        "error": f"requires triogate>=9, but triogate {triogate.__version__} is installed"}
    assert infos["broken"] == {
        "name": "broken", "distribution": "triogate-broken", "version": "0.0.1",
        "error": "failed to import triogate_broken:Broken: ImportError: libfoo.so.1: cannot open shared object file"}

    done = await cli(site, "plugins", "--verbose")
    out = done.stdout.decode()
    assert "    distribution: triogate-hello  version: 1.2.3" in out
    assert "    priority: 500  hooks: startup, transform" in out
    assert '      greeting (string, default "hello"): value of the x-greeting header' in out
    assert "ERROR: requires triogate>=9" in out
    assert (await cli(site, "plugins", "--strict")).returncode == 1

    done = await cli(site, "plugins", "--json", TRIOGATE_DISABLE_PLUGIN_AUTOLOAD="1")
    assert json.loads(done.stdout) == []


@pytest.mark.parametrize(("name", "reason"), [
    ("future", f"requires triogate>=9, but triogate {triogate.__version__} is installed"),
    ("broken", "failed to import triogate_broken:Broken: ImportError: libfoo.so.1: cannot open shared object file"),
])
async def test_unusable_plugin_is_refused_by_name_or_skipped(tmp_path: Path, site: Path, name: str, reason: str) -> None:
    cfg = tmp_path / "gateway.toml"
    base = ('[gateway]\nlisten = ["127.0.0.1:0"]\n{extra}\n[upstreams.u]\ntargets = [{{ url = "http://127.0.0.1:9" }}]\n'
            '[routes.r]\npaths = ["/"]\nupstream = "u"\n[routes.r.plugins.NAME]\n')
    base = base.replace("NAME", name)
    cfg.write_text(base.format(extra=""))
    for command in ("check", "run"):
        done = await cli(site, command, cwd=tmp_path)
        err = done.stderr.decode()
        assert done.returncode == 2, err
        assert "Traceback" not in err
        assert err.splitlines()[1] == (f"  gateway.toml: routes.r.plugins.{name}: plugin '{name}' cannot be used: {reason}"
                                       ' (set [gateway] plugins_on_error = "skip" to start without it)')
    cfg.write_text(base.format(extra='plugins_on_error = "skip"'))
    done = await cli(site, "check", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode() == (f"triogate: warning: plugin '{name}' skipped (routes.r.plugins.{name}): {reason}\n")


async def test_installed_plugin_serves_requests_through_the_cli(tmp_path: Path, site: Path, upstream: UpstreamServer,
                                                               nursery: trio.Nursery) -> None:
    port = free_port()
    (tmp_path / "gateway.toml").write_text(textwrap.dedent(f"""
        [gateway]
        listen = ["127.0.0.1:{port}"]
        access_log = "off"
        plugins_on_error = "skip"
        [upstreams.u]
        targets = [{{ url = "{upstream.url}" }}]
        [routes.r]
        paths = ["/"]
        upstream = "u"
        [routes.r.plugins.hello]
        greeting = "bonjour"
        [routes.r.plugins.broken]
    """))
    log = (tmp_path / "stderr.log").open("wb")
    proc = await nursery.start(partial(
        trio.run_process, [sys.executable, "-m", "triogate", "run"], cwd=tmp_path, env=env_with(site), stderr=log,
        check=False))
    client = GatewayClient(f"http://127.0.0.1:{port}")
    try:
        with trio.fail_after(20):
            while True:
                try:
                    await (await trio.open_tcp_stream("127.0.0.1", port)).aclose()
                    break
                except OSError:
                    assert proc.returncode is None, (tmp_path / "stderr.log").read_text()
                    await trio.sleep(0.05)
        with trio.fail_after(5):
            r = await client.get("/x")
        assert r.status == 200
        assert r.json()["headers"]["x-greeting"] == ["bonjour"]
        stderr = (tmp_path / "stderr.log").read_text()
        assert "ERROR triogate: plugin 'broken' skipped (routes.r.plugins.broken): failed to import" in stderr
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(10):
            await proc.wait()
        assert proc.returncode == 0
    finally:
        await client.aclose()
        if proc.returncode is None:
            proc.kill()
        log.close()


@pytest.fixture
def on_path(site: Path):
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    try:
        yield site
    finally:
        sys.path.remove(str(site))
        for mod in ("triogate_hello", "triogate_future", "triogate_broken"):
            sys.modules.pop(mod, None)


async def test_registry_loads_entry_points_in_process(on_path: Path, upstream: UpstreamServer, gateway_factory,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIOGATE_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    reg = PluginRegistry()
    info = reg.get("hello")
    assert info is not None and info.cls is not None
    assert info.cls.__module__ == "triogate_hello"
    assert Path(sys.modules["triogate_hello"].__file__).is_relative_to(on_path)
    assert (info.distribution, info.version) == ("triogate-hello", "1.2.3")
    assert {i.name for i in reg.broken} >= {"future", "broken"}
    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "plugins": {"hello": {}},
        "routes": {"r": {"paths": ["/"], "upstream": "u"}, "s": {"paths": ["/s"], "upstream": "u",
                                                                   "plugins": {"hello": {"greeting": "hej"}}}},
    }, registry=reg)
    assert (await gw.client.get("/x")).json()["headers"]["x-greeting"] == ["hello"]
    assert (await gw.client.get("/s")).json()["headers"]["x-greeting"] == ["hej"]
    assert sorted(await gw.gateway.services.shared("hello", list, scope="process"), key=str) == [None, "s"]

    monkeypatch.setenv("TRIOGATE_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert PluginRegistry().infos == {}
