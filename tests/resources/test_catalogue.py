"""client.events, client.projects (organization-scoped) and client.experiences."""

from __future__ import annotations

import pytest
import respx

from contentstack_personalize import ConfigurationError, NotFoundError, ValidationError
from contentstack_personalize.models import Experience, Project

from .conftest import MGMT, ORG, PROJECT, Api, assert_management_headers, body_of, make_client

EVENT_UID = "6603a1b2c3d4e5f6a7b8c9d1"
EVENT = {
    "uid": EVENT_UID,
    "key": "clickCTA",
    "description": "Clicked",
    "project": PROJECT,
    "createdAt": "2024-05-01T10:00:00.000Z",
    "createdBy": "blt1",
    "updatedAt": "2024-05-01T10:00:00.000Z",
    "updatedBy": "blt1",
}
EXPERIENCE = {
    "uid": "6604a1b2c3d4e5f6a7b8c9d1",
    "name": "Homepage test",
    "description": "",
    "__type": "AB_TEST",
    "shortUid": "a",
    "status": "ACTIVE",
    "variants": [{"shortUid": "0"}, {"shortUid": "1"}],
    "project": PROJECT,
}
PROJECT_OBJ = {
    "uid": PROJECT,
    "name": "Storefront",
    "description": "",
    "organization": ORG,
    "createdAt": "2024-05-01T10:00:00.000Z",
    "createdBy": "blt1",
    "updatedAt": "2024-05-01T10:00:00.000Z",
    "updatedBy": "blt1",
}


async def test_events_crud(api: Api, router: respx.MockRouter) -> None:
    listing = router.get(f"{MGMT}/events").respond(200, json=[EVENT])
    events = await api.run(lambda c: c.events.list())
    assert_management_headers(listing.calls.last.request)
    assert events[0].key == "clickCTA" and events[0].to_api() == EVENT

    create = router.post(f"{MGMT}/events").respond(201, json=EVENT)
    await api.run(lambda c: c.events.create(key="clickCTA", description="Clicked"))
    assert body_of(create.calls.last.request) == {"key": "clickCTA", "description": "Clicked"}
    await api.run(lambda c: c.events.create(key="click-cta"))
    assert body_of(create.calls.last.request) == {"key": "click-cta"}

    put = router.put(f"{MGMT}/events/{EVENT_UID}").respond(
        200, json={**EVENT, "description": "Pressed"}
    )
    updated = await api.run(lambda c: c.events.update(EVENT_UID, description="Pressed"))
    assert body_of(put.calls.last.request) == {"key": "clickCTA", "description": "Pressed"}
    assert updated.description == "Pressed"

    delete = router.delete(f"{MGMT}/events/{EVENT_UID}").respond(204)
    await api.run(lambda c: c.events.delete(EVENT_UID))
    assert_management_headers(delete.calls.last.request)

    with pytest.raises(NotFoundError):
        await api.run(lambda c: c.events.get("missing"))


async def test_event_key_validation(api: Api, router: respx.MockRouter) -> None:
    create = router.post(f"{MGMT}/events")
    with pytest.raises(ValidationError, match="no spaces"):
        await api.run(lambda c: c.events.create(key="click cta"))
    assert not create.called


async def test_projects_are_organization_scoped(api: Api, router: respx.MockRouter) -> None:
    listing = router.get(f"{MGMT}/projects").respond(200, json=[PROJECT_OBJ])
    projects = await api.run(lambda c: c.projects.list())
    assert_management_headers(listing.calls.last.request, project=False)
    assert projects == [Project.from_api(PROJECT_OBJ)]
    assert projects[0].organization_uid == ORG
    assert projects[0].to_api() == PROJECT_OBJ

    create = router.post(f"{MGMT}/projects").respond(201, json=PROJECT_OBJ)
    created = await api.run(lambda c: c.projects.create(name="Storefront", description="Web"))
    assert_management_headers(create.calls.last.request, project=False)
    assert body_of(create.calls.last.request) == {"name": "Storefront", "description": "Web"}
    assert created.uid == PROJECT


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_projects_work_without_a_project(kind: str, router: respx.MockRouter) -> None:
    router.get(f"{MGMT}/projects").respond(200, json=[])
    wrapper = make_client(kind, project_uid=None)
    result = wrapper.projects.list()  # type: ignore[union-attr]
    if kind == "async":
        result = await result
        await wrapper.aclose()  # type: ignore[union-attr]
    assert result == []


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_projects_need_an_organization(kind: str, router: respx.MockRouter) -> None:
    route = router.get(f"{MGMT}/projects")
    client = make_client(kind, organization_uid=None)
    with pytest.raises(ConfigurationError, match="organization"):
        result = client.projects.list()  # type: ignore[union-attr]
        if kind == "async":
            await result
    assert not route.called


async def test_experiences(api: Api, router: respx.MockRouter) -> None:
    listing = router.get(f"{MGMT}/experiences").respond(200, json=[EXPERIENCE])
    experiences = await api.run(lambda c: c.experiences.list())
    assert_management_headers(listing.calls.last.request)
    exp = experiences[0]
    assert isinstance(exp, Experience)
    assert exp.is_ab_test and not exp.is_segmented
    assert exp.short_uid == "a" and exp.status == "ACTIVE"
    assert exp.extra == {"variants": [{"shortUid": "0"}, {"shortUid": "1"}]}
    assert exp.to_api() == EXPERIENCE

    one = router.get(f"{MGMT}/experiences/{EXPERIENCE['uid']}").respond(200, json=EXPERIENCE)
    got = await api.run(lambda c: c.experiences.get(EXPERIENCE["uid"]))
    assert_management_headers(one.calls.last.request)
    assert got == exp
