"""client.attributes: list/get/create/update/delete/ensure, exact requests and parsing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from contentstack_personalize import (
    ConfigurationError,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from contentstack_personalize.models import Attribute

from .conftest import MGMT, PROJECT, Api, assert_management_headers, body_of

PLAN_UID = "6601a1b2c3d4e5f6a7b8c9d1"


def attr(
    uid: str, key: str, name: str | None = None, kind: str = "CUSTOM", **extra: Any
) -> dict[str, Any]:
    return {
        "uid": uid,
        "name": name or key,
        "key": key,
        "description": "",
        "project": PROJECT,
        "createdAt": "2024-05-01T10:00:00.000Z",
        "createdBy": "blt1",
        "updatedAt": "2024-05-01T10:00:00.000Z",
        "updatedBy": "blt1",
        "__type": kind,
        **extra,
    }


PLAN = attr(PLAN_UID, "plan", "Plan")
COUNTRY = attr("COUNTRY", "COUNTRY", "Country", kind="PRESET")


async def test_list_tells_custom_from_preset(api: Api, router: respx.MockRouter) -> None:
    route = router.get(f"{MGMT}/attributes").respond(200, json=[PLAN, COUNTRY])
    result = await api.run(lambda c: c.attributes.list())
    assert_management_headers(route.calls.last.request)
    assert [a.key for a in result] == ["plan", "COUNTRY"]
    assert result[0].is_custom and not result[0].is_preset
    assert result[1].is_preset and not result[1].is_custom
    assert result[0] == Attribute(
        uid=PLAN_UID,
        key="plan",
        name="Plan",
        description="",
        type="CUSTOM",
        project=PROJECT,
        created_at="2024-05-01T10:00:00.000Z",
        created_by="blt1",
        updated_at="2024-05-01T10:00:00.000Z",
        updated_by="blt1",
    )
    assert result[0].to_api() == PLAN


async def test_get_lists_and_picks(api: Api, router: respx.MockRouter) -> None:
    router.get(f"{MGMT}/attributes").respond(200, json=[PLAN, COUNTRY])
    found = await api.run(lambda c: c.attributes.get(PLAN_UID))
    assert found.key == "plan"
    with pytest.raises(NotFoundError, match="no attribute with uid 'nope'") as info:
        await api.run(lambda c: c.attributes.get("nope"))
    assert info.value.status_code == 404


async def test_create_defaults_name_to_key(api: Api, router: respx.MockRouter) -> None:
    route = router.post(f"{MGMT}/attributes").respond(201, json=attr(PLAN_UID, "plan"))
    created = await api.run(lambda c: c.attributes.create(key="plan"))
    request = route.calls.last.request
    assert_management_headers(request)
    assert request.headers["content-type"] == "application/json"
    assert body_of(request) == {"name": "plan", "key": "plan"}
    assert created.uid == PLAN_UID


async def test_create_with_name_and_description(api: Api, router: respx.MockRouter) -> None:
    route = router.post(f"{MGMT}/attributes").respond(201, json=PLAN)
    await api.run(lambda c: c.attributes.create(key="plan", name="Plan", description="Tier"))
    assert body_of(route.calls.last.request) == {
        "name": "Plan",
        "key": "plan",
        "description": "Tier",
    }


@pytest.mark.parametrize(
    ("key", "message"),
    [("", "empty"), ("my plan", "no spaces"), ("plan!", "letters, digits and _"), (3, "string")],
)
async def test_create_validates_key(
    api: Api, router: respx.MockRouter, key: object, message: str
) -> None:
    route = router.post(f"{MGMT}/attributes")
    with pytest.raises(ValidationError, match=message):
        await api.run(lambda c: c.attributes.create(key=key))
    assert not route.called


async def test_update_reads_then_puts_the_full_object(api: Api, router: respx.MockRouter) -> None:
    router.get(f"{MGMT}/attributes").respond(200, json=[PLAN])
    updated = {**PLAN, "name": "Plan tier", "updatedAt": "2024-06-01T00:00:00.000Z"}
    route = router.put(f"{MGMT}/attributes/{PLAN_UID}").respond(200, json=updated)
    result = await api.run(lambda c: c.attributes.update(PLAN_UID, name="Plan tier"))
    request = route.calls.last.request
    assert_management_headers(request)
    assert body_of(request) == {"name": "Plan tier", "key": "plan", "description": ""}
    assert result.name == "Plan tier"
    assert result.updated_at == "2024-06-01T00:00:00.000Z"


async def test_update_with_every_field_skips_the_read(api: Api, router: respx.MockRouter) -> None:
    listing = router.get(f"{MGMT}/attributes")
    route = router.put(f"{MGMT}/attributes/{PLAN_UID}").respond(200, json=PLAN)
    await api.run(
        lambda c: c.attributes.update(PLAN_UID, key="plan", name="Plan", description=None)
    )
    assert not listing.called
    assert body_of(route.calls.last.request) == {"name": "Plan", "key": "plan", "description": ""}


async def test_update_from_the_model_skips_the_read(api: Api, router: respx.MockRouter) -> None:
    listing = router.get(f"{MGMT}/attributes")
    route = router.put(f"{MGMT}/attributes/{PLAN_UID}").respond(204)
    current = Attribute.from_api({**PLAN, "description": "Tier"})
    result = await api.run(lambda c: c.attributes.update(current, key="plan_tier"))
    assert not listing.called
    assert body_of(route.calls.last.request) == {
        "name": "Plan",
        "key": "plan_tier",
        "description": "Tier",
    }
    assert result.key == "plan_tier"  # a bodiless answer: the object is what was sent


async def test_update_refuses_presets(api: Api, router: respx.MockRouter) -> None:
    router.get(f"{MGMT}/attributes").respond(200, json=[COUNTRY])
    put = router.put(f"{MGMT}/attributes/COUNTRY")
    with pytest.raises(ConfigurationError, match="preset"):
        await api.run(lambda c: c.attributes.update("COUNTRY", name="Land"))
    assert not put.called


async def test_delete(api: Api, router: respx.MockRouter) -> None:
    route = router.delete(f"{MGMT}/attributes/{PLAN_UID}").respond(204)
    assert await api.run(lambda c: c.attributes.delete(PLAN_UID)) is None
    assert_management_headers(route.calls.last.request)
    assert route.calls.last.request.content == b""


async def test_delete_escapes_and_checks_uid(api: Api, router: respx.MockRouter) -> None:
    with pytest.raises(ValidationError, match="uid"):
        await api.run(lambda c: c.attributes.delete("a b"))
    route = router.delete(f"{MGMT}/attributes/a%2Fb").respond(204)
    await api.run(lambda c: c.attributes.delete("a/b"))
    assert route.called


async def test_ensure_creates_only_missing_in_order(api: Api, router: respx.MockRouter) -> None:
    listing = router.get(f"{MGMT}/attributes").respond(200, json=[PLAN, COUNTRY])
    created = attr("6601a1b2c3d4e5f6a7b8c9d2", "ltv", "Lifetime value")
    create = router.post(f"{MGMT}/attributes").respond(201, json=created)
    result = await api.run(lambda c: c.attributes.ensure({"ltv": "Lifetime value", "plan": "X"}))
    assert listing.call_count == 1
    assert create.call_count == 1
    assert body_of(create.calls.last.request) == {"name": "Lifetime value", "key": "ltv"}
    assert [a.key for a in result] == ["ltv", "plan"]
    assert result[1].name == "Plan"  # existing attributes are not renamed


async def test_ensure_is_idempotent(api: Api, router: respx.MockRouter) -> None:
    router.get(f"{MGMT}/attributes").respond(200, json=[PLAN])
    create = router.post(f"{MGMT}/attributes")
    result = await api.run(lambda c: c.attributes.ensure(["plan"]))
    assert [a.uid for a in result] == [PLAN_UID]
    assert not create.called


async def test_ensure_tolerates_a_409_race(api: Api, router: respx.MockRouter) -> None:
    raced = attr("6601a1b2c3d4e5f6a7b8c9d3", "ltv")
    listing = router.get(f"{MGMT}/attributes")
    listing.side_effect = [
        httpx.Response(200, json=[PLAN]),
        httpx.Response(200, json=[PLAN, raced]),
    ]
    create = router.post(f"{MGMT}/attributes").respond(
        409,
        json={"error": "personalize.ATTRIBUTES.DUPLICATE_KEY", "message": "exists"},
    )
    result = await api.run(lambda c: c.attributes.ensure(["plan", "ltv"]))
    assert create.call_count == 1
    assert listing.call_count == 2
    assert [a.uid for a in result] == [PLAN_UID, raced["uid"]]


async def test_ensure_reraises_an_unexplained_409(api: Api, router: respx.MockRouter) -> None:
    router.get(f"{MGMT}/attributes").respond(200, json=[PLAN])
    router.post(f"{MGMT}/attributes").respond(
        409, json={"error": "personalize.ATTRIBUTES.DUPLICATE_KEY", "message": "exists"}
    )
    with pytest.raises(ConflictError) as info:
        await api.run(lambda c: c.attributes.ensure(["ltv"]))
    assert info.value.code == "personalize.ATTRIBUTES.DUPLICATE_KEY"


@pytest.mark.parametrize("key", ["COUNTRY", "country"])
async def test_ensure_refuses_preset_keys(api: Api, router: respx.MockRouter, key: str) -> None:
    router.get(f"{MGMT}/attributes").respond(200, json=[PLAN, COUNTRY])
    create = router.post(f"{MGMT}/attributes")
    with pytest.raises(ConfigurationError, match="preset"):
        await api.run(lambda c: c.attributes.ensure(["ltv", key]))
    assert not create.called


async def test_ensure_validates_before_listing(api: Api, router: respx.MockRouter) -> None:
    listing = router.get(f"{MGMT}/attributes")
    with pytest.raises(ValidationError, match="no spaces"):
        await api.run(lambda c: c.attributes.ensure(["ok", "not ok"]))
    with pytest.raises(ValidationError, match="list of keys"):
        await api.run(lambda c: c.attributes.ensure("plan"))
    assert not listing.called
