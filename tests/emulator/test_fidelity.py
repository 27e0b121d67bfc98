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
    ("NUMBER_GREATER_THAN", 1000, [5, 2500], False, True),  # no documented list rule
    ("NUMBER_GREATER_THAN", 1000, ["2500"], False, True),
    ("IS_TRUE", None, True, True, True),
    ("IS_TRUE", None, "true", False, True),
    ("IS_FALSE", None, False, True, True),
    ("IS_FALSE", None, "false", False, True),
    ("IS_TRUE", None, 1, False, False),
    ("STRING_EQUALS", "42", "42", True, True),
    ("STRING_EQUALS", "42", 42, False, True),
    ("STRING_EQUALS", "gold", "Gold", False, False),
    ("STRING_EQUALS", "gold", ["silver", "gold"], False, True),
    ("CONTAINS_SUBSTRING", "|vip|", "|churn|vip|", True, True),
    ("CONTAINS_SUBSTRING", "1", 123, False, False),
    ("HAS_ANY_VALUE", None, 0, True, True),
    ("HAS_ANY_VALUE", None, "", True, False),
    ("HAS_ANY_VALUE", None, None, False, False),
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


# ----------------------------------------------------------------------------- the other switches


def test_string_case_switch() -> None:
    for string_case, expected in (("sensitive", []), ("insensitive", ["u"])):
        emulator = PersonalizeEmulator(string_case=string_case)  # type: ignore[arg-type]
        plan = emulator.add_attribute("plan")
        gold = emulator.add_audience("Gold", _rule(plan["uid"], "STRING_EQUALS", "gold"))
        sub = emulator.add_audience("Sub", _rule(plan["uid"], "CONTAINS_SUBSTRING", "|vip|"))
        emulator.add_user("u", {"plan": "GOLD |VIP|"})
        emulator.add_user("v", {"plan": "Gold"})
        assert emulator.audience_members(sub) == expected
        assert emulator.in_audience(gold, "v") is (string_case == "insensitive")


@pytest.mark.parametrize("path", ["/user-attributes", "/events"])
def test_write_without_user_uid_is_refused_by_default(
    emulator: PersonalizeEmulator, path: str
) -> None:
    body = b'{"a": 1}' if path == "/user-attributes" else b'[{"type": "EVENT", "eventKey": "k"}]'
    method = "PATCH" if path == "/user-attributes" else "POST"
    r = emulator.request(
        method, f"{EDGE}{path}", headers={"x-project-uid": emulator.project_uid}, body=body
    )
    assert r.status == 400
    assert r.json()["error"].endswith(".USER_UID_REQUIRED")
    assert emulator.users() == {}


def test_lenient_edge_generates_a_user_uid_for_writes() -> None:
    emulator = PersonalizeEmulator(edge_validation="lenient")
    headers = {"x-project-uid": emulator.project_uid}
    r = emulator.request("PATCH", f"{EDGE}/user-attributes", headers=headers, body=b'{"a": 1}')
    assert r.status == 200
    uid = r.header("x-cs-personalize-user-uid")
    assert uid and emulator.user_attributes(uid) == {"a": 1}
    assert emulator.requests[-1].user_uid == uid
    r = emulator.request(
        "POST", f"{EDGE}/events", headers=headers, body=b'[{"type": "EVENT", "eventKey": "k"}]'
    )
    other = r.header("x-cs-personalize-user-uid")
    assert r.status == 200 and other and other != uid
    assert emulator.events_of(other) == [{"type": "EVENT", "eventKey": "k"}]


def test_malformed_events_strict_and_lenient() -> None:
    batch = [{"type": "CLICK"}, {"type": "IMPRESSION", "experienceShortUid": "a"}, 7]
    for validation, status in (("strict", 400), ("lenient", 200)):
        emulator = PersonalizeEmulator(edge_validation=validation)  # type: ignore[arg-type]
        r = emulator.request(
            "POST",
            f"{EDGE}/events",
            headers={"x-project-uid": emulator.project_uid, "x-cs-personalize-user-uid": "u"},
            json=batch,
        )
        assert r.status == status, validation
        assert emulator.events_of("u") == ([] if status == 400 else batch)


@pytest.mark.parametrize(("merge_source", "source_left"), [("keep", True), ("delete", False)])
def test_merge_source_switch(merge_source: str, source_left: bool) -> None:
    emulator = PersonalizeEmulator(merge_source=merge_source)  # type: ignore[arg-type]
    emulator.add_user("anon", {"plan": "silver"})
    emulator.add_user("known", {"plan": "gold", "ltv": 3})
    r = emulator.request(
        "POST",
        f"{EDGE}/user-attributes/actions/merge",
        headers={"x-project-uid": emulator.project_uid},
        json={"sourceUserUid": "anon", "targetUserUid": "known"},
    )
    assert r.status == 200
    assert emulator.user_attributes("known") == {"plan": "silver", "ltv": 3}
    assert ("anon" in emulator.users()) is source_left


