"""client.audiences: CRUD with typed definitions; Lytics audiences are read-only."""

from __future__ import annotations

from typing import Any

import pytest
import respx

from contentstack_personalize import ConfigurationError, ValidationError
from contentstack_personalize.models import Audience
from contentstack_personalize.rules import Condition, Rule, RuleCombination, all_of, any_of

from .conftest import MGMT, PROJECT, Api, assert_management_headers, body_of

AUD_UID = "6602a1b2c3d4e5f6a7b8c9d1"
LYTICS_UID = "6602a1b2c3d4e5f6a7b8c9d2"
ATTR_UID = "6601a1b2c3d4e5f6a7b8c9d1"

DEFINITION: dict[str, Any] = {
    "__type": "RuleCombination",
    "combinationType": "AND",
    "rules": [
        {
            "__type": "Rule",
            "attribute": {"__type": "CustomAttributeReference", "ref": ATTR_UID},
            "attributeMatchCondition": "NUMBER_GREATER_THAN",
            "attributeMatchOptions": {"__type": "NumberMatchOptions", "value": 1000},
            "invertCondition": False,
        },
        {
            "__type": "RuleCombination",
            "combinationType": "OR",
            "rules": [
                {
                    "__type": "Rule",
                    "attribute": {"__type": "PresetAttributeReference", "ref": "COUNTRY"},
                    "attributeMatchCondition": "STRING_EQUALS",
                    "attributeMatchOptions": {"__type": "StringMatchOptions", "value": "FR"},
                    "invertCondition": True,
                }
            ],
        },
    ],
}
AUDIENCE = {
    "uid": AUD_UID,
    "name": "Big spenders",
    "description": "",
    "definition": DEFINITION,
    "project": PROJECT,
    "createdAt": "2024-05-01T10:00:00.000Z",
    "createdBy": "blt1",
    "updatedAt": "2024-05-01T10:00:00.000Z",
    "updatedBy": "blt1",
}
LYTICS = {"uid": LYTICS_UID, "name": "From Lytics", "source": "LYTICS", "project": PROJECT}


def built_definition() -> RuleCombination:
    return all_of(
        Rule.custom(ATTR_UID, Condition.NUMBER_GREATER_THAN, 1000),
        any_of(Rule.preset("COUNTRY", Condition.STRING_EQUALS, "FR", invert=True)),
    )


async def test_list_and_get(api: Api, router: respx.MockRouter) -> None:
    route = router.get(f"{MGMT}/audiences").respond(200, json=[AUDIENCE, LYTICS])
    audiences = await api.run(lambda c: c.audiences.list())
    assert_management_headers(route.calls.last.request)
    assert audiences[0].definition == built_definition()
    assert not audiences[0].is_read_only
    assert audiences[1].is_read_only and audiences[1].definition is None
    assert [a.to_api() for a in audiences] == [AUDIENCE, LYTICS]
    got = await api.run(lambda c: c.audiences.get(LYTICS_UID))
    assert got.source == "LYTICS"


async def test_create_sends_the_built_definition(api: Api, router: respx.MockRouter) -> None:
    route = router.post(f"{MGMT}/audiences").respond(201, json=AUDIENCE)
    created = await api.run(
        lambda c: c.audiences.create(name="Big spenders", definition=built_definition())
    )
    request = route.calls.last.request
    assert_management_headers(request)
    assert body_of(request) == {"name": "Big spenders", "definition": DEFINITION}
    assert created.uid == AUD_UID


async def test_create_validates(api: Api, router: respx.MockRouter) -> None:
    route = router.post(f"{MGMT}/audiences")
    with pytest.raises(ValidationError, match="RuleCombination"):
        await api.run(lambda c: c.audiences.create(name="x", definition=DEFINITION))
    with pytest.raises(ValidationError, match="name"):
        await api.run(lambda c: c.audiences.create(name=" ", definition=built_definition()))
    assert not route.called


async def test_update_keeps_unsent_fields(api: Api, router: respx.MockRouter) -> None:
    router.get(f"{MGMT}/audiences").respond(200, json=[AUDIENCE])
    route = router.put(f"{MGMT}/audiences/{AUD_UID}").respond(
        200, json={**AUDIENCE, "description": "Over 1000"}
    )
    result = await api.run(lambda c: c.audiences.update(AUD_UID, description="Over 1000"))
    assert_management_headers(route.calls.last.request)
    assert body_of(route.calls.last.request) == {
        "name": "Big spenders",
        "description": "Over 1000",
        "definition": DEFINITION,
    }
    assert result.description == "Over 1000"


async def test_update_definition_from_model(api: Api, router: respx.MockRouter) -> None:
    listing = router.get(f"{MGMT}/audiences")
    route = router.put(f"{MGMT}/audiences/{AUD_UID}").respond(200, json=AUDIENCE)
    current = Audience.from_api(AUDIENCE)
    new = any_of(Rule.custom(ATTR_UID, Condition.HAS_ANY_VALUE))
    await api.run(lambda c: c.audiences.update(current, definition=new))
    assert not listing.called
    assert body_of(route.calls.last.request)["definition"] == {
        "__type": "RuleCombination",
        "combinationType": "OR",
        "rules": [
            {
                "__type": "Rule",
                "attribute": {"__type": "CustomAttributeReference", "ref": ATTR_UID},
                "attributeMatchCondition": "HAS_ANY_VALUE",
                "invertCondition": False,
            }
        ],
    }


async def test_lytics_audiences_are_read_only(api: Api, router: respx.MockRouter) -> None:
    router.get(f"{MGMT}/audiences").respond(200, json=[AUDIENCE, LYTICS])
    put = router.put(f"{MGMT}/audiences/{LYTICS_UID}")
    delete = router.delete(f"{MGMT}/audiences/{LYTICS_UID}")
    with pytest.raises(ConfigurationError, match="LYTICS and read-only"):
        await api.run(lambda c: c.audiences.update(LYTICS_UID, name="Mine"))
    with pytest.raises(ConfigurationError, match="cannot be deleted"):
        await api.run(lambda c: c.audiences.delete(LYTICS_UID))
    with pytest.raises(ConfigurationError):
        await api.run(lambda c: c.audiences.delete(Audience.from_api(LYTICS)))
    assert not put.called and not delete.called


async def test_delete_checks_then_deletes(api: Api, router: respx.MockRouter) -> None:
    router.get(f"{MGMT}/audiences").respond(200, json=[AUDIENCE])
    route = router.delete(f"{MGMT}/audiences/{AUD_UID}").respond(204)
    await api.run(lambda c: c.audiences.delete(AUD_UID))
    assert_management_headers(route.calls.last.request)
