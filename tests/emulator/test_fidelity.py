"""The emulator behaves as the real Personalize does: bodies the real edge accepts, audience rules
that never convert types (unless the lenient switch is on), and direct membership questions."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from contentstack_personalize.testing import PersonalizeEmulator

EDGE = "https://personalize-edge.contentstack.com"
MANAGEMENT = "https://personalize-api.contentstack.com"
# What node-fetch (and so the official JS Edge SDK 1.0.27) sends with a string body.
SDK_CONTENT_TYPE = "text/plain;charset=UTF-8"


def _edge(emulator: PersonalizeEmulator) -> httpx.Client:
    return httpx.Client(
        transport=emulator.transport(),
        base_url=EDGE,
        headers={"x-project-uid": emulator.project_uid, "content-type": SDK_CONTENT_TYPE},
    )


# ----------------------------------------------------------------------------- content types


def test_text_plain_json_bodies_are_accepted_on_every_edge_write(
    emulator: PersonalizeEmulator,
) -> None:
    user = {"x-cs-personalize-user-uid": "visitor"}
    with _edge(emulator) as edge:
        r = edge.patch("/user-attributes", headers=user, content=b'{"plan": "gold"}')
        assert (r.status_code, r.text) == (200, "User Attributes added successfully")
        r = edge.post(
            "/events",
            headers=user,
            content=b'[{"type": "EVENT", "eventKey": "signup"},'
            b' {"type": "IMPRESSION", "experienceShortUid": "a", "variantShortUid": "0"}]',
        )
        assert r.status_code == 200
        r = edge.post(
            "/user-attributes/actions/merge",
            content=b'{"sourceUserUid": "visitor", "targetUserUid": "known"}',
        )
        assert r.status_code == 200
    assert emulator.user_attributes("known") == {"plan": "gold"}
    assert [e["type"] for e in emulator.events_of("visitor")] == ["EVENT", "IMPRESSION"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/octet-stream"])
def test_any_content_type_is_read_as_json_by_default(
    emulator: PersonalizeEmulator, content_type: str | None
) -> None:
    headers = {"x-cs-personalize-user-uid": "u", "x-project-uid": emulator.project_uid}
    if content_type:
        headers["content-type"] = content_type
    r = emulator.request("PATCH", f"{EDGE}/user-attributes", headers=headers, body=b'{"a": 1}')
    assert r.status == 200
    assert emulator.user_attributes("u") == {"a": 1}


def test_text_plain_body_that_is_not_json_is_still_invalid(emulator: PersonalizeEmulator) -> None:
    with _edge(emulator) as edge:
        r = edge.patch(
            "/user-attributes", headers={"x-cs-personalize-user-uid": "u"}, content=b"plan=gold"
        )
    assert r.status_code == 400
    assert r.json()["error"] == "personalize.USER_ATTRIBUTES.INVALID_BODY"


def test_management_reads_text_plain_bodies_too(emulator: PersonalizeEmulator) -> None:
    with httpx.Client(transport=emulator.transport(), base_url=MANAGEMENT) as mgmt:
        r = mgmt.post(
            "/attributes",
            headers={
                "x-project-uid": emulator.project_uid,
                "authtoken": emulator.authtoken,
                "content-type": "text/plain",
            },
            content=b'{"name": "Plan", "key": "plan"}',
        )
    assert r.status_code == 201


@pytest.mark.parametrize(
    ("api", "method", "path", "body", "code"),
    [
        ("edge", "POST", "/events", b"[]", "personalize.EVENTS.INVALID_CONTENT_TYPE"),
        (
            "edge",
            "POST",
            "/user-attributes/actions/merge",
            b'{"sourceUserUid": "a", "targetUserUid": "b"}',
            "personalize.USER_ATTRIBUTES.INVALID_CONTENT_TYPE",
        ),
        (
            "management",
            "POST",
            "/events",
            b'{"key": "signup"}',
            "personalize.INVALID_CONTENT_TYPE",
        ),
    ],
)
def test_content_type_json_switch_refuses_other_types(
    api: str, method: str, path: str, body: bytes, code: str
) -> None:
    emulator = PersonalizeEmulator(content_type="json")
    headers = {
        "x-project-uid": emulator.project_uid,
        "x-cs-personalize-user-uid": "u",
        "authtoken": emulator.authtoken,
        "content-type": SDK_CONTENT_TYPE,
    }
    r = emulator.request(method, f"/{api}{path}", headers=headers, body=body)
    assert r.status == 400
    assert r.json()["error"] == code
    headers["content-type"] = "application/json"
    assert emulator.request(method, f"/{api}{path}", headers=headers, body=body).status < 300


def test_content_type_switch_is_validated() -> None:
    with pytest.raises(ValueError, match="content_type"):
        PersonalizeEmulator(content_type="xml")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- strict rules


def _rule(key_uid: str, condition: str, value: Any = None) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "__type": "Rule",
        "attribute": {"__type": "CustomAttributeReference", "ref": key_uid},
        "attributeMatchCondition": condition,
        "invertCondition": False,
    }
    if isinstance(value, str):
        rule["attributeMatchOptions"] = {"__type": "StringMatchOptions", "value": value}
    elif value is not None:
        rule["attributeMatchOptions"] = {"__type": "NumberMatchOptions", "value": value}
    return {"__type": "RuleCombination", "combinationType": "AND", "rules": [rule]}


# (condition, rule value, user value, strict result, lenient result)
CASES = [
    ("NUMBER_GREATER_THAN", 1000, 2500, True, True),
    ("NUMBER_GREATER_THAN", 1000, 2500.5, True, True),
    ("NUMBER_GREATER_THAN", 1000, "2500", False, True),
    ("NUMBER_EQUAL_TO", 1, "1", False, True),
    ("NUMBER_LESS_THAN", 10, "5", False, True),
    ("NUMBER_EQUAL_TO", 1, True, False, False),
    ("NUMBER_GREATER_THAN", 1000, [5, 2500], True, True),
    ("NUMBER_GREATER_THAN", 1000, ["2500"], False, True),
    ("IS_TRUE", None, True, True, True),
    ("IS_TRUE", None, "true", False, True),
    ("IS_FALSE", None, False, True, True),
    ("IS_FALSE", None, "false", False, True),
    ("IS_TRUE", None, 1, False, False),
    ("STRING_EQUALS", "42", "42", True, True),
    ("STRING_EQUALS", "42", 42, False, True),
    ("STRING_EQUALS", "gold", ["silver", "gold"], True, True),
    ("CONTAINS_SUBSTRING", "|vip|", "|churn|vip|", True, True),
    ("CONTAINS_SUBSTRING", "1", 123, False, False),
    ("HAS_ANY_VALUE", None, 0, True, True),
    ("HAS_ANY_VALUE", None, "", False, False),
]


@pytest.mark.parametrize(("condition", "target", "value", "strict", "lenient"), CASES)
def test_audience_rules_strict_by_default_lenient_on_request(
    condition: str, target: Any, value: Any, strict: bool, lenient: bool
) -> None:
    for matching, expected in (("strict", strict), ("lenient", lenient)):
        emulator = PersonalizeEmulator(audience_matching=matching)  # type: ignore[arg-type]
        attribute = emulator.add_attribute("x")
        audience = emulator.add_audience("A", _rule(attribute["uid"], condition, target))
        emulator.add_user("u", {"x": value})
        assert emulator.in_audience(audience, "u") is expected, matching
        # The manifest uses the same engine.
        emulator.add_experience("Hero", variants=["0", "1"], audiences=[audience["uid"]])
        r = emulator.request(
            "GET",
            f"{EDGE}/manifest",
            headers={"x-project-uid": emulator.project_uid, "x-cs-personalize-user-uid": "u"},
        )
        variant = r.json()["experiences"][0]["activeVariantShortUid"]
        assert variant == ("0" if expected else None), matching


def test_number_sent_as_text_over_the_edge_does_not_enter_a_number_audience(
    emulator: PersonalizeEmulator,
) -> None:
    ltv = emulator.add_attribute("ltv")
    big = emulator.add_audience("Big spenders", _rule(ltv["uid"], "NUMBER_GREATER_THAN", 1000))
    with _edge(emulator) as edge:
        for uid, body in (("text", b'{"ltv": "2500"}'), ("number", b'{"ltv": 2500}')):
            edge.patch("/user-attributes", headers={"x-cs-personalize-user-uid": uid}, content=body)
    assert emulator.audience_members(big) == ["number"]
    assert not emulator.in_audience(big, "text")


def test_audience_matching_switch_is_validated() -> None:
    with pytest.raises(ValueError, match="audience_matching"):
        PersonalizeEmulator(audience_matching="loose")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- membership


def test_audience_members_and_in_audience(emulator: PersonalizeEmulator) -> None:
    plan = emulator.add_attribute("plan")
    gold = emulator.add_audience("Gold", _rule(plan["uid"], "STRING_EQUALS", "gold"))
    fans = emulator.add_lytics_audience("Fans", members=["u2", "ghost"])
    emulator.add_user("u1", {"plan": "gold"})
    emulator.add_user("u2", {"plan": "silver"})
    emulator.add_user("u3", {"plan": "gold"})
    assert emulator.audience_members(gold) == ["u1", "u3"]
    assert emulator.audience_members(gold["uid"]) == ["u1", "u3"]
    assert emulator.audience_members("Gold") == ["u1", "u3"]
    assert emulator.audience_members(fans) == ["u2"]
    assert emulator.in_audience(fans, "ghost")
    assert emulator.in_audience("Gold", "u1") and not emulator.in_audience("Gold", "u2")
    assert not emulator.in_audience(gold, "nobody")


def test_membership_accepts_objects_with_a_uid(emulator: PersonalizeEmulator) -> None:
    plan = emulator.add_attribute("plan")
    gold = emulator.add_audience("Gold", _rule(plan["uid"], "STRING_EQUALS", "gold"))
    emulator.add_user("u1", {"plan": "gold"})

    class Audience:
        uid = gold["uid"]

    assert emulator.audience_members(Audience()) == ["u1"]


def test_membership_of_an_unknown_audience_says_so(emulator: PersonalizeEmulator) -> None:
    with pytest.raises(KeyError, match="no audience with uid or name 'Nope'"):
        emulator.audience_members("Nope")
    with pytest.raises(TypeError, match="audience must be"):
        emulator.in_audience(42, "u")


def test_invert_condition_and_or(emulator: PersonalizeEmulator) -> None:
    plan = emulator.add_attribute("plan")
    ltv = emulator.add_attribute("ltv")
    definition = {
        "__type": "RuleCombination",
        "combinationType": "OR",
        "rules": [
            {
                **_rule(plan["uid"], "STRING_EQUALS", "gold")["rules"][0],
                "invertCondition": True,
            },
            _rule(ltv["uid"], "NUMBER_GREATER_THAN", 100),
        ],
    }
    audience = emulator.add_audience("Not gold or rich", definition)
    emulator.add_user("silver", {"plan": "silver"})
    emulator.add_user("gold", {"plan": "gold"})
    emulator.add_user("rich gold", {"plan": "gold", "ltv": 500})
    emulator.add_user("text-rich gold", {"plan": "gold", "ltv": "500"})
    assert emulator.audience_members(audience) == ["silver", "rich gold"]
