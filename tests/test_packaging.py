"""Packaging proven from built artifacts, not from the source tree.

1. Every distribution (core, plugins/*, contrib/*) builds an sdist and a wheel with
   ``python -m build`` (the wheel is built *from the sdist*, so a file missing from the sdist
   fails here) and its wheel METADATA is complete.
2. core + two plugins are installed from those wheels into a fresh venv (no editable
   installs, nothing from the repository on ``sys.path``): ``triogate plugins`` lists exactly
   those two, and ``triogate run`` in a subprocess proxies requests through them.
3. A plugin whose ``triogate`` range excludes the installed core, and one that fails at import,
   are reported by name (``triogate plugins``, ``triogate run`` exit 2 without a traceback, or
   skipped with a logged error under ``plugins_on_error = "skip"``).

Speed: builds run without build isolation in one shared build venv whose setuptools satisfies
every ``[build-system] requires`` (``build`` checks that), two at a time — about 1.5 s per
distribution instead of ~6.5 s with an isolated env per build. The venvs are created without
pip and filled by this interpreter's pip (``pip --python``). Everything is module-scoped.
"""

from __future__ import annotations

import concurrent.futures
import email.parser
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from pathlib import Path

import pytest
import triogate
from triogate.testing import GatewayProcess, UpstreamServer, free_port

REPO = Path(__file__).resolve().parents[1]
DISTS = [REPO / "core"] + sorted(p.parent for p in [*REPO.glob("plugins/*/pyproject.toml"),
                                                    *REPO.glob("contrib/*/pyproject.toml")])
CHOSEN = ("cors", "ip-restriction")
pytestmark = pytest.mark.slow  # ~30 s on an idle 2-core machine, ~2 min under heavy shared load
TIMINGS: dict[str, float] = {}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PYTEST", "TRIOGATE"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def run(cmd: list[str], cwd: Path, timeout: float = 300, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=clean_env(**env), capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check:
        assert proc.returncode == 0, f"{' '.join(map(str, cmd))} -> {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def pip(python: Path, *args: str, cwd: Path) -> None:
    run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", *args], cwd)


def make_venv(path: Path) -> Path:
    run([sys.executable, "-m", "venv", "--without-pip", path], path.parent, 60)
    return path / "bin" / "python"


def setuptools_requirement() -> str:
    """The strictest setuptools lower bound any distribution asks for."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    best = Version("0")
    for d in DISTS:
        for text in tomllib.loads((d / "pyproject.toml").read_text())["build-system"]["requires"]:
            req = Requirement(text)
            assert req.name == "setuptools", f"{d}: unexpected build requirement {text}"
            for spec in req.specifier:
                if spec.operator == ">=":
                    best = max(best, Version(spec.version))
    return f"setuptools>={best}"


def copy_source(src: Path, dest: Path) -> Path:
    """Build from a clean copy: no stale build/ or egg-info, no writes into the work tree."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__",
                                                             ".pytest_cache", ".venv"))
    return dest


BAD_PLUGINS = {
    "badrange": ('["triogate>=0.2,<0.3"]', "import triogate\n\n\nclass Bad(triogate.Plugin):\n    priority = 1\n"),
    "brokenimport": ('["triogate>=0.1,<0.2"]', ("import triogate\nimport triogate_missing_dependency_xyz  # noqa\n\n\n"
                                                "class Bad(triogate.Plugin):\n    priority = 1\n")),
}


