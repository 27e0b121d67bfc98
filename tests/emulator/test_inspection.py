"""The request log, inspection helpers, reset, the public surface and the pure core."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

import contentstack_personalize.testing as testing
from contentstack_personalize.testing import (
    EmulatorRequest,
    EmulatorTransport,
    PersonalizeEmulator,
    RecordedRequest,
)


def test_public_exports_are_sorted_and_importable() -> None:
    assert testing.__all__ == sorted(testing.__all__)
    for name in testing.__all__:
        assert hasattr(testing, name)


def test_transport_is_sync_and_async(emulator: PersonalizeEmulator) -> None:
    transport = emulator.transport()
    assert isinstance(transport, EmulatorTransport)
    assert isinstance(transport, httpx.BaseTransport)
    assert isinstance(transport, httpx.AsyncBaseTransport)


async def test_one_transport_object_serves_both_clients(emulator: PersonalizeEmulator) -> None:
    transport = emulator.transport()
    headers = {"x-project-uid": emulator.project_uid, "x-cs-personalize-user-uid": "u"}
    url = "http://emulator/edge/user-attributes"
    with httpx.Client(transport=transport) as client:
        assert client.patch(url, headers=headers, json={"a": 1}).status_code == 200  # noqa: ASYNC212
    async with httpx.AsyncClient(transport=transport) as aclient:
        assert (await aclient.patch(url, headers=headers, json={"b": 2})).status_code == 200
    assert emulator.user_attributes("u") == {"a": 1, "b": 2}


def test_request_log_and_count(edge: httpx.Client, emulator: PersonalizeEmulator) -> None:
    edge.patch(
        "/user-attributes", headers={"x-cs-personalize-user-uid": "u1"}, json={"plan": "gold"}
    )
    edge.get("/manifest", params={"tags[]": "home"})
    edge.post("/events", json=[])  # 400: no user
    log = emulator.requests
    assert len(log) == 3
    first = log[0]
    assert isinstance(first, RecordedRequest)
    assert (first.api, first.method, first.path, first.status) == (
        "edge",
        "PATCH",
        "/user-attributes",
        200,
    )
    assert first.user_uid == "u1"
    assert first.project_uid == emulator.project_uid
    assert first.json == {"plan": "gold"}
    assert first.fault is None and first.applied
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.status = 500  # type: ignore[misc]
    manifest = log[1]
    assert manifest.user_uid is not None  # the generated one
    assert manifest.query == (("tags[]", "home"),)
    assert manifest.json is None
    assert emulator.count() == 3
    assert emulator.count("edge") == 3
    assert emulator.count("edge", "patch", "/user-attributes") == 1
    assert emulator.count(path="/events", status=400) == 1
    assert emulator.count("management") == 0
    # The log is a snapshot.
    log.clear()
    assert emulator.count() == 3


def test_record_requests_off() -> None:
    emulator = PersonalizeEmulator(record_requests=False)
    emulator.request("GET", "/edge/manifest", headers={"x-project-uid": emulator.project_uid})
    assert emulator.requests == []
    assert emulator.count() == 0


def test_reset_keeps_configuration(emulator: PersonalizeEmulator) -> None:
    emulator.add_attribute("plan")
    emulator.add_oauth_token("tok")
    emulator.add_refresh_token("r")
    emulator.add_user("u1", {"plan": "gold"})
    emulator.set_faults(latency=1.0)
    emulator.request(
        "POST",
        "/edge/events",
        headers={"x-project-uid": emulator.project_uid, "x-cs-personalize-user-uid": "u1"},
        json=[{"type": "EVENT", "eventKey": "x"}],
    )
    emulator.request(
        "POST", "/developerhub/token", json={"grant_type": "refresh_token", "refresh_token": "r"}
    )
    project, org, token = emulator.project_uid, emulator.organization_uid, emulator.authtoken
    emulator.reset()
    assert emulator.users() == {}
    assert emulator.events_of("u1") == []
    assert emulator.requests == []
    assert emulator.faults is None
    assert emulator.token_refreshes == 0
    assert (emulator.project_uid, emulator.organization_uid, emulator.authtoken) == (
        project,
        org,
        token,
    )
    assert "plan" in [a["key"] for a in emulator.catalogue("attributes")]
    r = emulator.request(
        "GET",
        "/management/attributes",
        headers={"x-project-uid": project, "authorization": "Bearer tok"},
    )
    assert r.status == 200


def test_pure_core_without_http(emulator: PersonalizeEmulator) -> None:
    request = EmulatorRequest.build(
        "patch",
        "https://personalize-edge.contentstack.com/user-attributes?x=1&x=2",
        headers=[("X-Project-Uid", emulator.project_uid), ("X-CS-Personalize-User-Uid", "u")],
        json_body={"k": "v"},
    )
    assert request.method == "PATCH"
    assert request.query_all("x") == ["1", "2"]
    assert request.headers["x-project-uid"] == emulator.project_uid
    response = emulator.handle(request)
    assert response.status == 200
    assert response.text == "User Attributes added successfully"
    assert response.header("Content-Type") == "text/plain; charset=utf-8"
    assert response.failure is None and response.delay == 0
    emulator.set_faults(drop=1.0, applied_before_failure=0.0)
    dropped = emulator.handle(request)
    assert dropped.failure == "drop"


def test_inspection_copies_and_unknown_project(emulator: PersonalizeEmulator) -> None:
    emulator.add_user("u", {"tags": ["a"]})
    emulator.user_attributes("u")["tags"].append("b")
    assert emulator.user_attributes("u") == {"tags": ["a"]}
    assert emulator.user_attributes("nobody") == {}
    with pytest.raises(KeyError):
        emulator.users("0" * 24)
    with pytest.raises(KeyError):
        emulator.create_project("x", organization_uid="nope")


def test_thread_safety_of_shared_transport(emulator: PersonalizeEmulator) -> None:
    import threading

    transport = emulator.transport()
    headers = {"x-project-uid": emulator.project_uid}

    def work(n: int) -> None:
        with httpx.Client(transport=transport, base_url="http://e/edge") as client:
            for i in range(100):
                client.patch(
                    "/user-attributes",
                    headers={**headers, "x-cs-personalize-user-uid": "shared"},
                    json={f"k{n}": i},
                )

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert emulator.user_attributes("shared") == {f"k{n}": 99 for n in range(8)}
    assert emulator.count() == 800
