"""The client's internal interface: what other modules of the package may use of a client, the
async twin built from a client's settings, and the import directions around the client."""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

import contentstack_personalize
from contentstack_personalize import (
    AsyncPersonalizeClient,
    AuthToken,
    ConfigurationError,
    Exchange,
    PersonalizeClient,
    RetryPolicy,
)
from contentstack_personalize.client import SenderSettings

PACKAGE = Path(contentstack_personalize.__file__).parent
PROJECT = "65f0a1b2c3d4e5f6a7b8c9d0"

#: The members made for the rest of the package (documented in client.py's module docs).
INTERFACE = {"_execute", "_sender_settings", "_async_twin", "_send_user_attributes"}

#: Modules allowed to read more of a client than its interface (none: keep it that way).
KNOWN_EXCEPTIONS: dict[str, set[str]] = {}


# ----------------------------------------------------------------------------- private reads


def _names_a_client(node: ast.expr) -> bool:
    """Whether ``node`` is an expression named like a client of ours (``client``,
    ``self._client``, ``twin``, ``AsyncPersonalizeClient``), not an httpx client."""
    if isinstance(node, ast.Name):
        name = node.id
    elif isinstance(node, ast.Attribute):
        name = node.attr
    else:
        return False
    name = name.lstrip("_").lower()
    return (name.endswith("client") or name == "twin") and "http" not in name