def write_bad_plugin(root: Path, name: str) -> Path:
    deps, code = BAD_PLUGINS[name]
    d = root / f"triogate-{name}"
    (d / "src" / f"triogate_{name}").mkdir(parents=True)
    (d / "src" / f"triogate_{name}" / "__init__.py").write_text(code)
    (d / "README.md").write_text(f"# triogate-{name}\n\nA deliberately broken plugin for tests.\n")
    (d / "pyproject.toml").write_text(f"""
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "triogate-{name}"
version = "1.0.0"
description = "broken on purpose"
readme = "README.md"
license = "MIT"
requires-python = ">=3.11"
dependencies = {deps}

[project.entry-points."triogate.plugins"]
{name} = "triogate_{name}:Bad"

[tool.setuptools.packages.find]
where = ["src"]
""")
    return d


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{distribution dir name: dist folder}`` for every distribution plus the two broken plugins."""
    root = tmp_path_factory.mktemp("packaging")
    started = time.monotonic()
    bpy = make_venv(root / "buildenv")
    pip(bpy, "build>=1.2", setuptools_requirement(), cwd=root)
    TIMINGS["build venv"] = time.monotonic() - started

    sources = {d.name if d.name == "core" else f"{d.parent.name}/{d.name}": copy_source(d, root / "src" / d.parent.name / d.name)
               for d in DISTS}
    for name in BAD_PLUGINS:
        sources[f"bad/{name}"] = write_bad_plugin(root / "src" / "bad", name)

    def build(item: tuple[str, Path]) -> tuple[str, Path]:
        key, src = item
        out = root / "dist" / key
        run([bpy, "-m", "build", "--no-isolation", "--outdir", out, src], root, 300)
        return key, out

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(pool.map(build, sources.items()))
    TIMINGS[f"build {len(sources)} sdists+wheels"] = time.monotonic() - started
    print("packaging timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in TIMINGS.items()))  # -s shows it
    return results


def wheel_of(out: Path) -> Path:
    [whl] = out.glob("*.whl")
    return whl


def sdist_of(out: Path) -> Path:
    [sdist] = out.glob("*.tar.gz")
    return sdist


def read_metadata(whl: Path) -> tuple[email.message.Message, str | None]:
    with zipfile.ZipFile(whl) as z:
        [meta] = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        eps = [n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt")]
        return (email.parser.Parser().parsestr(z.read(meta).decode()),
                z.read(eps[0]).decode() if eps else None)


@pytest.mark.parametrize("dist", DISTS, ids=lambda d: d.name if d.name == "core" else f"{d.parent.name}/{d.name}")
def test_sdist_and_wheel_with_complete_metadata(built: dict[str, Path], dist: Path) -> None:
    key = dist.name if dist.name == "core" else f"{dist.parent.name}/{dist.name}"
    out = built[key]
    meta, entry_points = read_metadata(wheel_of(out))
    project = tomllib.loads((dist / "pyproject.toml").read_text())["project"]
    assert meta["Name"] == project["name"]
    assert meta["Summary"] and len(meta["Summary"]) > 20, "description"
    assert meta.get_payload().strip(), "long description (README) missing"
    assert meta["License-Expression"] or meta["License"], "license"
    assert meta.get_all("Classifier"), "classifiers"
    assert meta["Requires-Python"] == ">=3.11"
    assert meta.get_all("Project-URL"), "urls"
    with tarfile.open(sdist_of(out)) as tar:
        names = tar.getnames()
    assert any(n.endswith("/PKG-INFO") for n in names) and any(n.endswith("/pyproject.toml") for n in names)
    assert any(n.endswith("/README.md") for n in names)
    if dist.name == "core":  # the admin UI's files are package data (docs/admin-api.md)
        with zipfile.ZipFile(wheel_of(out)) as z:
            in_wheel = set(z.namelist())
        for name in ("index.html", "app.js", "style.css", "favicon.svg"):
            assert f"triogate/ui/{name}" in in_wheel, name
            assert any(n.endswith(f"/src/triogate/ui/{name}") for n in names), name
    if dist.parent.name == "plugins":
        assert project["name"] == f"triogate-{dist.name}"
        requires = meta.get_all("Requires-Dist") or []
        core_reqs = [r for r in requires if r.startswith("triogate") and "extra ==" not in r]
        assert core_reqs and all(r.startswith(("triogate<", "triogate>", "triogate=")) for r in core_reqs[:1]), requires
        assert entry_points and "[triogate.plugins]" in entry_points
        assert f"\n{dist.name} = " in entry_points, entry_points


@pytest.fixture(scope="module")
def venv(built: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with core + the two chosen plugins, installed from the wheels only."""
    root = tmp_path_factory.mktemp("venv")
    started = time.monotonic()
    py = make_venv(root / "venv")
    wheels = [wheel_of(built["core"])] + [wheel_of(built[f"plugins/{n}"]) for n in CHOSEN]
    pip(py, *map(str, wheels), cwd=root)
    TIMINGS["fresh venv from wheels"] = time.monotonic() - started
    print(f"packaging timings: fresh venv from wheels {TIMINGS['fresh venv from wheels']:.1f}s")
    return py


