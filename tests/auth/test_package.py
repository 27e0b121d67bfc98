"""The auth package: the names it has always exported, and imports that only point down."""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import sys
from pathlib import Path

import contentstack_personalize
import contentstack_personalize.auth as auth

PUBLIC = [
    "PKCE",
    "AuthToken",
    "ManagementToken",
    "OAuth",
    "OAuthTokens",
    "aexchange_code",
    "alogin",
    "alogout",
    "auth_from_env",
    "authorization_url",
    "exchange_code",
    "login",
    "logout",
]
# Public names of the former single module that were not in its __all__.
ALSO_KEPT = [
    "DEFAULT_SCOPE",
    "ENV_AUTHTOKEN",
    "ENV_MANAGEMENT_TOKEN",
    "ENV_OAUTH_ACCESS_TOKEN",
    "ENV_OAUTH_APP_ID",
    "ENV_OAUTH_CLIENT_ID",
    "ENV_OAUTH_CLIENT_SECRET",
    "ENV_OAUTH_EXPIRES_AT",
    "ENV_OAUTH_REFRESH_TOKEN",
    "ENV_ORGANIZATION_UID",
    "ENV_REGION",
    "OnRefresh",
]
# What auth may import from the library: the core below it, and itself.
ALLOWED = {
    "contentstack_personalize._config",
    "contentstack_personalize._http",
    "contentstack_personalize._types",
    "contentstack_personalize._version",
    "contentstack_personalize.errors",
    "contentstack_personalize.regions",
}
THIRD_PARTY = {"attrs", "httpx"}
AUTH_DIR = Path(auth.__file__).parent


def test_the_same_public_names() -> None:
    assert auth.__all__ == PUBLIC
    for name in PUBLIC:
        assert getattr(contentstack_personalize, name) is getattr(auth, name)
    for name in ALSO_KEPT:
        assert hasattr(auth, name), name
    assert auth.DEFAULT_SCOPE == ("personalize:manage", "personalize:read")
    assert auth.ENV_AUTHTOKEN == "CONTENTSTACK_AUTHTOKEN"


def _modules() -> list[tuple[str, Path]]:
    found = [("contentstack_personalize.auth", AUTH_DIR / "__init__.py")]
    for info in pkgutil.iter_modules([str(AUTH_DIR)]):
        found.append((f"contentstack_personalize.auth.{info.name}", AUTH_DIR / f"{info.name}.py"))
    return found


def _imports(module: str, path: Path) -> list[tuple[str, bool]]:
    """Every module ``module`` imports, and whether the import sits at module level."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = set(map(id, tree.body))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = importlib.util.resolve_name("." * node.level, package)
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.append((target, id(node) in top))
    return found


def test_every_module_is_seen() -> None:
    names = {name.rsplit(".", 1)[-1] for name, _ in _modules()}
    assert {"auth", "_core", "_env", "_exchange", "_login", "_oauth", "_pkce", "_tokens"} <= names


def test_auth_imports_only_the_core_and_itself_at_module_level() -> None:
    problems = []
    for module, path in _modules():
        for target, at_top in _imports(module, path):
            if not at_top:
                problems.append(f"{module}: import of {target} inside a function or block")
            root = target.split(".")[0]
            if root == "contentstack_personalize":
                if target not in ALLOWED and not target.startswith("contentstack_personalize.auth"):
                    problems.append(f"{module} imports {target}")
            elif root not in THIRD_PARTY and root not in sys.stdlib_module_names:
                problems.append(f"{module} imports {target}")
    assert problems == []


def test_the_import_check_sees_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "_bad.py"
    bad.write_text(
        "from ..client import PersonalizeClient\n\ndef f():\n    import pandas\n",
        encoding="utf-8",
    )
    assert _imports("contentstack_personalize.auth._bad", bad) == [
        ("contentstack_personalize.client", True),
        ("pandas", False),
    ]
