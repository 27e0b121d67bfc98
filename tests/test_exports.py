"""The public facade: a sorted, complete ``__all__`` with nothing private or missing."""

from __future__ import annotations

import importlib
import inspect

import contentstack_personalize as pkg

PUBLIC_MODULES = [
    "contentstack_personalize.auth",
    "contentstack_personalize.client",
    "contentstack_personalize.errors",
    "contentstack_personalize.regions",
    "contentstack_personalize.models",
    "contentstack_personalize.membership",
    "contentstack_personalize.debugger",
]


def test_all_is_sorted_and_unique() -> None:
    assert pkg.__all__ == sorted(pkg.__all__)
    assert len(set(pkg.__all__)) == len(pkg.__all__)


def test_every_name_in_all_exists() -> None:
    missing = [name for name in pkg.__all__ if not hasattr(pkg, name)]
    assert missing == []


def test_all_is_complete() -> None:
    """Every public class or function defined in a public module is exported at the top."""
    exported = set(pkg.__all__)
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                assert name in exported, f"{module_name}.{name} is public but not exported"


def test_no_private_names_exported() -> None:
    assert [n for n in pkg.__all__ if n.startswith("_") and n != "__version__"] == []


def _stray(module: object) -> list[str]:
    # Only identifiers: under pytest the package is assertion-rewritten (it ships a pytest
    # plugin), which adds "@py_builtins" and "@pytest_ar"; no user session has those.
    public = [n for n in dir(module) if n.isidentifier() and not n.startswith("_")]
    # A public submodule (``alerts``, ``sync``...) is bound on the package once imported.
    name = getattr(module, "__name__", "")
    submodules = {n for n in public if getattr(getattr(module, n), "__name__", "") == f"{name}.{n}"}
    return sorted(set(public) - set(getattr(module, "__all__", ())) - submodules)


def test_dir_of_the_package_shows_only_the_api() -> None:
    """Tab completion in a notebook lists what is exported and the public submodules: no
    ``annotations`` (from ``from __future__ import annotations``) nor other leftovers."""
    importlib.import_module("contentstack_personalize.alerts")
    importlib.import_module("contentstack_personalize.testing")
    assert "annotations" not in dir(pkg)
    assert _stray(pkg) == []


def test_dir_of_alerts_shows_only_the_api() -> None:
    alerts = importlib.import_module("contentstack_personalize.alerts")
    assert _stray(alerts) == []
