"""client.users on the Edge API: exact requests, parsing, and local validation."""

from __future__ import annotations

import math

import httpx
import pytest
import respx

from contentstack_personalize import ValidationError
from contentstack_personalize.models import CustomEvent, Impression, Manifest, ManifestExperience

from .conftest import EDGE, Api, assert_edge_headers, body_of


async def test_set_attributes_sends_flat_patch_and_ignores_text_body(
    api: Api, router: respx.MockRouter
) -> None:
    route = router.patch(f"{EDGE}/user-attributes").respond(
        200, text="User Attributes added successfully", headers={"content-type": "text/plain"}
    )
    result = await api.run(
        lambda c: c.users.set_attributes("user-42", {"plan": "gold", "ltv": 1250.5, "vip": True})
    )
    assert result is None
    request = route.calls.last.request
    assert_edge_headers(request, user="user-42")
    assert request.headers["content-type"] == "application/json"
    assert body_of(request) == {"plan": "gold", "ltv": 1250.5, "vip": True}


@pytest.mark.parametrize(
    "body", [b"", b"not json {", b'{"ok": true}'], ids=["empty", "garbage", "json"]
)
async def test_set_attributes_any_2xx_is_success(
    api: Api, router: respx.MockRouter, body: bytes
) -> None:
    router.patch(f"{EDGE}/user-attributes").respond(202, content=body)
    assert await api.run(lambda c: c.users.set_attributes("u", {"a": 1})) is None


@pytest.mark.parametrize(
    ("uid", "message"),
    [
        ("bad\nuid", "control character"),
        ("", "empty"),
        (" padded", "whitespace"),
        ("caf\u00e9", "non-ASCII"),
        (42, "must be a string"),
    ],
)
async def test_bad_user_uid_is_refused_before_sending(
    api: Api, router: respx.MockRouter, uid: object, message: str
) -> None:
    route = router.patch(f"{EDGE}/user-attributes")
    with pytest.raises(ValidationError, match=message):
        await api.run(lambda c: c.users.set_attributes(uid, {"a": 1}))
    assert not route.called


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"": 1}, "empty"),
        ({"  ": 1}, "empty"),
        ({1: "x"}, "keys must be strings"),
        ({"ltv": math.nan}, r"ltv: nan \(float\) is not JSON-serialisable"),
        ({"when": object()}, r"when: <object object at .*> \(object\)"),
        ({"nested": {"deep": [1, math.inf]}}, r"nested\.deep\[1\]: inf"),
        (["plan"], "mapping"),
    ],
)
async def test_bad_attributes_are_refused_naming_the_value(
    api: Api, router: respx.MockRouter, attributes: object, message: str
) -> None:
    route = router.patch(f"{EDGE}/user-attributes")
    with pytest.raises(ValidationError, match=message):
        await api.run(lambda c: c.users.set_attributes("u", attributes))
    assert not route.called


async def test_merge_sends_only_project_header(api: Api, router: respx.MockRouter) -> None:
    route = router.post(f"{EDGE}/user-attributes/actions/merge").respond(
        200, text="User Attributes merged successfully"
    )
    await api.run(lambda c: c.users.merge(source_uid="anon-1", target_uid="user-42"))
    request = route.calls.last.request
    assert_edge_headers(request, user=None)
    assert body_of(request) == {"sourceUserUid": "anon-1", "targetUserUid": "user-42"}


async def test_merge_validates(api: Api, router: respx.MockRouter) -> None:
    route = router.post(f"{EDGE}/user-attributes/actions/merge")
    with pytest.raises(ValidationError, match="same user"):
        await api.run(lambda c: c.users.merge(source_uid="a", target_uid="a"))
    with pytest.raises(ValidationError, match="control character"):
        await api.run(lambda c: c.users.merge(source_uid="a\rb", target_uid="b"))
    assert not route.called


