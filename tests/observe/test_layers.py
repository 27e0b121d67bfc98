"""Imports of the observability modules point down only.

The debugger sits below the engine (the engine hands it exchanges), so it may use the core and
the state stores, never ``sync``; alerts sit above the engine and use its public names only;
results and their views do not know about alerts. No library import hides inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import contentstack_personalize

PACKAGE = Path(contentstack_personalize.__file__).parent
ROOT = "contentstack_personalize"
CORE = {
    f"{ROOT}.{name}"
    for name in ("_types", "errors", "regions", "_values", "_http", "_config", "_html", "_optional")
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str | None = None) -> list[tuple[str, bool]]:
    """Library modules ``path`` imports, each with whether the import is inside a function."""
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nested: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            nested.update(id(n) for n in ast.walk(node) if n is not node)
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            # ``from . import _html`` imports a module; ``from .sync import X`` a name in one.
            names = [f"{base}.{a.name}" if base == ROOT else base for a in node.names]
        else:
            continue
        found.extend((n, id(node) in nested) for n in names if n.split(".")[0] == ROOT)
    return found


def _files(*relative: str) -> list[Path]:
    out: list[Path] = []
    for rel in relative:
        path = PACKAGE / rel
        out.extend(sorted(path.glob("*.py")) if path.is_dir() else [path])
    return out


@pytest.mark.parametrize(
    "path", _files("debugger.py", "_html.py", "_optional.py"), ids=lambda p: p.name
)
def test_the_debugger_and_view_helpers_use_only_the_core_and_state(path: Path) -> None:
    bad = [
        name
        for name, _ in _imports(path)
        if name not in CORE and not name.startswith(f"{ROOT}.state")
    ]
    assert bad == []


@pytest.mark.parametrize("path", _files("alerts"), ids=lambda p: p.name)
def test_alerts_use_only_public_names_of_the_engine(path: Path) -> None:
    allowed = {f"{ROOT}.sync"}
    bad = [
        name
        for name, _ in _imports(path)
        if name not in CORE
        and name not in allowed
        and not name.startswith((f"{ROOT}.state", f"{ROOT}.alerts"))
    ]
    assert bad == []


def test_results_do_not_know_about_alerts() -> None:
    names = [name for name, _ in _imports(PACKAGE / "sync" / "_result.py")]
    assert f"{ROOT}.sync._typecheck" in names  # the parser sees relative imports
    assert [n for n in names if n.startswith((f"{ROOT}.alerts", f"{ROOT}.sync._views"))] == []


@pytest.mark.parametrize(
    "path",
    _files("debugger.py", "_html.py", "_optional.py", "alerts", "sync/_result.py"),
    ids=lambda p: p.name,
)
def test_no_library_import_inside_a_function(path: Path) -> None:
    assert [name for name, inside in _imports(path) if inside] == []


def test_the_parser_resolves_relative_and_nested_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from .. import _html\nfrom ..sync import Sync\nimport httpx\n"
        "def f():\n    from ..sync._engine import Sync\n",
        encoding="utf-8",
    )
    assert _imports(probe, f"{ROOT}.alerts.probe") == [
        (f"{ROOT}._html", False),
        (f"{ROOT}.sync", False),
        (f"{ROOT}.sync._engine", True),
    ]
