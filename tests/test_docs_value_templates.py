"""The code in docs/value-templates.md runs: its scripts, and its example plugin behind a live gateway."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "value-templates.md"
FENCE = re.compile(r"^```python\n# file: (\S+)\n(.*?)^```", re.DOTALL | re.MULTILINE)


def blocks() -> dict[str, str]:
    found = {m.group(1): m.group(2) for m in FENCE.finditer(DOC.read_text())}
    assert DOC.read_text().count("```python") == len(found), "a python block without a '# file:' line"
    return found


def module(name: str) -> types.ModuleType:
    mod = types.ModuleType(name.removesuffix(".py"))
    exec(compile(blocks()[name], f"docs/value-templates.md:{name}", "exec"), mod.__dict__)  # noqa: S102
    return mod


@pytest.mark.parametrize("name", ["paths.py", "namespace.py"])
def test_scripts_run(name: str) -> None:
    module(name)


async def test_stamp_plugin(upstream, gateway_factory) -> None:
    from triogate import Plugin, Principal, hookimpl

    stamp = module("stamp.py")

    class Auth(Plugin):
        priority = 1000

        @hookimpl
        async def auth(self, ctx):
            sub = ctx.request.headers.get("x-test-sub")
            if sub is not None:
                ctx.principal = Principal(consumer="c", claims={"sub": sub})

    gw = await gateway_factory({
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {"r": {"paths": ["/r/{id}"], "upstream": "u",
                         "plugins": {"stamp": {"value": "{principal.sub}@{id}"}, "auth": {}}}},
    }, plugins={"stamp": stamp.Stamp, "auth": Auth})
    r = await gw.client.get("/r/7", headers={"x-test-sub": "u1", "x-user": "forged"})
    assert r.status == 200, r.content
    assert r.json()["headers"]["x-user"] == ["u1@7"]
    r = await gw.client.get("/r/7", headers={"x-user": "forged"})
    assert r.status == 400
    assert r.json()["detail"] == "{principal.sub}: no authenticated principal"
