"""`triogate run --watch` / `[gateway] watch`: a changed config file (or hook module) reloads,
through the same validate-then-swap path as SIGHUP; an invalid save keeps the old config serving."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import py_compile
import ssl
from pathlib import Path

import trio
from triogate.configwatch import watched_paths
from triogate.plugins import load_hook_module
from triogate.testing import GatewayClient, GatewayProcess, UpstreamServer, free_port
from triogate.testing.pki import Issued, TestPKI, tls_request

ENV = {**os.environ, "TRIOGATE_DISABLE_PLUGIN_AUTOLOAD": "1"}
GOOD_HOOK = "import triogate\n\n@triogate.hookimpl\nasync def startup(gateway):\n    pass\n"
BAD_HOOK = ("import triogate\n\n@triogate.hookimpl\nasync def startup(gateway):\n"
            "    raise RuntimeError('watched hook fails on purpose')\n")


def config_text(port: int, upstream: UpstreamServer, path: str, *, watch_key: bool = False, hooks: bool = False) -> str:
    return f"""
[gateway]
listen = ["127.0.0.1:{port}"]
{'watch = true' if watch_key else ''}
{'hooks = ["./hooks.py"]' if hooks else ''}
[upstreams.u]
targets = [{{ url = "{upstream.url}" }}]
[routes.r]
paths = ["{path}"]
upstream = "u"
"""


async def status_of(url: str, path: str) -> int:
    client = GatewayClient(url)
    try:
        with trio.fail_after(5):
            return (await client.get(path)).status
    finally:
        await client.aclose()


async def until_serves(gw: GatewayProcess, path: str, times: int = 1) -> None:
    """Wait (bounded) until ``path`` answers 200, then check it does ``times`` times in a row."""
    with trio.fail_after(15):
        while await status_of(gw.url, path) != 200:
            await trio.sleep(0.1)
    for _ in range(times):
        assert await status_of(gw.url, path) == 200, gw.output()


async def until_logged(gw: GatewayProcess, text: str, count: int = 1) -> None:
    with trio.fail_after(15):
        while gw.output().count(text) < count:
            await trio.sleep(0.1)


def save_by_rename(path: Path, text: str) -> None:
    """What editors do: write a temporary file, rename it over the original (new inode)."""
    tmp = path.with_name(path.name + ".swp")
    tmp.write_text(text)
    os.replace(tmp, path)


async def test_watch_edit_rename_invalid_fix_and_hook(tmp_path: Path, upstream: UpstreamServer) -> None:
    port = free_port()
    cfg = tmp_path / "gateway.toml"
    hooks = tmp_path / "hooks.py"
    hooks.write_text(GOOD_HOOK)
    cfg.write_text(config_text(port, upstream, "/a", hooks=True))
    async with GatewayProcess(cfg, env=ENV, args=["--watch"]) as gw:
        assert await status_of(gw.url, "/a") == 200
        assert "watching " in gw.output() and str(hooks) in gw.output()

        cfg.write_text(config_text(port, upstream, "/b", hooks=True))  # written in place
        await until_serves(gw, "/b")
        assert await status_of(gw.url, "/a") == 404

        save_by_rename(cfg, config_text(port, upstream, "/c", hooks=True))
        await until_serves(gw, "/c")
        assert await status_of(gw.url, "/b") == 404

        # an invalid save: every error logged, one line each; the old config keeps serving
        save_by_rename(cfg, config_text(port, upstream, "/d", hooks=True).replace('upstream = "u"', 'upstream = "nope"')
                       + "\n[routes.x]\npaths = 5\n")
        await until_logged(gw, "reload rejected, the running config keeps serving (2/2)")
        rejected = [line for line in gw.output().splitlines() if "reload rejected" in line]
        assert len(rejected) == 2, rejected
        assert any("routes.r.upstream" in line for line in rejected), rejected
        assert any("routes.x.paths" in line for line in rejected), rejected
        assert await status_of(gw.url, "/c") == 200
        assert await status_of(gw.url, "/d") == 404

        # fixing the file applies it
        cfg.write_text(config_text(port, upstream, "/d", hooks=True))
        await until_serves(gw, "/d")
        outcome = json.loads(Path(str(gw.pid_file) + ".reload.json").read_text())
        assert outcome["ok"] is True and outcome["workers"][0]["config_version"] == 4, outcome

        # the hook module is watched too: a failing startup is refused, a fixed one applied
        hooks.write_text(BAD_HOOK)
        await until_logged(gw, "watched hook fails on purpose")
        assert await status_of(gw.url, "/d") == 200
        hooks.write_text(GOOD_HOOK + "\n# fixed\n")
        await until_logged(gw, "config reloaded (version 5)")
        assert await status_of(gw.url, "/d") == 200

        # a refused file that adds a hook module: fixing that module (not the file) applies it
        extra = tmp_path / "extra.py"
        extra.write_text(BAD_HOOK.replace("watched hook fails", "added hook fails"))
        save_by_rename(cfg, config_text(port, upstream, "/e", hooks=True).replace(
            'hooks = ["./hooks.py"]', 'hooks = ["./hooks.py", "./extra.py"]'))
        await until_logged(gw, "added hook fails on purpose")
        assert await status_of(gw.url, "/d") == 200
        assert await status_of(gw.url, "/e") == 404
        extra.write_text(GOOD_HOOK + "\n# fixed\n")
        await until_serves(gw, "/e")
    assert gw.returncode == 0


async def test_watch_with_workers(tmp_path: Path, upstream: UpstreamServer) -> None:
    """With workers the supervisor watches, validates once and fans the reload out to every worker.
    Turned on by the config key here (the test above uses --watch)."""
    port = free_port()
    cfg = tmp_path / "gateway.toml"
    key = True
    cfg.write_text(config_text(port, upstream, "/a", watch_key=key))
    async with GatewayProcess(cfg, env=ENV, args=["--workers", "2"]) as gw:
        save_by_rename(cfg, config_text(port, upstream, "/b", watch_key=key))
        await until_serves(gw, "/b", times=6)  # every worker (any may take a connection)
        result = Path(str(gw.pid_file) + ".reload.json")
        with trio.fail_after(10):
            while not result.exists():
                await trio.sleep(0.05)
        outcome = json.loads(result.read_text())
        assert outcome["ok"] is True and sorted(w["worker"] for w in outcome["workers"]) == [0, 1], outcome
        cfg.write_text(config_text(port, upstream, "/c", watch_key=key).replace('upstream = "u"', 'upstream = "x"'))
        await until_logged(gw, "reload rejected, every worker keeps its running config (1/1)")
        assert await status_of(gw.url, "/b") == 200


async def test_without_watch_nothing_reloads(tmp_path: Path, upstream: UpstreamServer) -> None:
    port = free_port()
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(config_text(port, upstream, "/a"))
    async with GatewayProcess(cfg, env=ENV) as gw:
        cfg.write_text(config_text(port, upstream, "/b"))
        with trio.move_on_after(1.0):  # twice the debounce: a watcher would have reloaded by then
            while True:
                await trio.sleep(0.1)
        assert await status_of(gw.url, "/a") == 200
        assert await status_of(gw.url, "/b") == 404
        assert "watching" not in gw.output()


def test_a_hook_module_is_loaded_from_its_source_not_a_stale_pyc(tmp_path: Path) -> None:
    """An edit that keeps the size and the mtime's second (a quick fix saved right away) must be
    what the next reload runs: Python's bytecode cache would serve the old code."""
    hook = tmp_path / "hooks.py"
    hook.write_text("VALUE = 'one'\n")
    assert load_hook_module("./hooks.py", tmp_path).VALUE == "one"
    py_compile.compile(str(hook), cfile=importlib.util.cache_from_source(str(hook)))
    stat = hook.stat()
    hook.write_text("VALUE = 'two'\n")  # same size
    os.utime(hook, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime: the .pyc looks current
    assert load_hook_module("./hooks.py", tmp_path).VALUE == "two"


def tls_config_text(port: int, upstream: UpstreamServer, cert: Path, key: Path) -> str:
    return f"""
[gateway]
listen = [{{ address = "127.0.0.1:{port}", tls_cert = "{cert.name}", tls_key = "{key.name}" }}]
[upstreams.u]
targets = [{{ url = "{upstream.url}" }}]
[routes.r]
paths = ["/"]
upstream = "u"
"""


async def served_certificate(port: int, pki: TestPKI) -> str:
    """The SHA-256 fingerprint of the certificate a new TLS connection is shown (chain verified against
    the test CA; the subject is not checked, so certificates for other names can be rotated in), after
    a request on that connection was answered 200."""
    ctx = ssl.create_default_context(cafile=pki.ca_file)
    ctx.check_hostname = False
    stream = trio.SSLStream(await trio.open_tcp_stream("127.0.0.1", port), ctx, server_hostname="127.0.0.1")
    try:
        with trio.fail_after(5):
            await stream.do_handshake()
            der = stream.getpeercert(binary_form=True)
            await stream.send_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
            head = await stream.receive_some(65536)
    finally:
        await trio.aclose_forcefully(stream)
    assert head.startswith(b"HTTP/1.1 200 "), head[:200]
    return hashlib.sha256(der).hexdigest()


async def until_served(port: int, pki: TestPKI, issued: Issued) -> None:
    with trio.fail_after(15):
        while await served_certificate(port, pki) != issued.fingerprint:
            await trio.sleep(0.1)


def install(issued: Issued, cert: Path, key: Path, *, rename: bool) -> None:
    """Put ``issued``'s certificate and key at the listener's paths: written in place, or (``rename``)
    as editors and cert-manager do: a new file renamed over the old one."""
    for src, dst in ((issued.key_file, key), (issued.cert_file, cert)):
        if rename:
            save_by_rename(dst, Path(src).read_text())
        else:
            dst.write_text(Path(src).read_text())


async def test_watch_rotates_the_listener_certificate(tmp_path: Path, upstream: UpstreamServer) -> None:
    """The listener's certificate and key files are watched: a new certificate (written in place, or
    saved by rename) is what new TLS connections see, without a restart; a broken certificate file
    keeps the running one serving: the reload is refused, naming the key and the file; fixing the file
    applies it."""
    pki = TestPKI(tmp_path / "pki")
    first, second, third, fixed = (pki.server("127.0.0.1"), pki.server("127.0.0.1"), pki.server("localhost"),
                                   pki.server("gateway.example"))
    assert len({first.serial, second.serial, third.serial, fixed.serial}) == 4
    assert third.subject != first.subject != fixed.subject
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    install(first, cert, key, rename=False)
    port = free_port()
    (tmp_path / "etc").mkdir()
    cfg = tmp_path / "etc" / "gateway.toml"
    cfg.write_text(tls_config_text(port, upstream, cert, key))
    # listener files are used as written, relative to the working directory (docs/tls.md), not to the
    # config's folder: started elsewhere, the watcher must watch the files the listener reads
    async with GatewayProcess(cfg, env=ENV, args=["--watch"], cwd=tmp_path) as gw:
        pid = gw.pid
        assert str(cert) in gw.output() and str(key) in gw.output()  # "watching ..." names them
        assert f"listening on https://127.0.0.1:{port} " in gw.output()
        assert await served_certificate(port, pki) == first.fingerprint

        install(second, cert, key, rename=False)  # another serial, written in place
        await until_served(port, pki, second)

        install(third, cert, key, rename=True)  # another subject, saved by rename
        await until_served(port, pki, third)

        # a broken certificate: the reload is refused, naming the key and the file; the running one keeps serving
        save_by_rename(cert, "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
        await until_logged(gw, "reload rejected, the running config keeps serving (1/1)")
        rejected = [line for line in gw.output().splitlines() if "reload rejected" in line]
        assert len(rejected) == 1 and "gateway.listen[0].tls_cert" in rejected[0] and repr(cert.name) in rejected[0], \
            rejected
        outcome = json.loads(Path(str(gw.pid_file) + ".reload.json").read_text())
        assert outcome["ok"] is False, outcome
        for _ in range(3):
            assert await served_certificate(port, pki) == third.fingerprint
        assert "TLS files not reloaded" not in gw.output()  # refused up front, not found broken by a connection

        install(fixed, cert, key, rename=True)  # fixing it applies it
        await until_served(port, pki, fixed)
        assert gw.pid == pid and gw.returncode is None  # never restarted
    assert gw.returncode == 0


def test_watched_listener_files_resolve_like_the_listener_reads_them(tmp_path: Path, monkeypatch) -> None:
    """Listener certificate, key, client CA and CRL are watched, relative to the working directory (as the
    listener opens them); hooks and upstream TLS files relative to the config's folder (as they are loaded)."""
    run, etc = tmp_path / "run", tmp_path / "etc"
    run.mkdir()
    monkeypatch.chdir(run)
    raw = {"gateway": {"hooks": ["./hooks.py"],
                       "listen": [{"address": "127.0.0.1:8443", "tls_cert": "tls/server.pem", "tls_key": "tls/server.key",
                                   "client_auth": "required", "client_ca": "tls/ca.pem",
                                   "client_crl": "/abs/crl.pem"}]},
           "upstreams": {"u": {"tls": {"ca": "up-ca.pem"}}}}
    assert watched_paths(etc / "gateway.toml", raw) == [
        etc / "gateway.toml", etc / "hooks.py", run / "tls/server.pem", run / "tls/server.key", run / "tls/ca.pem",
        Path("/abs/crl.pem"), etc / "up-ca.pem"]


async def test_watch_with_workers_applies_a_rotated_crl_on_every_worker(tmp_path: Path,
                                                                       upstream: UpstreamServer) -> None:
    """An mTLS listener's CRL is watched too: a new CRL saved by rename (revoking alice) is seen by the
    supervisor, which fans the reload out; every worker then refuses alice's new handshakes."""
    pki = TestPKI(tmp_path / "pki")
    server, alice, bob = pki.server("127.0.0.1"), pki.client("alice"), pki.client("bob")
    crl = tmp_path / "clients-crl.pem"
    crl.write_text(Path(pki.crl([], name="empty")).read_text())
    port = free_port()
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(f"""
[gateway]
[[gateway.listen]]
address = "127.0.0.1:{port}"
tls_cert = "{server.cert_file}"
tls_key = "{server.key_file}"
client_auth = "required"
client_ca = "{pki.ca_file}"
client_crl = "{crl}"
[upstreams.u]
targets = [{{ url = "{upstream.url}" }}]
[routes.r]
paths = ["/"]
upstream = "u"
""")
    get = b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n"

    async def served(who: Issued) -> bool:
        try:
            return (await tls_request(port, get, pki.client_context(who))).startswith(b"HTTP/1.1 200 ")
        except ssl.SSLError:
            return False

    async with GatewayProcess(cfg, env=ENV, args=["--workers", "2", "--watch"]) as gw:
        assert str(crl) in gw.output()  # watched
        for _ in range(6):  # every worker (any may take a connection)
            assert await served(alice)
        save_by_rename(crl, Path(pki.crl([alice], name="revoking")).read_text())
        with trio.fail_after(15):
            while await served(alice):
                await trio.sleep(0.1)
        for _ in range(6):
            assert not await served(alice)
            assert await served(bob)
        outcome = json.loads(Path(str(gw.pid_file) + ".reload.json").read_text())
        assert outcome["ok"] is True and sorted(w["worker"] for w in outcome["workers"]) == [0, 1], outcome
