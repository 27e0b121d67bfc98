"""Edge API: user attributes, merge, events, manifest, and routing."""

from __future__ import annotations

import httpx
import pytest

from contentstack_personalize.testing import PRESET_ATTRIBUTES, PersonalizeEmulator

EDGE = "https://personalize-edge.contentstack.com"


def _user(uid: str) -> dict[str, str]:
    return {"x-cs-personalize-user-uid": uid}


# ----------------------------------------------------------------------------- attributes


def test_patch_creates_user_and_answers_plain_text(
    edge: httpx.Client, emulator: PersonalizeEmulator
) -> None:
    r = edge.patch("/user-attributes", headers=_user("u1"), json={"plan": "gold", "ltv": 12.5})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text == "User Attributes added successfully"
    assert emulator.user_attributes("u1") == {"plan": "gold", "ltv": 12.5}
    assert emulator.users() == {"u1": {"plan": "gold", "ltv": 12.5}}


def test_patch_merges_sent_keys_and_keeps_unsent(
    edge: httpx.Client, emulator: PersonalizeEmulator
) -> None:
    edge.patch("/user-attributes", headers=_user("u1"), json={"plan": "gold", "ltv": 1})
    edge.patch("/user-attributes", headers=_user("u1"), json={"plan": "silver", "city": "Oslo"})
    assert emulator.user_attributes("u1") == {"plan": "silver", "ltv": 1, "city": "Oslo"}


def test_null_deletes_by_default(edge: httpx.Client, emulator: PersonalizeEmulator) -> None:
    edge.patch("/user-attributes", headers=_user("u1"), json={"plan": "gold", "ltv": 1})
    edge.patch("/user-attributes", headers=_user("u1"), json={"plan": None})
    assert emulator.user_attributes("u1") == {"ltv": 1}


def test_null_can_be_stored() -> None:
    emulator = PersonalizeEmulator(null_value="store")
    r = emulator.request(
        "PATCH",
        "/edge/user-attributes",
        headers={"x-project-uid": emulator.project_uid, **_user("u1")},
        json={"plan": None},
    )
    assert r.status == 200
    assert emulator.user_attributes("u1") == {"plan": None}


def test_unknown_attribute_accept_ignore_reject() -> None:
    for mode, status, stored in (
        ("accept", 200, {"plan": "gold", "nope": 1}),
        ("ignore", 200, {"plan": "gold"}),
        ("reject", 400, {}),
    ):
        emulator = PersonalizeEmulator(unknown_attribute=mode)  # type: ignore[arg-type]
        emulator.add_attribute("plan")
        r = emulator.request(
            "PATCH",
            "/edge/user-attributes",
            headers={"x-project-uid": emulator.project_uid, **_user("u1")},
            json={"plan": "gold", "nope": 1},
        )
        assert r.status == status, mode
        assert emulator.user_attributes("u1") == stored, mode
        if mode == "reject":
            body = r.json()
            assert body["error"] == "personalize.USER_ATTRIBUTES.INVALID_ATTRIBUTE"
            assert "nope" in body["message"]
            assert body["keys"] == ["nope"]


def test_invalid_switch_values_are_refused() -> None:
    with pytest.raises(ValueError):
        PersonalizeEmulator(unknown_attribute="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PersonalizeEmulator(null_value="keep")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PersonalizeEmulator(unknown_event="ignore")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("headers", "content", "status", "code"),
    [
        ({"x-project-uid": ""}, b"{}", 404, "personalize.USER_ATTRIBUTES.PROJECT_NOT_FOUND"),
        ({"x-project-uid": "0" * 24}, b"{}", 404, "personalize.USER_ATTRIBUTES.PROJECT_NOT_FOUND"),
        ({}, b"{}", 400, "personalize.USER_ATTRIBUTES.USER_UID_REQUIRED"),
        (_user("u1"), b"{not json", 400, "personalize.USER_ATTRIBUTES.INVALID_BODY"),
        (_user("u1"), b"[1, 2]", 400, "personalize.USER_ATTRIBUTES.INVALID_BODY"),
        (_user("u1"), b'"text"', 400, "personalize.USER_ATTRIBUTES.INVALID_BODY"),
    ],
)
def test_patch_errors(
    edge: httpx.Client,
    emulator: PersonalizeEmulator,
    headers: dict[str, str],
    content: bytes,
    status: int,
    code: str,
) -> None:
    r = edge.patch(
        "/user-attributes",
        headers={"content-type": "application/json", **headers},
        content=content,
    )
    assert r.status_code == status
    assert r.json()["error"] == code
    assert r.json()["message"]
    assert emulator.users() == {}


