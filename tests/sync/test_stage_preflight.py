"""The pre-flight stage alone, with scripted Management answers: missing and preset keys,
creating attributes in a run (not in a plan), and type expectations from audience rules. The
typed client adapter is checked against both kinds of client (in-process emulator)."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from contentstack_personalize import AsyncPersonalizeClient, AuthToken, PersonalizeClient
from contentstack_personalize.errors import ConfigurationError
from contentstack_personalize.sync._client_access import ClientCalls
from contentstack_personalize.sync._preflight import preflight
from contentstack_personalize.testing import PersonalizeEmulator


def attribute(key: str, custom: bool = True) -> Any:
    return SimpleNamespace(key=key, uid=f"uid-{key}", is_custom=custom)


def audience(name: str, kinds: dict[str, set[str]]) -> Any:
    return SimpleNamespace(
        name=name, definition=SimpleNamespace(expected_value_kinds=lambda: kinds)
    )


class Scripted(ClientCalls):
    def __init__(self, attributes: list[Any], audiences: Sequence[Any] = ()) -> None:
        self.attributes = attributes
        self.audiences = list(audiences)
        self.calls: list[str] = []

    async def list_attributes(self) -> Any:
        self.calls.append("list_attributes")
        return self.attributes

    async def ensure_attributes(self, keys: Sequence[str]) -> Any:
        self.calls.append(f"ensure_attributes {list(keys)}")
        self.attributes += [attribute(k) for k in keys if k not in {a.key for a in self.attributes}]
        return self.attributes

    async def list_audiences(self) -> Any:
        self.calls.append("list_audiences")
        return self.audiences


async def check(calls: Scripted, keys: list[str], **kwargs: Any) -> Any:
    options = {"check": True, "create_missing": False, "types": False, "create": True}
    options.update(kwargs)
    return await preflight(calls, keys, project_uid="p1", **options)


async def test_nothing_to_check_makes_no_call() -> None:
    calls = Scripted([])
    result = await check(calls, ["plan"], check=False)
    assert (result.warnings, result.expectations, calls.calls) == ([], {}, [])


async def test_a_run_refuses_keys_that_are_not_custom_attributes() -> None:
    calls = Scripted([attribute("plan")])
    with pytest.raises(ConfigurationError, match=r"mapped keys \['ltv'\] are not custom"):
        await check(calls, ["plan", "ltv"])


async def test_a_plan_warns_instead() -> None:
    result = await check(Scripted([attribute("plan")]), ["plan", "ltv"], create=False)
    (warning,) = result.warnings
    assert "mapped keys ['ltv'] are not custom attributes of project p1" in warning


async def test_missing_attributes_are_created_by_a_run_only() -> None:
    calls = Scripted([attribute("plan")])
    plan = await check(calls, ["plan", "ltv"], create_missing=True, create=False)
    assert plan.warnings[0].endswith("; the run will create them")
    assert calls.calls == ["list_attributes"]
    run = await check(calls, ["plan", "ltv"], create_missing=True)
    assert run.warnings == []
    assert calls.calls[-1] == "ensure_attributes ['plan', 'ltv']"


async def test_a_preset_key_is_never_created() -> None:
    calls = Scripted([attribute("country", custom=False)])
    with pytest.raises(ConfigurationError, match="country is a preset"):
        await check(calls, ["country"], create_missing=True)


async def test_type_expectations_come_from_audience_rules() -> None:
    calls = Scripted([attribute("ltv")], [audience("Big spenders", {"uid-ltv": {"number"}})])
    result = await check(calls, ["ltv"], types=True)
    assert result.expectations == {
        "ltv": ({"number"}, ["audience 'Big spenders' compares it as number"])
    }


@pytest.mark.parametrize("kind", ["blocking", "async"])
async def test_the_adapter_calls_either_kind_of_client(kind: str) -> None:
    emulator = PersonalizeEmulator(seed=1, management_rate_limit=None)
    options: Any = {"read_env": False, "auth": AuthToken(emulator.authtoken)}
    client: Any
    if kind == "blocking":
        client = PersonalizeClient(emulator.project_uid, transport=emulator.transport(), **options)
    else:
        client = AsyncPersonalizeClient(
            emulator.project_uid, transport=emulator.async_transport(), **options
        )
    calls = ClientCalls(client)
    try:
        created = await calls.ensure_attributes(["plan_tier"])
        assert "plan_tier" in {a.key for a in created}
        assert "plan_tier" in {a.key for a in await calls.list_attributes()}
        assert isinstance(await calls.list_audiences(), list)
    finally:
        if kind == "blocking":
            client.close()
        else:
            await client.aclose()


async def test_the_twin_of_an_async_client_has_its_settings_and_its_own_connections() -> None:
    import httpx

    from contentstack_personalize.sync._client_access import async_twin, has_own_http_client

    emulator = PersonalizeEmulator(seed=1, management_rate_limit=None)
    options: Any = {"read_env": False, "auth": AuthToken(emulator.authtoken)}
    client = AsyncPersonalizeClient(
        emulator.project_uid, transport=emulator.async_transport(), **options
    )
    async with httpx.AsyncClient() as http:
        own = AsyncPersonalizeClient(emulator.project_uid, http_client=http, read_env=False)
        assert has_own_http_client(own) and not has_own_http_client(client)
        await own.aclose()
    twin = async_twin(client, max_connections=4)
    try:
        assert twin is not client
        assert (twin.project_uid, twin.config) == (client.project_uid, client.config)
        assert "plan_tier" in {a.key for a in await twin.attributes.ensure(["plan_tier"])}
    finally:
        await twin.aclose()
    # Closing the twin leaves the client usable.
    assert "plan_tier" in {a.key for a in await client.attributes.list()}
    await client.aclose()
