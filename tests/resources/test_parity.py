"""Every resource exists on both clients with the same public methods and signatures."""

from __future__ import annotations

import inspect

import pytest

from contentstack_personalize import AsyncPersonalizeClient, PersonalizeClient
from contentstack_personalize.resources import RESOURCES

from .conftest import make_client


def public_methods(cls: type) -> dict[str, object]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


@pytest.mark.parametrize("name", sorted(RESOURCES))
def test_sync_and_async_resources_have_identical_signatures(name: str) -> None:
    sync_cls, async_cls = RESOURCES[name]
    sync_methods = public_methods(sync_cls)
    async_methods = public_methods(async_cls)
    assert sync_methods.keys() == async_methods.keys()
    assert sync_methods, f"{name} has no methods"
    for method, sync_fn in sync_methods.items():
        async_fn = async_methods[method]
        assert inspect.signature(sync_fn) == inspect.signature(async_fn), method  # type: ignore[arg-type]
        assert not inspect.iscoroutinefunction(sync_fn), method
        assert inspect.iscoroutinefunction(async_fn), method
        assert sync_fn.__doc__, f"{name}.{method} has no docstring"


async def test_both_clients_carry_every_resource() -> None:
    sync = make_client("sync")
    async_ = make_client("async")
    assert isinstance(sync, PersonalizeClient)
    assert isinstance(async_, AsyncPersonalizeClient)
    for name, (sync_cls, async_cls) in RESOURCES.items():
        assert isinstance(getattr(sync, name), sync_cls)
        assert isinstance(getattr(async_, name), async_cls)
    assert set(RESOURCES) == {
        "users",
        "attributes",
        "audiences",
        "events",
        "projects",
        "experiences",
    }
    sync.close()
    await async_.aclose()
