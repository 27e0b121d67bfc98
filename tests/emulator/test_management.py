"""Management API: auth, rate limit, attributes, audiences, events, experiences, projects."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from contentstack_personalize.testing import PersonalizeEmulator

MANAGEMENT = "https://personalize-api.contentstack.com"


def _rule(ref: str, condition: str = "HAS_ANY_VALUE", **extra: Any) -> dict[str, Any]:
    return {
        "__type": "Rule",
        "attribute": {"__type": "CustomAttributeReference", "ref": ref},
        "attributeMatchCondition": condition,
        **extra,
    }


def _client(emulator: PersonalizeEmulator, **headers: str) -> httpx.Client:
    return httpx.Client(
        transport=emulator.transport(),
        base_url=MANAGEMENT,
        headers={"x-project-uid": emulator.project_uid, **headers},
    )


# ----------------------------------------------------------------------------- auth


@pytest.mark.parametrize(
    "headers",
    [{}, {"authtoken": "nope"}, {"authorization": "Bearer nope"}],
)
def test_unauthenticated(emulator: PersonalizeEmulator, headers: dict[str, str]) -> None:
    with _client(emulator, **headers) as client:
        r = client.get("/attributes")
    assert r.status_code == 401
    assert r.json()["error"].endswith("UNAUTHORIZED")
    assert r.json()["message"]


def test_management_tokens_are_refused(emulator: PersonalizeEmulator) -> None:
    with _client(emulator, authorization="cs1234management") as client:
        r = client.get("/attributes")
    assert r.status_code == 401
    assert "Management tokens are not supported" in r.json()["message"]
    assert "authtoken" in r.json()["message"]


def test_authtoken_and_oauth_tokens(emulator: PersonalizeEmulator) -> None:
    emulator.add_authtoken("my-token")
    emulator.add_oauth_token("my-access")
    for headers in ({"authtoken": "my-token"}, {"authorization": "Bearer my-access"}):
        with _client(emulator, **headers) as client:
            assert client.get("/attributes").status_code == 200
    # A token only works in its own header.
    for headers in ({"authtoken": "my-access"}, {"authorization": "Bearer my-token"}):
        with _client(emulator, **headers) as client:
            assert client.get("/attributes").status_code == 401


def test_revoked_and_expired_tokens(clocked: PersonalizeEmulator, clock: Any) -> None:
    clocked.add_oauth_token("short", expires_in=60)
    clocked.add_authtoken("gone")
    clocked.revoke_token("gone")
    with _client(clocked, authorization="Bearer short") as client:
        assert client.get("/events").status_code == 200
        clock.advance(61)
        r = client.get("/events")
        assert r.status_code == 401
        assert "expired" in r.json()["message"]
    with _client(clocked, authtoken="gone") as client:
        assert client.get("/events").status_code == 401


def test_token_bound_to_another_organization(emulator: PersonalizeEmulator) -> None:
    other_org = emulator.create_organization()
    emulator.add_authtoken("elsewhere", organization_uid=other_org)
    with _client(emulator, authtoken="elsewhere") as client:
        r = client.get("/attributes")
    assert r.status_code == 403


def test_unknown_project(emulator: PersonalizeEmulator) -> None:
    with _client(emulator, authtoken=emulator.authtoken) as client:
        r = client.get("/attributes", headers={"x-project-uid": "f" * 24})
        assert r.status_code == 404
        assert r.json()["error"] == "personalize.ATTRIBUTES.PROJECT_NOT_FOUND"
        r = client.get("/audiences", headers={"x-project-uid": ""})
        assert r.json()["error"] == "personalize.AUDIENCES.PROJECT_NOT_FOUND"


# ----------------------------------------------------------------------------- rate limit


def test_rate_limit_sliding_window(clocked: PersonalizeEmulator, clock: Any) -> None:
    with _client(clocked, authtoken=clocked.authtoken) as client:
        for _ in range(10):
            assert client.get("/attributes").status_code == 200
            clock.advance(0.05)
        r = client.get("/attributes")
        assert r.status_code == 429
        assert r.headers["retry-after"] == "1"
        assert r.json()["error"] == "personalize.TOO_MANY_REQUESTS"
        # The edge is never rate limited.
        edge = client.get(
            "https://personalize-edge.contentstack.com/manifest",
        )
        assert edge.status_code == 200
        clock.advance(0.51)  # the first request left the window
        assert client.get("/attributes").status_code == 200
        assert client.get("/attributes").status_code == 429
        clock.advance(1.0)
        assert all(client.get("/events").status_code == 200 for _ in range(10))


def test_rate_limit_is_per_organization(clocked: PersonalizeEmulator) -> None:
    org = clocked.create_organization()
    project = clocked.create_project("Other", organization_uid=org)
    with _client(clocked, authtoken=clocked.authtoken) as client:
        for _ in range(10):
            client.get("/attributes")
        assert client.get("/attributes").status_code == 429
        assert client.get("/attributes", headers={"x-project-uid": project}).status_code == 200
        r = client.get("/projects", headers={"organization_uid": clocked.organization_uid})
        assert r.status_code == 429


def test_rate_limit_can_be_disabled() -> None:
    emulator = PersonalizeEmulator(management_rate_limit=None)
    with _client(emulator, authtoken=emulator.authtoken) as client:
        assert all(client.get("/attributes").status_code == 200 for _ in range(50))


# ----------------------------------------------------------------------------- attributes


def test_attribute_crud(mgmt: httpx.Client, emulator: PersonalizeEmulator) -> None:
    r = mgmt.post("/attributes", json={"name": "Plan", "key": "plan", "description": "tier"})
    assert r.status_code == 201
    created = r.json()
    assert set(created) == {
        "uid", "name", "key", "description", "project", "createdAt", "createdBy",
        "updatedAt", "updatedBy", "__type",
    }  # fmt: skip
    assert created["__type"] == "CUSTOM"
    assert created["project"] == emulator.project_uid
    assert len(created["uid"]) == 24
    listed = mgmt.get("/attributes").json()
    assert isinstance(listed, list)
    assert created in listed
    r = mgmt.put(f"/attributes/{created['uid']}", json={"name": "Plan tier", "key": "plan"})
    assert r.status_code == 200
    assert r.json()["name"] == "Plan tier"
    assert r.json()["description"] == "tier"
    r = mgmt.delete(f"/attributes/{created['uid']}")
    assert r.status_code == 204
    assert r.content == b""
    assert mgmt.delete(f"/attributes/{created['uid']}").status_code == 404
    assert (
        mgmt.put(f"/attributes/{created['uid']}", json={"name": "x", "key": "x"}).status_code == 404
    )


@pytest.mark.parametrize(
    "body",
    [
        {"name": "No key"},
        {"name": "Bad", "key": "has space"},
        {"name": "Bad", "key": "x" * 101},
        {"name": "Preset", "key": "country"},
        {"name": "Preset", "key": "DEVICE_TYPE"},
        {"name": "Typed", "key": 3},
    ],
)
def test_attribute_key_validation(mgmt: httpx.Client, body: dict[str, Any]) -> None:
    r = mgmt.post("/attributes", json=body)
    assert r.status_code == 400
    assert list(r.json()["errors"]) == ["key"]
    assert isinstance(r.json()["errors"]["key"][0], str)


def test_attribute_name_required(mgmt: httpx.Client) -> None:
    r = mgmt.post("/attributes", json={"key": "plan"})
    assert r.status_code == 400
    assert "name" in r.json()["errors"]


def test_attribute_duplicate_key(mgmt: httpx.Client) -> None:
    assert mgmt.post("/attributes", json={"name": "Plan", "key": "plan"}).status_code == 201
    r = mgmt.post("/attributes", json={"name": "Plan 2", "key": "plan"})
    assert r.status_code == 409
    assert r.json()["error"] == "personalize.ATTRIBUTES.DUPLICATE_KEY"
    other = mgmt.post("/attributes", json={"name": "Other", "key": "other"}).json()
    r = mgmt.put(f"/attributes/{other['uid']}", json={"name": "Other", "key": "plan"})
    assert r.status_code == 409


def test_presets_are_read_only(mgmt: httpx.Client) -> None:
    assert mgmt.delete("/attributes/COUNTRY").status_code == 400
    r = mgmt.put("/attributes/COUNTRY", json={"name": "x", "key": "x"})
    assert r.status_code == 400
    assert r.json()["error"] == "personalize.ATTRIBUTES.PRESET_READ_ONLY"


def test_attribute_limit() -> None:
    emulator = PersonalizeEmulator(attribute_limit=2, management_rate_limit=None)
    with _client(emulator, authtoken=emulator.authtoken) as client:
        for key in ("a", "b"):
            assert client.post("/attributes", json={"name": key, "key": key}).status_code == 201
        r = client.post("/attributes", json={"name": "c", "key": "c"})
        assert r.status_code == 400
        assert r.json()["error"] == "personalize.ATTRIBUTES.LIMIT_EXCEEDED"


def test_bad_bodies(mgmt: httpx.Client) -> None:
    r = mgmt.post("/attributes", content=b"{oops", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"] == "personalize.INVALID_BODY"
    r = mgmt.post("/attributes", json=["list"])
    assert r.status_code == 400


# ----------------------------------------------------------------------------- audiences


def test_audience_crud_stores_definition_verbatim(
    mgmt: httpx.Client, emulator: PersonalizeEmulator
) -> None:
    plan = emulator.add_attribute("plan")
    definition = {
        "__type": "RuleCombination",
        "combinationType": "OR",
        "rules": [
            _rule(
                plan["uid"],
                "STRING_EQUALS",
                attributeMatchOptions={"__type": "StringMatchOptions", "value": "gold"},
                invertCondition=False,
            ),
            {
                "__type": "RuleCombination",
                "combinationType": "AND",
                "rules": [
                    {
                        "__type": "Rule",
                        "attribute": {"__type": "PresetAttributeReference", "ref": "COUNTRY"},
                        "attributeMatchCondition": "STRING_EQUALS",
                        "attributeMatchOptions": {"__type": "StringMatchOptions", "value": "NO"},
                    }
                ],
            },
        ],
    }
    r = mgmt.post("/audiences", json={"name": "Gold", "description": "", "definition": definition})
    assert r.status_code == 201
    audience = r.json()
    assert audience["definition"] == definition
    assert "source" not in audience
    assert mgmt.get("/audiences").json() == [audience]
    r = mgmt.put(f"/audiences/{audience['uid']}", json={"name": "Golden"})
    assert r.status_code == 200
    assert r.json()["definition"] == definition
    assert r.json()["name"] == "Golden"
    assert (
        mgmt.post("/audiences", json={"name": "Golden", "definition": definition}).status_code
        == 409
    )
    assert mgmt.delete(f"/audiences/{audience['uid']}").status_code == 204
    assert mgmt.get("/audiences").json() == []


@pytest.mark.parametrize(
    ("definition", "fragment"),
    [
        (None, "must be an object"),
        ({"__type": "RuleCombination", "combinationType": "XOR", "rules": []}, "AND or OR"),
        (_rule("0" * 24), "no custom attribute"),
        (_rule("COUNTRY"), "no custom attribute"),
        (
            {**_rule("x"), "attribute": {"__type": "PresetAttributeReference", "ref": "SHOE"}},
            "preset",
        ),
        ("PLAN", "must be an object"),
        ("UNKNOWN_CONDITION", "unknown condition"),
        ("NUMBER_AS_STRING", "NumberMatchOptions"),
        ("STRING_WITHOUT_OPTIONS", "StringMatchOptions"),
    ],
)
def test_audience_definition_validation(
    mgmt: httpx.Client, emulator: PersonalizeEmulator, definition: Any, fragment: str
) -> None:
    plan = emulator.add_attribute("plan")
    if definition == "PLAN":
        definition = {"__type": "RuleCombination", "combinationType": "AND", "rules": [3]}
    elif definition == "UNKNOWN_CONDITION":
        definition = _rule(plan["uid"], "SOUNDS_LIKE")
    elif definition == "NUMBER_AS_STRING":
        definition = _rule(
            plan["uid"],
            "NUMBER_GREATER_THAN",
            attributeMatchOptions={"__type": "NumberMatchOptions", "value": "7"},
        )
    elif definition == "STRING_WITHOUT_OPTIONS":
        definition = _rule(plan["uid"], "STRING_EQUALS")
    r = mgmt.post("/audiences", json={"name": "A", "definition": definition})
    assert r.status_code == 400
    assert any(fragment in message for message in r.json()["errors"]["definition"]), r.json()


def test_audience_needs_definition_and_name(mgmt: httpx.Client) -> None:
    r = mgmt.post("/audiences", json={"description": "x"})
    assert r.status_code == 400
    assert set(r.json()["errors"]) == {"name", "definition"}


def test_lytics_audiences_are_listed_and_read_only(
    mgmt: httpx.Client, emulator: PersonalizeEmulator
) -> None:
    lytics = emulator.add_lytics_audience("High intent")
    listed = mgmt.get("/audiences").json()
    assert listed == [lytics]
    assert lytics["source"] == "LYTICS"
    assert "definition" not in lytics
    r = mgmt.put(f"/audiences/{lytics['uid']}", json={"name": "x"})
    assert r.status_code == 400
    r = mgmt.post("/audiences", json={"name": "L", "source": "LYTICS", "definition": _rule("x")})
    assert r.status_code == 400
    assert "source" in r.json()["errors"]


def test_seeding_helper_validates_definitions(emulator: PersonalizeEmulator) -> None:
    with pytest.raises(ValueError, match="no custom attribute"):
        emulator.add_audience("bad", _rule("nope"))


# ----------------------------------------------------------------------------- events


def test_event_crud(mgmt: httpx.Client) -> None:
    r = mgmt.post("/events", json={"key": "clickCTA", "description": "CTA"})
    assert r.status_code == 201
    event = r.json()
    assert {"uid", "key", "description", "project", "createdAt"} <= set(event)
    assert mgmt.post("/events", json={"key": "clickCTA"}).json()["error"] == (
        "personalize.EVENTS.DUPLICATE_KEY"
    )
    assert mgmt.post("/events", json={"key": "bad key"}).status_code == 400
    r = mgmt.put(f"/events/{event['uid']}", json={"key": "click-cta"})
    assert r.status_code == 200
    assert r.json()["key"] == "click-cta"
    assert mgmt.get("/events").json()[0]["key"] == "click-cta"
    assert mgmt.delete(f"/events/{event['uid']}").status_code == 204
    assert mgmt.get("/events").json() == []


# ----------------------------------------------------------------------------- experiences


def test_experiences(mgmt: httpx.Client, emulator: PersonalizeEmulator) -> None:
    seeded = emulator.add_experience("Hero", variants=["0", "1"])
    r = mgmt.post("/experiences", json={"name": "Test", "__type": "AB_TEST"})
    assert r.status_code == 201
    created = r.json()
    assert created["__type"] == "AB_TEST"
    assert created["shortUid"] == "b"
    assert [e["uid"] for e in mgmt.get("/experiences").json()] == [seeded["uid"], created["uid"]]
    assert mgmt.get(f"/experiences/{seeded['uid']}").json() == seeded
    r = mgmt.put(f"/experiences/{created['uid']}", json={"name": "Renamed"})
    assert r.json()["name"] == "Renamed"
    assert mgmt.post("/experiences", json={"name": "X", "__type": "OTHER"}).status_code == 400
    assert mgmt.delete(f"/experiences/{created['uid']}").status_code == 204
    assert mgmt.get(f"/experiences/{created['uid']}").status_code == 404


def test_unknown_management_route(mgmt: httpx.Client) -> None:
    assert mgmt.get("/widgets").status_code == 404
    assert mgmt.get("/attributes/a/b").status_code == 404
    assert mgmt.patch("/attributes").status_code == 404


# ----------------------------------------------------------------------------- projects


def test_projects(emulator: PersonalizeEmulator) -> None:
    with httpx.Client(
        transport=emulator.transport(),
        base_url=MANAGEMENT,
        headers={"authtoken": emulator.authtoken, "organization_uid": emulator.organization_uid},
    ) as client:
        listed = client.get("/projects").json()
        assert [p["uid"] for p in listed] == [emulator.project_uid]
        r = client.post("/projects", json={"name": "Second", "description": "two"})
        assert r.status_code == 201
        second = r.json()
        assert second["organization"] == emulator.organization_uid
        assert client.get(f"/projects/{second['uid']}").json() == second
        assert client.get(f"/projects/{'0' * 24}").status_code == 404
        r = client.post("/projects", json={"name": "Second"})
        assert r.status_code == 409
        assert r.json()["error"] == "personalize.PROJECTS.DUPLICATE_NAME"
        assert client.post("/projects", json={"name": "Third"}).status_code == 201
        r = client.post("/projects", json={"name": "Fourth"})
        assert r.status_code == 400
        assert r.json()["error"] == "personalize.PROJECTS.LIMIT_EXCEEDED"
        assert client.post("/projects", json={}).status_code == 400
        # The new project works on the edge at once, with its presets.
        r = client.get(
            "https://personalize-edge.contentstack.com/manifest",
            headers={"x-project-uid": second["uid"]},
        )
        assert r.status_code == 200
        r = client.get("/projects", headers={"organization_uid": "0" * 24})
        assert r.status_code == 404


def test_projects_need_an_organization(emulator: PersonalizeEmulator) -> None:
    with httpx.Client(transport=emulator.transport(), base_url=MANAGEMENT) as client:
        r = client.get("/projects", headers={"authtoken": emulator.authtoken})
        assert r.status_code == 400
        emulator.add_oauth_token("scoped", organization_uid=emulator.organization_uid)
        r = client.get("/projects", headers={"authorization": "Bearer scoped"})
        assert r.status_code == 200


def test_uids_are_deterministic_from_the_seed() -> None:
    a, b, c = PersonalizeEmulator(seed=7), PersonalizeEmulator(seed=7), PersonalizeEmulator(seed=8)
    assert (a.organization_uid, a.project_uid, a.authtoken) == (
        b.organization_uid,
        b.project_uid,
        b.authtoken,
    )
    assert a.project_uid != c.project_uid
    assert a.add_attribute("x")["uid"] == b.add_attribute("x")["uid"]
    assert all(len(u) == 24 and int(u, 16) >= 0 for u in (a.organization_uid, a.project_uid))
