"""The Containerfile: what it copies exists, it runs as non-root, and it serves the config path
the Kubernetes Deployment mounts."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
REPO = HERE.parent.parent
FILE = HERE / "container" / "Containerfile"


def instructions() -> list[tuple[str, str]]:
    out, buf = [], ""
    for raw in FILE.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def test_copy_sources_exist_in_the_build_context():
    copies = [rest for word, rest in instructions() if word == "COPY" and not rest.startswith("--from")]
    assert copies
    for rest in copies:
        src = shlex.split(rest)[0]
        assert (REPO / src).exists(), src


def test_image_shape():
    ins = instructions()
    froms = [rest for w, rest in ins if w == "FROM"]
    assert len(froms) == 2 and all(f.startswith("docker.io/library/python:3.11") for f in froms)
    (user,) = [rest for w, rest in ins if w == "USER"]
    assert user not in ("root", "0")
    (expose,) = [rest for w, rest in ins if w == "EXPOSE"]
    assert set(expose.split()) == {"8000", "8001"}
    (cmd,) = [json.loads(rest) for w, rest in ins if w == "CMD"]
    assert cmd[:3] == ["run", "-c", "/etc/triogate/gateway.toml"]
    (entry,) = [json.loads(rest) for w, rest in ins if w == "ENTRYPOINT"]
    assert "PROMETHEUS_MULTIPROC_DIR" in entry[2] and entry[2].endswith('exec triogate "$@"')
    (run,) = [rest for w, rest in ins if w == "RUN" and "pip install" in rest]
    for pkg in ("./core", "./plugins/*", "./contrib/prometheus", "./contrib/opentelemetry", "./contrib/redis"):
        assert pkg in run.split()
    assert "triogate plugins --strict" in run  # the build fails if a plugin cannot load