async def test_track_sends_typed_events_as_array(api: Api, router: respx.MockRouter) -> None:
    route = router.post(f"{EDGE}/events").respond(200, text="Events added successfully")
    events = [
        Impression(experience_short_uid="a", variant_short_uid="0"),
        CustomEvent("clickCTA"),
    ]
    await api.run(lambda c: c.users.track("user-42", events))
    request = route.calls.last.request
    assert_edge_headers(request, user="user-42")
    assert body_of(request) == [
        {"type": "IMPRESSION", "experienceShortUid": "a", "variantShortUid": "0"},
        {"type": "EVENT", "eventKey": "clickCTA"},
    ]


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([], "no events"),
        ((), "no events"),
        (CustomEvent("x"), r"pass \[event\]"),
        ([{"type": "EVENT", "eventKey": "x"}], r"events\[0\] is dict"),
        ("clickCTA", "list of Impression"),
    ],
)
async def test_track_validates(
    api: Api, router: respx.MockRouter, events: object, message: str
) -> None:
    route = router.post(f"{EDGE}/events")
    with pytest.raises(ValidationError, match=message):
        await api.run(lambda c: c.users.track("u", events))
    assert not route.called


def test_event_constructors_validate() -> None:
    with pytest.raises(ValidationError, match="event key"):
        CustomEvent("")
    with pytest.raises(ValidationError, match="variant_short_uid"):
        Impression(experience_short_uid="a", variant_short_uid="")


async def test_manifest_with_user_and_tags(api: Api, router: respx.MockRouter) -> None:
    route = router.get(f"{EDGE}/manifest").respond(
        200,
        json={
            "experiences": [
                {"shortUid": "b", "activeVariantShortUid": "1"},
                {"shortUid": "a", "activeVariantShortUid": None},
            ]
        },
        headers={"x-cs-personalize-user-uid": "user-42"},
    )
    manifest = await api.run(lambda c: c.users.manifest("user-42", tags=["home", "sale"]))
    request = route.calls.last.request
    assert_edge_headers(request, user="user-42")
    assert request.url.params.get_list("tags[]") == ["home", "sale"]
    assert str(request.url).startswith(f"{EDGE}/manifest?tags%5B%5D=home&tags%5B%5D=sale")
    assert manifest == Manifest(
        user_uid="user-42",
        experiences=(
            ManifestExperience(short_uid="b", active_variant_short_uid="1"),
            ManifestExperience(short_uid="a", active_variant_short_uid=None),
        ),
    )
    assert manifest.variant_aliases == ["cs_personalize_b_1"]
    assert manifest.variant_for("a") is None
    assert manifest.variant_for("b") == "1"


async def test_manifest_anonymous_takes_the_generated_uid(
    api: Api, router: respx.MockRouter
) -> None:
    route = router.get(f"{EDGE}/manifest").respond(
        200, json={"experiences": []}, headers={"x-cs-personalize-user-uid": "generated-uuid"}
    )
    manifest = await api.run(lambda c: c.users.manifest())
    request = route.calls.last.request
    assert_edge_headers(request, user=None)
    assert request.url.query == b""
    assert manifest.user_uid == "generated-uuid"
    assert manifest.experiences == ()


async def test_manifest_falls_back_to_the_uid_sent(api: Api, router: respx.MockRouter) -> None:
    router.get(f"{EDGE}/manifest").respond(200, json={"experiences": [], "new": 1})
    manifest = await api.run(lambda c: c.users.manifest("u1"))
    assert manifest.user_uid == "u1"
    assert manifest.to_api() == {"experiences": [], "new": 1}


async def test_manifest_tag_limits(api: Api, router: respx.MockRouter) -> None:
    route = router.get(f"{EDGE}/manifest").respond(200, json={"experiences": []})
    await api.run(lambda c: c.users.manifest("u", tags=[f"t{i}" for i in range(10)]))
    assert route.call_count == 1
    with pytest.raises(ValidationError, match="at most 10 tags"):
        await api.run(lambda c: c.users.manifest("u", tags=[f"t{i}" for i in range(11)]))
    with pytest.raises(ValidationError, match="not one string"):
        await api.run(lambda c: c.users.manifest("u", tags="home"))
    assert route.call_count == 1


async def test_manifest_unreadable_body_is_an_error(api: Api, router: respx.MockRouter) -> None:
    router.get(f"{EDGE}/manifest").respond(200, text="<html>oops</html>")
    with pytest.raises(Exception, match="unexpected response"):
        await api.run(lambda c: c.users.manifest("u"))


async def test_edge_calls_need_no_management_auth(router: respx.MockRouter) -> None:
    from .conftest import make_client

    route = router.patch(f"{EDGE}/user-attributes").respond(200, text="ok")
    client = make_client("sync", auth=None)
    client.users.set_attributes("u", {"a": 1})  # type: ignore[union-attr]
    assert "authtoken" not in route.calls.last.request.headers
    assert isinstance(route.calls.last.response, httpx.Response)