def test_patch_without_json_content_type_is_refused_with_content_type_json() -> None:
    emulator = PersonalizeEmulator(content_type="json")
    with httpx.Client(
        transport=emulator.transport(),
        base_url=EDGE,
        headers={"x-project-uid": emulator.project_uid},
    ) as edge:
        r = edge.patch("/user-attributes", headers=_user("u1"), content=b'{"a": 1}')
    assert r.status_code == 400
    assert r.json()["error"] == "personalize.USER_ATTRIBUTES.INVALID_CONTENT_TYPE"
    assert emulator.users() == {}


def test_missing_project_header_on_edge(emulator: PersonalizeEmulator) -> None:
    with httpx.Client(transport=emulator.transport(), base_url=EDGE) as client:
        r = client.get("/manifest")
        assert r.status_code == 404
        assert r.json()["error"] == "personalize.MANIFEST.PROJECT_NOT_FOUND"
        r = client.post("/events", json=[], headers=_user("u"))
        assert r.json()["error"] == "personalize.EVENTS.PROJECT_NOT_FOUND"


# ----------------------------------------------------------------------------- merge


def test_merge_source_wins(edge: httpx.Client, emulator: PersonalizeEmulator) -> None:
    emulator.add_user("anon", {"plan": "trial", "city": "Oslo"})
    emulator.add_user("known", {"plan": "gold", "ltv": 3})
    r = edge.post(
        "/user-attributes/actions/merge",
        json={"sourceUserUid": "anon", "targetUserUid": "known"},
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert emulator.user_attributes("known") == {"plan": "trial", "city": "Oslo", "ltv": 3}
    assert emulator.user_attributes("anon") == {"plan": "trial", "city": "Oslo"}


def test_merge_creates_target_and_validates(
    edge: httpx.Client, emulator: PersonalizeEmulator
) -> None:
    emulator.add_user("anon", {"a": 1})
    r = edge.post(
        "/user-attributes/actions/merge", json={"sourceUserUid": "anon", "targetUserUid": "new"}
    )
    assert r.status_code == 200
    assert emulator.user_attributes("new") == {"a": 1}
    r = edge.post("/user-attributes/actions/merge", json={"sourceUserUid": "anon"})
    assert r.status_code == 400
    assert r.json()["error"] == "personalize.USER_ATTRIBUTES.INVALID_BODY"


# ----------------------------------------------------------------------------- events


def test_events_are_recorded_per_user(edge: httpx.Client, emulator: PersonalizeEmulator) -> None:
    events = [
        {"type": "IMPRESSION", "experienceShortUid": "a", "variantShortUid": "0"},
        {"type": "EVENT", "eventKey": "clickCTA"},
    ]
    r = edge.post("/events", headers=_user("u1"), json=events)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert emulator.events_of("u1") == events
    assert emulator.events_of("u2") == []


@pytest.mark.parametrize(
    ("headers", "body", "code"),
    [
        ({}, [], "personalize.EVENTS.USER_UID_REQUIRED"),
        (_user("u1"), {"type": "EVENT"}, "personalize.EVENTS.INVALID_BODY"),
        (_user("u1"), [{"type": "CLICK"}], "personalize.EVENTS.INVALID_BODY"),
        (_user("u1"), [{"type": "EVENT"}], "personalize.EVENTS.INVALID_BODY"),
        (
            _user("u1"),
            [{"type": "IMPRESSION", "experienceShortUid": "a"}],
            "personalize.EVENTS.INVALID_BODY",
        ),
    ],
)
def test_event_errors(
    edge: httpx.Client,
    emulator: PersonalizeEmulator,
    headers: dict[str, str],
    body: object,
    code: str,
) -> None:
    r = edge.post("/events", headers=headers, json=body)
    assert r.status_code == 400
    assert r.json()["error"] == code
    assert emulator.events_of("u1") == []


def test_unknown_event_reject() -> None:
    emulator = PersonalizeEmulator(unknown_event="reject")
    emulator.add_event("signup")
    headers = {"x-project-uid": emulator.project_uid, **_user("u1")}
    ok = emulator.request(
        "POST", "/edge/events", headers=headers, json=[{"type": "EVENT", "eventKey": "signup"}]
    )
    assert ok.status == 200
    bad = emulator.request(
        "POST",
        "/edge/events",
        headers=headers,
        json=[{"type": "EVENT", "eventKey": "signup"}, {"type": "EVENT", "eventKey": "nope"}],
    )
    assert bad.status == 400
    assert bad.json()["error"] == "personalize.EVENTS.EVENT_NOT_FOUND"
    assert bad.json()["keys"] == ["nope"]
    assert len(emulator.events_of("u1")) == 1


# ----------------------------------------------------------------------------- manifest


def test_manifest_generates_a_user_uid(edge: httpx.Client, emulator: PersonalizeEmulator) -> None:
    r = edge.get("/manifest")
    assert r.status_code == 200
    assert r.json() == {"experiences": []}
    generated = r.headers["x-cs-personalize-user-uid"]
    assert len(generated) == 36 and generated[14] == "4"
    assert generated in emulator.users()
    r = edge.get("/manifest", headers=_user("known"))
    assert r.headers["x-cs-personalize-user-uid"] == "known"


def test_manifest_lists_active_experiences_in_priority_order(
    edge: httpx.Client, emulator: PersonalizeEmulator
) -> None:
    first = emulator.add_experience("Hero", variants=["0", "1"], active_variant="1")
    second = emulator.add_experience("Footer", short_uid="z", active_variant=None)
    emulator.add_experience("Draft", status="DRAFT")
    assert first["shortUid"] == "a"
    r = edge.get("/manifest", headers=_user("u1"))
    assert r.json() == {
        "experiences": [
            {"shortUid": "a", "activeVariantShortUid": "1"},
            {"shortUid": second["shortUid"], "activeVariantShortUid": None},
        ]
    }


def test_manifest_audience_based_experience(
    edge: httpx.Client, emulator: PersonalizeEmulator
) -> None:
    plan = emulator.add_attribute("plan")
    ltv = emulator.add_attribute("ltv")
    gold = emulator.add_audience(
        "Gold big spenders",
        {
            "__type": "RuleCombination",
            "combinationType": "AND",
            "rules": [
                {
                    "__type": "Rule",
                    "attribute": {"__type": "CustomAttributeReference", "ref": plan["uid"]},
                    "attributeMatchCondition": "STRING_EQUALS",
                    "attributeMatchOptions": {"__type": "StringMatchOptions", "value": "gold"},
                    "invertCondition": False,
                },
                {
                    "__type": "Rule",
                    "attribute": {"__type": "CustomAttributeReference", "ref": ltv["uid"]},
                    "attributeMatchCondition": "NUMBER_GREATER_THAN",
                    "attributeMatchOptions": {"__type": "NumberMatchOptions", "value": 1000},
                },
            ],
        },
    )
    lytics = emulator.add_lytics_audience("Lytics fans", members=["fan"])
    emulator.add_experience("Gold", audiences=[gold["uid"]])
    emulator.add_experience(
        "Fans", audiences=[lytics["uid"]], variants=["0", "1"], active_variant="1"
    )
    emulator.add_user("rich", {"plan": "gold", "ltv": 5000})
    emulator.add_user("poor", {"plan": "gold", "ltv": 10})

    def variants(uid: str) -> list[object]:
        exps = edge.get("/manifest", headers=_user(uid)).json()["experiences"]
        return [e["activeVariantShortUid"] for e in exps]

    assert variants("rich") == ["0", None]
    assert variants("poor") == [None, None]
    assert variants("fan") == [None, "1"]


def test_manifest_ab_test_is_stable(edge: httpx.Client, emulator: PersonalizeEmulator) -> None:
    emulator.add_experience("AB", type="AB_TEST", variants=["0", "1"])
    seen = set()
    for i in range(40):
        first = edge.get("/manifest", headers=_user(f"u{i}")).json()["experiences"][0]
        again = edge.get("/manifest", headers=_user(f"u{i}")).json()["experiences"][0]
        assert first == again
        seen.add(first["activeVariantShortUid"])
    assert seen == {"0", "1"}


def test_manifest_tags(edge: httpx.Client, emulator: PersonalizeEmulator) -> None:
    emulator.add_experience("Home", tags=["home"])
    emulator.add_experience("Cart", tags=["cart", "checkout"])
    r = edge.get("/manifest", params=[("tags[]", "checkout")])
    assert [e["shortUid"] for e in r.json()["experiences"]] == ["b"]
    r = edge.get("/manifest", params=[("tags[]", "home"), ("tags[]", "cart")])
    assert [e["shortUid"] for e in r.json()["experiences"]] == ["a", "b"]
    r = edge.get("/manifest", params=[("tags[]", f"t{i}") for i in range(11)])
    assert r.status_code == 400
    assert r.json()["error"] == "personalize.MANIFEST.TOO_MANY_TAGS"


def test_experience_helper_validates(emulator: PersonalizeEmulator) -> None:
    with pytest.raises(ValueError):
        emulator.add_experience("x", variants=["0"], active_variant="9")
    with pytest.raises(ValueError):
        emulator.add_experience("x", audiences=["nope"])
    emulator.add_experience("x", short_uid="q")
    with pytest.raises(ValueError):
        emulator.add_experience("y", short_uid="q")


# ----------------------------------------------------------------------------- routing


def test_routing_by_prefix_and_host(emulator: PersonalizeEmulator) -> None:
    headers = {"x-project-uid": emulator.project_uid}
    with httpx.Client(transport=emulator.transport(), headers=headers) as client:
        for url in (
            "http://127.0.0.1/edge/manifest",
            "https://personalize-edge.contentstack.com/manifest",
            "https://eu-personalize-edge.contentstack.com/manifest",
            "https://gcp-na-personalize-edge.contentstack.com/manifest",
        ):
            assert client.get(url).status_code == 200, url
        r = client.get("https://example.com/manifest")
        assert r.status_code == 404
        assert r.json()["error"] == "emulator.UNKNOWN_API"
        assert "/edge" in r.json()["message"] and "personalize-edge" in r.json()["message"]
        r = client.get("http://127.0.0.1/edge/nothing-here")
        assert r.status_code == 404
        assert r.json()["error"] == "personalize.ROUTE_NOT_FOUND"
        r = client.get("http://127.0.0.1/edge/user-attributes")
        assert r.status_code == 404


def test_every_project_has_the_presets(emulator: PersonalizeEmulator) -> None:
    other = emulator.create_project("Second")
    for uid in (emulator.project_uid, other):
        presets = [a for a in emulator.catalogue("attributes", uid) if a["__type"] == "PRESET"]
        names = {a["key"] for a in presets}
        assert {"COUNTRY", "REGION", "CITY", "DEVICE_TYPE", "OPERATING_SYSTEM", "BROWSER"} <= names
        assert {"REFERRER", "QUERY_PARAMETER"} <= names
        assert names == set(PRESET_ATTRIBUTES)
        assert all(a["uid"] == a["key"] for a in presets)


def test_projects_are_isolated(emulator: PersonalizeEmulator) -> None:
    other = emulator.create_project("Second")
    emulator.request(
        "PATCH",
        "/edge/user-attributes",
        headers={"x-project-uid": other, **_user("u1")},
        json={"a": 1},
    )
    assert emulator.users() == {}
    assert emulator.users(other) == {"u1": {"a": 1}}
    assert emulator.user_attributes("u1", project_uid=other) == {"a": 1}