def private_client_reads(source: str) -> set[str]:
    """The private attributes read off client-named expressions in ``source``."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and _names_a_client(node.value)
        ):
            found.add(node.attr)
    return found


def test_the_detector_finds_private_reads_and_only_those() -> None:
    source = (
        "client._transport\n"
        "self._client._hook_owner._hooks\n"
        "AsyncPersonalizeClient._twin_of(client)\n"
        "twin._http\n"
        "self._http_client._pool\n"  # an httpx client: not ours
        "client.config\n"
        "self._client\n"
        "client.__class__\n"
    )
    assert private_client_reads(source) == {"_transport", "_hook_owner", "_twin_of", "_http"}


def _package_modules() -> Iterator[tuple[str, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), path.read_text(encoding="utf-8")


def test_no_module_but_client_reads_a_private_attribute_of_a_client() -> None:
    unexpected = {}
    seen_exceptions: dict[str, set[str]] = {}
    for relative, source in _package_modules():
        if relative == "client.py":
            continue
        reads = private_client_reads(source) - INTERFACE
        known = KNOWN_EXCEPTIONS.get(relative, set())
        seen_exceptions[relative] = reads & known
        if reads - known:
            unexpected[relative] = sorted(reads - known)
    assert unexpected == {}, (
        "read a client only through its internal interface "
        f"({', '.join(sorted(INTERFACE))}; see client.py): {unexpected}"
    )
    stale = {
        module: sorted(reads - seen_exceptions.get(module, set()))
        for module, reads in KNOWN_EXCEPTIONS.items()
        if reads - seen_exceptions.get(module, set())
    }
    assert stale == {}, f"these reads are gone: remove them from KNOWN_EXCEPTIONS: {stale}"


# ----------------------------------------------------------------------------- import directions


def _imports(relative: str, source: str) -> Iterator[tuple[str, bool]]:
    """``(absolute module imported, at function level)`` for every import in a module."""
    package = ["contentstack_personalize", *relative.removesuffix(".py").split("/")][:-1]
    if relative.endswith("__init__.py"):
        package = ["contentstack_personalize", *relative.split("/")[:-1]]
    tree = ast.parse(source)
    nested = {
        id(inner)
        for outer in ast.walk(tree)
        if isinstance(outer, (ast.FunctionDef, ast.AsyncFunctionDef))
        for inner in ast.walk(outer)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, id(node) in nested
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            targets = [module] if node.module else [f"{module}.{a.name}" for a in node.names]
            for target in targets:
                yield target, id(node) in nested


def _imported_by(relative: str) -> list[str]:
    source = (PACKAGE / relative).read_text(encoding="utf-8")
    return [module for module, _ in _imports(relative, source)]


def test_import_resolution_of_the_checker() -> None:
    source = "from ..client import X\nfrom . import _ops\ndef f():\n    import json\n"
    assert list(_imports("resources/users.py", source)) == [
        ("contentstack_personalize.client", False),
        ("contentstack_personalize.resources._ops", False),
        ("json", True),
    ]


RESOURCE_MODULES = sorted(
    p.relative_to(PACKAGE).as_posix() for p in (PACKAGE / "resources").glob("*.py")
)


@pytest.mark.parametrize("relative", RESOURCE_MODULES)
def test_resources_import_neither_the_client_nor_what_builds_on_it(relative: str) -> None:
    above = re.compile(
        r"contentstack_personalize\.(client|membership|sync|debugger|alerts|cli|integrations)\b"
    )
    assert [m for m in _imported_by(relative) if above.match(m)] == []


@pytest.mark.parametrize(
    ("relative", "forbidden"),
    [
        ("rules.py", "contentstack_personalize.models"),
        ("models.py", "contentstack_personalize.membership"),
        ("rules.py", "contentstack_personalize.membership"),
        ("sync/_fast.py", "contentstack_personalize.sync._sender"),
        ("sync/_sending.py", "contentstack_personalize.sync._sender"),
        ("sync/_sending.py", "contentstack_personalize.sync._fast"),
    ],
)
def test_lower_modules_do_not_import_higher_ones(relative: str, forbidden: str) -> None:
    assert forbidden not in _imported_by(relative)


def test_client_imports_at_module_level_only() -> None:
    source = (PACKAGE / "client.py").read_text(encoding="utf-8")
    assert [m for m, nested in _imports("client.py", source) if nested] == []


# ----------------------------------------------------------------------------- the async twin


def _hook(exchange: Exchange) -> None:
    pass


def _every_option() -> dict[str, Any]:
    """A value other than the default for every argument of the clients (but ``http_client``,
    which a twin cannot share and ``transport`` excludes)."""
    return {
        "project_uid": PROJECT,
        "region": "eu",
        "auth": AuthToken("blt-test-secret"),
        "organization_uid": "org-1",
        "edge_url": "https://edge.example.test/",
        "management_url": "https://management.example.test",
        "cma_url": "https://cma.example.test",
        "timeout": 7.5,
        "retry": RetryPolicy(max_attempts=2, sleep=False),
        "management_rate_limit": 3.0,
        "transport": httpx.MockTransport(lambda request: httpx.Response(200)),
        "verify": False,
        "max_connections": 3,
        "max_body_bytes": 10,
        "headers": {"X-Team": "data"},
        "on_exchange": _hook,
        "read_env": False,
    }


@pytest.mark.parametrize("cls", [PersonalizeClient, AsyncPersonalizeClient])
def test_the_option_table_covers_every_argument(
    cls: type[PersonalizeClient] | type[AsyncPersonalizeClient],
) -> None:
    """A new client argument must be added to ``_every_option`` (and so be checked below)."""
    parameters = set(inspect.signature(cls).parameters)
    assert parameters == set(_every_option()) | {"http_client"}


#: Attributes a twin has of its own: its connections (``max_connections`` is the twin's own).
OWN_STATE = {"_http"}
RESOURCES = ("users", "attributes", "audiences", "events", "projects", "experiences")


@pytest.mark.parametrize("cls", [PersonalizeClient, AsyncPersonalizeClient])
async def test_a_twin_carries_every_setting_of_its_client(
    cls: type[PersonalizeClient] | type[AsyncPersonalizeClient],
) -> None:
    """Compare the whole state: an attribute added to the client's setup and not carried by
    ``SenderSettings`` / ``from_settings`` makes this fail."""
    client = cls(**_every_option())
    twin = client._async_twin(max_connections=5)
    try:
        assert isinstance(twin, AsyncPersonalizeClient)
        assert twin._sender_settings() == client._sender_settings()
        mine, its = vars(client), vars(twin)
        assert mine.keys() == its.keys()
        differing = {
            name
            for name in mine
            if name not in OWN_STATE and name not in RESOURCES and mine[name] != its[name]
        }
        assert differing == set()
        assert isinstance(twin._http, httpx.AsyncClient)
        assert twin._http is not client._http
        for name in RESOURCES:
            assert type(getattr(twin, name)).__name__.removeprefix("Async") == (
                type(getattr(client, name)).__name__.removeprefix("Async")
            )
    finally:
        await twin.aclose()
        if isinstance(client, AsyncPersonalizeClient):
            await client.aclose()
        else:
            client.close()


async def test_a_twin_keeps_the_environment_its_client_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONTENTSTACK_PERSONALIZE_EDGE_URL", "https://first.example.test")
    client = PersonalizeClient(PROJECT, management_rate_limit=None)
    monkeypatch.setenv("CONTENTSTACK_PERSONALIZE_EDGE_URL", "https://second.example.test")
    twin = client._async_twin(max_connections=2)
    try:
        assert twin.config.edge_url == "https://first.example.test"
        assert twin.config == client.config
    finally:
        await twin.aclose()
        client.close()


@respx.mock(assert_all_called=False)
async def test_a_twin_reports_to_its_clients_hooks_including_later_ones(
    respx_mock: respx.MockRouter,
) -> None:
    respx_mock.patch("https://edge.example.test/user-attributes").respond(200, text="ok")
    early: list[Exchange] = []
    late: list[Exchange] = []
    client = PersonalizeClient(
        PROJECT,
        edge_url="https://edge.example.test",
        on_exchange=early.append,
        read_env=False,
        management_rate_limit=None,
    )
    twin = client._async_twin(max_connections=2)
    try:
        late_hook = late.append  # one bound method: hooks are removed by identity
        client.add_exchange_hook(late_hook)
        await twin._send_user_attributes("user-1", b'{"plan":"gold"}')
        assert [e.user_uid for e in early] == ["user-1"]
        assert [e.user_uid for e in late] == ["user-1"]
        client.remove_exchange_hook(late_hook)
        await twin.users.set_attributes("user-2", {"plan": "silver"})
        assert [e.user_uid for e in early] == ["user-1", "user-2"]
        assert [e.user_uid for e in late] == ["user-1"]
    finally:
        await twin.aclose()
        client.close()


def test_a_twin_is_refused_for_what_it_cannot_share() -> None:
    with httpx.Client() as http:
        client = PersonalizeClient(PROJECT, http_client=http, read_env=False)
        with pytest.raises(ConfigurationError, match="own httpx client"):
            client._async_twin(max_connections=2)

    class BlockingOnly(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200)

    client = PersonalizeClient(PROJECT, transport=BlockingOnly(), read_env=False)
    with pytest.raises(ConfigurationError, match="cannot serve async"):
        client._async_twin(max_connections=2)


def test_sender_settings_describe_the_clients_connections() -> None:
    plain = PersonalizeClient(PROJECT, read_env=False)
    assert isinstance(plain._sender_settings(), SenderSettings)
    assert plain._sender_settings().own_connections
    assert plain._sender_settings().base_headers == plain.config.base_headers()
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    routed = PersonalizeClient(PROJECT, transport=transport, read_env=False)
    assert routed._sender_settings().transport is transport
    assert not routed._sender_settings().own_connections
    assert "blt-test-secret" not in repr(
        PersonalizeClient(
            PROJECT, auth=AuthToken("blt-test-secret"), read_env=False
        )._sender_settings()
    )