def test_installed_from_wheels_not_from_the_tree(venv: Path, tmp_path: Path) -> None:
    code = ("import json, sys, triogate, triogate_cors, triogate_ip_restriction, importlib.metadata as md;"
            "print(json.dumps({'files': [triogate.__file__, triogate_cors.__file__, triogate_ip_restriction.__file__],"
            "'path': sys.path, 'direct': [d.read_text('direct_url.json') for d in md.distributions()"
            " if d.metadata['Name'].startswith('triogate')]}))")
    info = json.loads(run([venv, "-c", code], tmp_path).stdout)
    for f in info["files"]:
        assert f.startswith(str(venv.parent.parent)) and "site-packages" in f, f
    assert not any(p.startswith(str(REPO)) for p in info["path"]), info["path"]
    for direct in info["direct"]:
        assert direct is None or '"editable": true' not in direct, direct


def test_triogate_plugins_lists_exactly_the_two(venv: Path, tmp_path: Path) -> None:
    triogate_bin = venv.parent / "triogate"
    listed = json.loads(run([triogate_bin, "plugins", "--json"], tmp_path).stdout)
    assert sorted(p["name"] for p in listed) == sorted(CHOSEN)
    by_name = {p["name"]: p for p in listed}
    assert by_name["cors"]["distribution"] == "triogate-cors" and by_name["cors"]["version"] == "0.1.0"
    assert by_name["ip-restriction"]["priority"] == 1990
    verbose = run([triogate_bin, "plugins", "--verbose"], tmp_path).stdout
    for expected in ("triogate-cors", "triogate-ip-restriction", "0.1.0", "post_response", "pre_route",
                     "origins", "allowed origins", "deny"):
        assert expected in verbose, verbose


def triogate_run(venv: Path, cfg: Path, **env: str) -> GatewayProcess:
    """``triogate run`` through the venv's console script (not ``python -m``), from the config's directory."""
    return GatewayProcess(cfg, command=[venv.parent / "triogate"], env=clean_env(**env))


GATEWAY_TOML = """
[gateway]
listen = ["127.0.0.1:{port}"]
access_log = "off"
{extra_gateway}

[upstreams.app]
targets = [{{ url = "{upstream}" }}]

[routes.api]
paths = ["/api"]
upstream = "app"
strip_prefix = "/api"

[routes.api.plugins.cors]
origins = ["https://app.example.com"]
credentials = true

[routes.internal]
paths = ["/internal"]
upstream = "app"

[routes.internal.plugins.ip-restriction]
deny = ["127.0.0.0/8", "::1"]
{extra}
"""


async def test_triogate_run_serves_through_the_installed_plugins(venv: Path, tmp_path: Path,
                                                                 upstream: UpstreamServer) -> None:
    port = free_port()
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(GATEWAY_TOML.format(port=port, upstream=upstream.url, extra="", extra_gateway=""))
    async with triogate_run(venv, cfg) as proc:
        client = triogate.HTTPClient()
        try:
            base = f"http://127.0.0.1:{port}"
            r = await client.fetch("GET", base + "/api/users", headers={"origin": "https://app.example.com"}, timeout=10)
            assert r.status == 200 and r.json()["path"] == "/users"
            assert r.headers["access-control-allow-origin"] == "https://app.example.com"
            assert r.headers["access-control-allow-credentials"] == "true"
            r = await client.fetch("OPTIONS", base + "/api/users", timeout=10, headers={
                "origin": "https://app.example.com", "access-control-request-method": "POST"})
            assert r.status == 204 and r.headers["access-control-allow-methods"]
            r = await client.fetch("GET", base + "/internal/x", timeout=10)
            assert r.status == 403 and r.headers["content-type"] == "application/problem+json"
            assert r.json()["request_id"] == r.headers["x-request-id"]
            assert [q.path for q in upstream.requests] == ["/users"]
        finally:
            await client.aclose()
    assert proc.returncode == 0, proc.output()[-3000:]
    assert "Traceback" not in proc.output()