def test_management_validation_lenient_checks_only_what_is_required() -> None:
    strict, lenient = PersonalizeEmulator(), PersonalizeEmulator(management_validation="lenient")
    for key in ("has-dash", "country"):
        with pytest.raises(ValueError):
            strict.add_attribute(key)
        assert lenient.add_attribute(key)["key"] == key
    missing = _rule("no-such-attribute", "STRING_EQUALS", "x")
    with pytest.raises(ValueError, match="no custom attribute"):
        strict.add_audience("A", missing)
    assert lenient.add_audience("A", missing)["name"] == "A"
    many = {"__type": "RuleCombination", "combinationType": "OR", "rules": missing["rules"] * 51}
    assert lenient.add_audience("Many", many)
    with pytest.raises(ValueError, match="key is required"):
        lenient.add_event("")
    with pytest.raises(ValueError, match="already exists"):
        lenient.add_attribute("country")
    with httpx.Client(transport=lenient.transport(), base_url=MANAGEMENT) as mgmt:
        headers = {"authtoken": lenient.authtoken, "organization_uid": lenient.organization_uid}
        for i in range(4):
            r = mgmt.post("/projects", headers=headers, json={"name": f"P{i}"})
            assert r.status_code == 201
        r = mgmt.post("/attributes", headers=headers, json={"name": "x", "key": "x"})
        assert r.status_code == 404  # no x-project-uid: still refused


def test_retry_after_header_switch() -> None:
    for retry_after, expected in ((True, "1"), (False, None)):
        emulator = PersonalizeEmulator(management_rate_limit=1, retry_after_header=retry_after)
        headers = {"x-project-uid": emulator.project_uid, "authtoken": emulator.authtoken}
        with httpx.Client(transport=emulator.transport(), base_url=MANAGEMENT) as mgmt:
            statuses = [mgmt.get("/attributes", headers=headers) for _ in range(2)]
        assert statuses[1].status_code == 429
        assert statuses[1].headers.get("retry-after") == expected


def test_refresh_token_rotation_switch() -> None:
    for rotation, second in ((True, 400), (False, 200)):
        emulator = PersonalizeEmulator(refresh_token_rotation=rotation)
        emulator.add_refresh_token("r1")
        form = {"grant_type": "refresh_token", "refresh_token": "r1"}
        with httpx.Client(transport=emulator.transport()) as http:
            url = "https://developerhub-api.contentstack.com/token"
            assert http.post(url, data=form).status_code == 200
            assert http.post(url, data=form).status_code == second


# ----------------------------------------------------------------------------- manifest


def _manifest(emulator: PersonalizeEmulator, url: str, **headers: str) -> Any:
    r = emulator.request("GET", url, headers={"x-project-uid": emulator.project_uid, **headers})
    assert r.status == 200
    return r.json()["experiences"]


def test_manifest_tags_match_case_insensitively(emulator: PersonalizeEmulator) -> None:
    emulator.add_experience("Home", tags=["Home"])
    emulator.add_experience("Cart", tags=["cart"])
    emulator.add_experience("None")
    shown = _manifest(emulator, f"{EDGE}/manifest?tags[]=HOME&tags[]=nope")
    assert [e["shortUid"] for e in shown] == ["a"]


def test_manifest_live_attributes_count_for_this_manifest_only(
    emulator: PersonalizeEmulator,
) -> None:
    ltv = emulator.add_attribute("ltv")
    big = emulator.add_audience("Big", _rule(ltv["uid"], "NUMBER_GREATER_THAN", 1000))
    emulator.add_experience("Offer", audiences=[big["uid"]])
    emulator.add_user("u", {"ltv": 5})
    url = f"{EDGE}/manifest"
    live = _manifest(
        emulator,
        url,
        **{"x-cs-personalize-user-uid": "u"},
        **{"x-live-attributes": '{"ltv": 5000}'},
    )
    assert live == [{"shortUid": "a", "activeVariantShortUid": "0"}]
    assert emulator.user_attributes("u") == {"ltv": 5}
    for bad in ("not json", "[1, 2]"):
        shown = _manifest(
            emulator, url, **{"x-cs-personalize-user-uid": "u", "x-live-attributes": bad}
        )
        assert shown == [{"shortUid": "a", "activeVariantShortUid": None}]


def test_every_switch_is_validated_and_described() -> None:
    switches = {
        "string_case": "upper",
        "edge_validation": "loose",
        "merge_source": "move",
        "management_validation": "off",
    }
    for name, bad in switches.items():
        with pytest.raises(ValueError, match=name):
            PersonalizeEmulator(**{name: bad})  # type: ignore[arg-type]
    described = PersonalizeEmulator().describe()["switches"]
    assert {
        "unknown_attribute",
        "null_value",
        "unknown_event",
        "audience_matching",
        "content_type",
        "retry_after_header",
        "refresh_token_rotation",
        *switches,
    } <= set(described)
