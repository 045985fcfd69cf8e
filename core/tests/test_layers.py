"""The core's import layering (docs/architecture.md) holds, and cannot erode quietly.

- ``lint-imports`` checks the contracts in the workspace pyproject.toml: modules import
  downward only, the front ends never import the gateway, the core never imports a plugin.
- Every core module is placed in a layer, so a new module cannot sit outside the contract.
- No import of a triogate module is deferred into a function (the old way of dodging a cycle),
  except the few below, each for a reason that is not a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "core" / "src" / "triogate"

#: (importing module, imported module) -> why the import is inside a function
DEFERRED_ALLOWED: dict[tuple[str, str], str] = {
    ("triogate.serving", "triogate.h2listener"):
        "hypercorn and h2 cost ~40 ms at import (a fifth of `import triogate`); only h2 listeners need them",
    ("triogate.testing", "triogate.testing.idp"):
        "the identity provider needs the testing-idp extra (PyJWT, cryptography); imported on first use",
    ("triogate.testing.fixtures", "triogate.testing.idp"):
        "the identity_provider fixture needs the testing-idp extra; other fixtures must not",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(CORE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """The absolute module names a ``from ... import ...`` inside ``module`` names."""
    if node.level == 0:
        return [node.module] if node.module else []
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    if node.module:
        return [".".join([*base, node.module])]
    return [".".join([*base, alias.name]) for alias in node.names]  # from . import idp


def deferred_imports(module: str, is_package: bool, source: str) -> list[tuple[str, str, int]]:
    """``(module, imported triogate module, line)`` for every triogate import inside a function."""
    tree = ast.parse(source, filename=module)
    found: list[tuple[str, str, int]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if in_function and isinstance(child, ast.ImportFrom):
                names = _resolve(module, is_package, child)
            elif in_function and isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            else:
                names = []
            for name in names:
                if name == "triogate" or name.startswith("triogate."):
                    found.append((module, name, child.lineno))
            visit(child, inside)

    visit(tree, False)
    return found


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_every_core_module_is_in_a_layer() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (layers,) = [c for c in contracts if c["type"] == "layers"]
    placed = {name.strip() for layer in layers["layers"] for name in layer.replace(":", "|").split("|")}
    modules = {p.stem for p in CORE.glob("*.py") if p.name != "__init__.py"}
    modules |= {p.parent.name for p in CORE.glob("*/__init__.py")}
    assert modules - placed == set(), "place each new core module in a layer of [tool.importlinter]"
    assert placed - modules == set(), "the layers name modules that do not exist"


def test_no_import_is_deferred_into_a_function() -> None:
    found = [f for path in sorted(CORE.rglob("*.py"))
             for f in deferred_imports(_module_name(path), path.name == "__init__.py", path.read_text("utf-8"))]
    unexpected = [f"{mod} line {line}: imports {name}" for mod, name, line in found
                  if (mod, name) not in DEFERRED_ALLOWED]
    assert unexpected == [], (
        "import these at the top of the module; if that makes a cycle, move the code to the layer"
        " that owns it (docs/architecture.md). An import deferred for another reason (an optional"
        " dependency, a measured start-up cost) goes into DEFERRED_ALLOWED with the reason.")
    assert {(mod, name) for mod, name, _ in found} == set(DEFERRED_ALLOWED), "an allowed exception is gone: drop it"


def test_the_deferred_import_check_finds_one() -> None:
    """The AST walk sees relative, package-relative and absolute imports in nested functions,
    and leaves module-level ones alone."""
    source = ("from .headers import Headers\n"
              "def f():\n    from .config import Config\n"
              "class C:\n    async def g(self):\n        def h():\n            from . import app\n"
              "        import triogate.cli\n")
    found = deferred_imports("triogate.probe", False, source)
    assert found == [("triogate.probe", "triogate.config", 3), ("triogate.probe", "triogate.app", 7),
                     ("triogate.probe", "triogate.cli", 8)]
    assert deferred_imports("triogate.testing", True, "def f():\n    from . import idp\n") == [
        ("triogate.testing", "triogate.testing.idp", 2)]