# --------------------------------------------------------------------------- broken plugins


@pytest.fixture(scope="module")
def broken_site(built: dict[str, Path], venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two broken plugin wheels installed into a separate target dir (added with PYTHONPATH).

    ``--no-deps`` here is the point: it recreates what a user gets after upgrading the core past
    a plugin's range (pip would otherwise refuse or fetch another triogate).
    """
    target = tmp_path_factory.mktemp("broken-site")
    pip(venv, "--no-deps", "--target", str(target), *(str(wheel_of(built[f"bad/{n}"])) for n in BAD_PLUGINS),
        cwd=target)
    return target


def test_triogate_plugins_reports_broken_plugins_by_name(venv: Path, broken_site: Path, tmp_path: Path) -> None:
    triogate_bin = venv.parent / "triogate"
    proc = run([triogate_bin, "plugins"], tmp_path, PYTHONPATH=str(broken_site))
    lines = {ln.split()[0]: ln for ln in proc.stdout.splitlines() if ln.strip() and not ln.startswith(" ")}
    assert set(lines) == {*CHOSEN, *BAD_PLUGINS}, proc.stdout
    assert "ERROR" in lines["badrange"] and "requires triogate" in lines["badrange"] and ">=0.2" in lines["badrange"]
    assert "triogate 0.1.0 is installed" in lines["badrange"]
    assert "ERROR" in lines["brokenimport"] and "triogate_missing_dependency_xyz" in lines["brokenimport"]
    assert "Traceback" not in proc.stdout + proc.stderr
    strict = run([triogate_bin, "plugins", "--strict"], tmp_path, check=False, PYTHONPATH=str(broken_site))
    assert strict.returncode == 1


@pytest.mark.parametrize("name, reason", [("badrange", "requires triogate"),
                                          ("brokenimport", "triogate_missing_dependency_xyz")])
def test_triogate_run_refuses_a_broken_plugin_by_name(venv: Path, broken_site: Path, tmp_path: Path,
                                                      name: str, reason: str) -> None:
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(GATEWAY_TOML.format(port=free_port(), upstream="http://127.0.0.1:9", extra_gateway="",
                                       extra=f"\n[plugins.{name}]\n"))
    proc = run([venv.parent / "triogate", "run", "-c", cfg], tmp_path, 60, check=False, PYTHONPATH=str(broken_site))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert f"plugins.{name}" in out and reason in out, out
    assert "Traceback" not in out


async def test_triogate_run_skips_broken_plugins_when_told(venv: Path, broken_site: Path, tmp_path: Path,
                                                           upstream: UpstreamServer) -> None:
    port = free_port()
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(GATEWAY_TOML.format(port=port, upstream=upstream.url, extra_gateway='plugins_on_error = "skip"',
                                       extra="\n[plugins.badrange]\n\n[plugins.brokenimport]\n"))
    async with triogate_run(venv, cfg, PYTHONPATH=str(broken_site)) as proc:
        client = triogate.HTTPClient()
        try:
            r = await client.fetch("GET", f"http://127.0.0.1:{port}/api/x", timeout=10,
                                   headers={"origin": "https://app.example.com"})
            assert r.status == 200 and r.headers["access-control-allow-origin"] == "https://app.example.com"
        finally:
            await client.aclose()
    text = proc.output()
    for name in BAD_PLUGINS:
        assert f"plugin '{name}' skipped" in text, text
    assert "requires triogate" in text and "triogate_missing_dependency_xyz" in text
    assert "Traceback" not in text

