"""Error paths through the resources: typed errors with the API's code and field messages."""

from __future__ import annotations

import httpx
import pytest
import respx

from contentstack_personalize import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    RateLimitError,
    ServerError,
)

from .conftest import EDGE, MGMT, Api


async def test_unknown_project_on_edge(api: Api, router: respx.MockRouter) -> None:
    router.get(f"{EDGE}/manifest").respond(
        404,
        json={"error": "personalize.MANIFEST.PROJECT_NOT_FOUND", "message": "Project not found"},
    )
    with pytest.raises(NotFoundError) as info:
        await api.run(lambda c: c.users.manifest("u"))
    assert info.value.code == "personalize.MANIFEST.PROJECT_NOT_FOUND"
    assert info.value.status_code == 404


async def test_unknown_project_on_management(api: Api, router: respx.MockRouter) -> None:
    router.get(f"{MGMT}/attributes").respond(
        404,
        json={"error": "personalize.ATTRIBUTES.PROJECT_NOT_FOUND", "message": "Project not found"},
    )
    with pytest.raises(NotFoundError) as info:
        await api.run(lambda c: c.attributes.list())
    assert info.value.code == "personalize.ATTRIBUTES.PROJECT_NOT_FOUND"


async def test_unauthorized(api: Api, router: respx.MockRouter) -> None:
    route = router.get(f"{MGMT}/events").respond(
        401, json={"error": "personalize.AUTH.UNAUTHORIZED", "message": "The token has expired"}
    )
    with pytest.raises(AuthenticationError, match="expired"):
        await api.run(lambda c: c.events.list())
    assert route.call_count == 1  # 401 is not retried


async def test_rate_limit_is_retried_then_succeeds(api: Api, router: respx.MockRouter) -> None:
    route = router.get(f"{MGMT}/attributes")
    route.side_effect = [
        httpx.Response(
            429, json={"error": "personalize.TOO_MANY_REQUESTS"}, headers={"retry-after": "1"}
        ),
        httpx.Response(429, json={"error": "personalize.TOO_MANY_REQUESTS"}),
        httpx.Response(200, json=[]),
    ]
    assert await api.run(lambda c: c.attributes.list()) == []
    assert route.call_count == 3


async def test_rate_limit_gives_up(api: Api, router: respx.MockRouter) -> None:
    router.post(f"{EDGE}/events").respond(429, json={"error": "personalize.TOO_MANY_REQUESTS"})
    from contentstack_personalize.models import CustomEvent

    with pytest.raises(RateLimitError) as info:
        await api.run(lambda c: c.users.track("u", [CustomEvent("x")]))
    assert info.value.attempts == 5


async def test_server_error_retried(api: Api, router: respx.MockRouter) -> None:
    route = router.patch(f"{EDGE}/user-attributes")
    route.side_effect = [httpx.Response(502), httpx.Response(200, text="ok")]
    await api.run(lambda c: c.users.set_attributes("u", {"a": 1}))
    assert route.call_count == 2
    router.patch(f"{EDGE}/user-attributes").respond(500)
    with pytest.raises(ServerError):
        await api.run(lambda c: c.users.set_attributes("u", {"a": 1}))


async def test_validation_errors_carry_field_messages(api: Api, router: respx.MockRouter) -> None:
    router.post(f"{MGMT}/attributes").respond(
        400, json={"errors": {"name": ["name is required"], "key": ["key is too long"]}}
    )
    with pytest.raises(BadRequestError) as info:
        await api.run(lambda c: c.attributes.create(key="plan", name="Plan"))
    assert info.value.field_errors == {"name": ["name is required"], "key": ["key is too long"]}
    assert "key: key is too long" in str(info.value)


async def test_duplicate_is_a_conflict(api: Api, router: respx.MockRouter) -> None:
    router.post(f"{MGMT}/projects").respond(
        409, json={"error": "personalize.PROJECTS.DUPLICATE_NAME", "message": "exists"}
    )
    with pytest.raises(ConflictError) as info:
        await api.run(lambda c: c.projects.create(name="Storefront"))
    assert info.value.code == "personalize.PROJECTS.DUPLICATE_NAME"


async def test_unexpected_list_body(api: Api, router: respx.MockRouter) -> None:
    router.get(f"{MGMT}/events").respond(200, json={"a": 1})
    with pytest.raises(Exception, match="expected a JSON array"):
        await api.run(lambda c: c.events.list())
    router.get(f"{MGMT}/events").respond(200, json={"events": []})
    assert await api.run(lambda c: c.events.list()) == []
