"""Config tables for plugin READMEs, generated from each plugin's ``Config``.

A README carries the table between ``<!-- config-table:start -->`` and
``<!-- config-table:end -->``. ``python -m triogate.docgen PLUGIN_DIR...`` rewrites
it; ``--check`` exits 1 when a table is out of date (the test suite runs that).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
import typing
from pathlib import Path
from typing import Any

import attrs

from .typenames import json_default, type_name

__all__ = ["config_table", "main", "update_doc", "update_readme"]

START = "<!-- config-table:start -->"
END = "<!-- config-table:end -->"


def _type_name(tp: Any) -> str:
    return type_name(tp, " \\| ")  # a bar inside a Markdown table cell is escaped


def _default(f: attrs.Attribute) -> str:
    d = f.default
    if d is attrs.NOTHING:
        return "*required*"
    if isinstance(d, attrs.Factory):  # type: ignore[arg-type]
        try:
            d = d.factory()  # type: ignore[call-arg]
        except TypeError:
            return ""
    if attrs.has(type(d)):
        return "`{}`"
    if d is None:
        return "unset"
    if isinstance(d, list) and len(d) > 8 and all(type(x) is int for x in d) and d == list(range(d[0], d[-1] + 1)):
        return f"`{d[0]}`..`{d[-1]}`"
    return "`" + json.dumps(d, default=json_default) + "`"


def config_table(cls: type, prefix: str = "") -> str:
    """A Markdown table of every field (nested attrs classes flattened with dotted names;
    a table of attrs classes keyed by name appears as ``field.<name>.subfield``)."""
    rows: list[str] = []
    hints = typing.get_type_hints(cls)

    def walk(c: type, pre: str) -> None:
        h = typing.get_type_hints(c)
        for f in attrs.fields(c):
            tp = h.get(f.name, f.type)
            desc = f.metadata.get("description", "").replace("|", "\\|")
            if f.metadata.get("secret"):
                desc += " (secret: `triogate diff` shows it masked)"
            rows.append(f"| `{pre}{f.name}` | {_type_name(tp)} | {_default(f)} | {desc} |")
            if attrs.has(tp):
                walk(tp, f"{pre}{f.name}.")
            elif typing.get_origin(tp) is dict and attrs.has(typing.get_args(tp)[1]):
                walk(typing.get_args(tp)[1], f"{pre}{f.name}.<name>.")  # keyed tables of settings

    del hints
    walk(cls, prefix)
    if not rows:
        return "This plugin has no settings."
    return "| key | type | default | description |\n|---|---|---|---|\n" + "\n".join(rows)


def _plugin_class(plugin_dir: Path) -> type:
    meta = tomllib.loads((plugin_dir / "pyproject.toml").read_text())
    eps = meta["project"]["entry-points"]["triogate.plugins"]
    target = next(iter(eps.values()))
    module, _, attr = target.partition(":")
    mod = __import__(module, fromlist=[attr])
    return getattr(mod, attr)


def update_readme(plugin_dir: Path, check: bool = False) -> bool:
    """Rewrite (or, with ``check``, compare) the table; True when it was current."""
    readme = plugin_dir / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme}: missing {START} / {END} markers")
    table = config_table(_plugin_class(plugin_dir).Config)
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{table}\n{END}{tail}"
    if new == text:
        return True
    if not check:
        readme.write_text(new)
    return False


_DOC_TABLE = re.compile(
    r"<!-- config-table:(?P<cls>[\w.]+):start -->\n.*?<!-- config-table:(?P=cls):end -->", re.DOTALL)


def update_doc(path: Path, check: bool = False) -> bool:
    """Regenerate every ``<!-- config-table:module.Class:start/end -->`` table of a Markdown file
    (docs/configuration.md); with ``check``, only compare. True when it was current."""
    import importlib

    text = path.read_text()

    def render(m: re.Match[str]) -> str:
        module, _, name = m.group("cls").rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        return f"<!-- config-table:{m.group('cls')}:start -->\n{config_table(cls)}\n<!-- config-table:{m.group('cls')}:end -->"

    new = _DOC_TABLE.sub(render, text)
    if new == text:
        return True
    if not check:
        path.write_text(new)
    return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m triogate.docgen")
    p.add_argument("dirs", nargs="*", type=Path, help="plugin directories whose README table to update")
    p.add_argument("--doc", action="append", type=Path, default=[],
                   help="a Markdown file with <!-- config-table:module.Class:start/end --> tables (docs/configuration.md)")
    p.add_argument("--check", action="store_true", help="only check; exit 1 when something is out of date")
    args = p.parse_args(argv)
    stale = [d / "README.md" for d in args.dirs if not update_readme(d, args.check)]
    stale += [doc for doc in args.doc if not update_doc(doc, args.check)]
    for f in stale:
        print(f"{f}: config table {'out of date' if args.check else 'updated'}")
    return 1 if (stale and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
