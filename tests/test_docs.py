"""The docs follow the code: every hookspec is in docs/hooks.md with its exact signature, and
the generated key tables of docs/configuration.md match the config classes."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from triogate import hookspecs
from triogate.docgen import update_doc

ROOT = Path(__file__).resolve().parents[1]
HOOKS_MD = ROOT / "docs" / "hooks.md"


def _specs() -> dict[str, object]:
    return {name: fn for name, fn in vars(hookspecs).items() if hasattr(fn, "triogate_spec")}


def signature_line(fn: object) -> str:
    """``async def name(arg: Type, ...) -> Return`` as written in hookspecs.py."""
    sig = inspect.signature(fn)  # annotations are strings (from __future__ import annotations)
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    prefix = "async def" if inspect.iscoroutinefunction(fn) else "def"
    return f"{prefix} {fn.__name__}({params}) -> {sig.return_annotation}"


def documented() -> dict[str, str]:
    """``{hook name: the signature line under its ### heading}`` from docs/hooks.md."""
    text = HOOKS_MD.read_text()
    out = {}
    for m in re.finditer(r"^### `(\w+)`\n+```python\n(.+?)\n```", text, re.MULTILINE | re.DOTALL):
        out[m.group(1)] = m.group(2).strip()
    return out


def test_hookspecs_exist() -> None:
    assert set(_specs()) == {"startup", "shutdown", "pre_route", "auth", "transform", "post_response", "log",
                             "admin_routes"}


@pytest.mark.parametrize("name", sorted(_specs()))
def test_every_hook_is_documented_with_its_exact_signature(name: str) -> None:
    docs = documented()
    assert name in docs, f"docs/hooks.md has no '### `{name}`' section"
    assert docs[name] == signature_line(_specs()[name])


def test_docs_do_not_describe_hooks_that_do_not_exist() -> None:
    assert set(documented()) == set(_specs())


def test_signature_line_reads_the_spec() -> None:
    assert signature_line(hookspecs.post_response) == (
        "async def post_response(ctx: Context, response: Response) -> Response | None")
    assert signature_line(hookspecs.admin_routes) == "def admin_routes(gateway: GatewayServices) -> list[Any] | None"


def test_configuration_tables_are_current() -> None:
    assert update_doc(ROOT / "docs" / "configuration.md", check=True), (
        "docs/configuration.md is out of date: run .venv/bin/python -m triogate.docgen --doc docs/configuration.md")


def test_configuration_documents_every_section() -> None:
    import attrs
    from triogate.config import Config

    text = (ROOT / "docs" / "configuration.md").read_text()
    for field in attrs.fields(Config):
        if field.metadata.get("internal"):
            continue
        assert re.search(rf"^## `\[{field.name}[.\]]", text, re.MULTILINE), f"no section for [{field.name}]"
