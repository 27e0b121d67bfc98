"""Imports only point down (docs/concepts.md, "The layers").

Every import of the library's own modules is read from the source (module level, inside
functions and under ``TYPE_CHECKING`` alike: a function-level import that dodges a cycle is
still a cycle) and checked against the layer map below: a module may import its own layer or a
lower one, never a higher one, and the graph of modules has no cycle. ``testing/`` (the
emulator) imports nothing of the library.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "contentstack_personalize"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

#: Lowest first. A module belongs to the first entry that is its name or a package above it.
LAYERS: list[tuple[str, list[str]]] = [
    (
        "core",
        [
            "_types",
            "_version",
            "errors",
            "_values",
            "regions",
            "_optional",
            "_html",
            "_http",
            "_config",
        ],
    ),
    ("auth", ["auth"]),
    ("state", ["state"]),
    ("debugger", ["debugger"]),
    ("models", ["models", "rules"]),
    ("resources", ["resources"]),
    ("client", ["client"]),
    ("engine", ["sync", "membership"]),
    ("alerts", ["alerts"]),
    ("facade", ["__init__", "__main__", "cli", "integrations"]),
]
APART = "testing"


def module_files() -> Iterator[tuple[str, Path]]:
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        yield ".".join(parts), path


MODULES = dict(module_files())


def layer_of(module: str) -> int | None:
    """The layer index of a module (``"sync._engine"``), ``None`` for ``testing``."""
    if module == APART or module.startswith(APART + "."):
        return None
    for index, (_, names) in enumerate(LAYERS):
        for name in names:
            if module == name or module.startswith(name + "."):
                return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")


def imports_of(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """``(imported library module, line)`` for every import of the library in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    here = module.split(".") if module != "__init__" else []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    yield from resolve(alias.name[len(PACKAGE) + 1 :], [], node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_package else here[:-1]
                if node.level > 1:
                    base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and (node.module == PACKAGE or node.module.startswith(PACKAGE + ".")):
                target = node.module[len(PACKAGE) + 1 :]
            else:
                continue
            yield from resolve(target, [a.name for a in node.names], node.lineno)


def resolve(target: str, names: list[str], line: int) -> Iterator[tuple[str, int]]:
    """``from target import names``: a name that is a submodule is that submodule."""
    found = False
    for name in names:
        sub = f"{target}.{name}" if target else name
        if sub in MODULES:
            found = True
            yield sub, line
    if not found or any((f"{target}.{n}" if target else n) not in MODULES for n in names):
        yield (target or "__init__"), line


def edges() -> list[tuple[str, str, int]]:
    found = []
    for module, path in MODULES.items():
        for target, line in imports_of(module, path):
            if target != module:
                found.append((module, target, line))
    return found


def describe(module: str) -> str:
    return str(MODULES[module].relative_to(ROOT.parent))


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


def test_imports_only_point_down() -> None:
    upward = []
    for source, target, line in edges():
        low, high = layer_of(source), layer_of(target)
        if low is None and high is None:
            continue  # the emulator's own modules
        if low is None:
            upward.append(f"{describe(source)}:{line} imports {target}: testing/ imports nothing")
        elif high is None:
            upward.append(f"{describe(source)}:{line} imports the emulator ({target})")
        elif high > low:
            upward.append(
                f"{describe(source)}:{line} ({LAYERS[low][0]}) imports {target} "
                f"({LAYERS[high][0]}), a higher layer"
            )
    assert not upward, "\n".join(upward)


def test_no_module_imports_the_facade() -> None:
    inside = [
        f"{describe(source)}:{line}"
        for source, target, line in edges()
        if target == "__init__" and layer_of(source) != len(LAYERS) - 1
    ]
    assert not inside, "these import contentstack_personalize itself:\n" + "\n".join(inside)


def test_no_import_cycles() -> None:
    # The product's modules; the emulator (testing/) stands apart and is checked only for not
    # importing the library.
    graph: dict[str, set[str]] = {m: set() for m in MODULES if layer_of(m) is not None}
    for source, target, _ in edges():
        if source in graph and target in graph:
            graph[source].add(target)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from ..sync._engine import Sync", ["sync._engine"]),
        ("from .. import errors", ["errors"]),
        ("from ..sync import Sync", ["sync"]),
        ("import contentstack_personalize.client", ["client"]),
        ("from contentstack_personalize import Sync", ["__init__"]),
    ],
)
def test_the_checker_reads_imports(source: str, expected: list[str], tmp_path: Path) -> None:
    """The checker itself: relative and absolute imports resolve to the right modules (from
    ``alerts/_engine.py``'s point of view)."""
    fake = tmp_path / "_engine.py"
    fake.write_text(source + "\n", encoding="utf-8")
    assert [target for target, _ in imports_of("alerts._engine", fake)] == expected


def test_no_function_level_import_of_the_library() -> None:
    """A library import inside a function hides a dependency (and often dodges a cycle)."""
    hidden = []
    for module, path in MODULES.items():
        if layer_of(module) is None:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                relative = isinstance(node, ast.ImportFrom) and node.level > 0
                absolute = any(
                    name == PACKAGE or name.startswith(PACKAGE + ".")
                    for name in (
                        [a.name for a in node.names]
                        if isinstance(node, ast.Import)
                        else [node.module or ""]
                        if isinstance(node, ast.ImportFrom)
                        else []
                    )
                )
                if relative or absolute:
                    hidden.append(f"{describe(module)}:{node.lineno} in {function.name}()")
    assert not hidden, "imports inside functions:\n" + "\n".join(hidden)


def test_packages_keep_their_private_modules() -> None:
    """Outside a subpackage (sync/, state/, resources/, alerts/, auth/, ...) only its public
    face is imported, never one of its ``_private`` modules: the engine's insides stay its own."""
    reaching = []
    for source, target, line in edges():
        parts = target.split(".")
        if len(parts) < 2 or not parts[-1].startswith("_"):
            continue
        package = ".".join(parts[:-1])
        if source == package or source.startswith(package + "."):
            continue
        reaching.append(f"{describe(source)}:{line} imports {target}")
    assert not reaching, "\n".join(reaching)
