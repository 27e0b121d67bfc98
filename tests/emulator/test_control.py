"""The /_emulator inspection and control endpoints, over HTTP as another process would use them,
and the CLI flags that fix the uids and the authtoken."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from contentstack_personalize.testing import EmulatorServer, PersonalizeEmulator
from contentstack_personalize.testing.__main__ import build


@pytest.fixture
def served() -> Iterator[tuple[PersonalizeEmulator, EmulatorServer, httpx.Client]]:
    emulator = PersonalizeEmulator()
    with emulator.serve() as server, httpx.Client(base_url=server.url) as http:
        yield emulator, server, http


def _edge_patch(http: httpx.Client, emulator: PersonalizeEmulator, uid: str, body: Any) -> int:
    r = http.patch(
        "/edge/user-attributes",
        headers={"x-project-uid": emulator.project_uid, "x-cs-personalize-user-uid": uid},
        json=body,
    )
    return r.status_code


def _rule(attribute_uid: str) -> dict[str, Any]:
    return {
        "__type": "RuleCombination",
        "combinationType": "AND",
        "rules": [
            {
                "__type": "Rule",
                "attribute": {"__type": "CustomAttributeReference", "ref": attribute_uid},
                "attributeMatchCondition": "NUMBER_GREATER_THAN",
                "attributeMatchOptions": {"__type": "NumberMatchOptions", "value": 1000},
                "invertCondition": False,
            }
        ],
    }


def test_control_url(served: tuple[PersonalizeEmulator, EmulatorServer, httpx.Client]) -> None:
    _, server, _ = served
    assert server.control_url == f"{server.url}/_emulator"


def test_read_users_with_their_attributes(
    served: tuple[PersonalizeEmulator, EmulatorServer, httpx.Client],
) -> None:
    emulator, _, http = served
    assert _edge_patch(http, emulator, "u1", {"plan": "gold"}) == 200
    assert _edge_patch(http, emulator, "u2", {"ltv": 5}) == 200
    r = http.get("/_emulator/users")
    assert r.status_code == 200
    assert r.json() == {
        "project_uid": emulator.project_uid,
        "users": {"u1": {"plan": "gold"}, "u2": {"ltv": 5}},
    }
    http.post(
        "/edge/events",
        headers={"x-project-uid": emulator.project_uid, "x-cs-personalize-user-uid": "u1"},
        json=[{"type": "EVENT", "eventKey": "signup"}],
    )
    r = http.get("/_emulator/users/u1")
    assert r.json() == {
        "uid": "u1",
        "attributes": {"plan": "gold"},
        "events": [{"type": "EVENT", "eventKey": "signup"}],
    }
    assert http.get("/_emulator/events").json()["events"] == {
        "u1": [{"type": "EVENT", "eventKey": "signup"}]
    }
    r = http.get("/_emulator/users/nobody")
    assert r.status_code == 404
    assert r.json()["error"] == "emulator.NOT_FOUND"


def test_seed_and_remove_users(
    served: tuple[PersonalizeEmulator, EmulatorServer, httpx.Client],
) -> None:
    emulator, _, http = served
    r = http.put("/_emulator/users/u9", json={"plan": "gold"})
    assert r.status_code == 200
    assert r.json()["attributes"] == {"plan": "gold"}
    assert emulator.user_attributes("u9") == {"plan": "gold"}
    assert http.delete("/_emulator/users/u9").status_code == 204
    assert emulator.users() == {}
    r = http.put("/_emulator/users/u9", json=["not", "an", "object"])
    assert r.status_code == 400


def test_other_project_by_query(
    served: tuple[PersonalizeEmulator, EmulatorServer, httpx.Client],
) -> None:
    emulator, _, http = served
    other = emulator.create_project("Staging")
    emulator.add_user("s1", {"a": 1}, project_uid=other)
    r = http.get("/_emulator/users", params={"project_uid": other})
    assert r.json() == {"project_uid": other, "users": {"s1": {"a": 1}}}
    r = http.get("/_emulator/users", params={"project_uid": "nope"})
    assert r.status_code == 404
    assert "nope" in r.json()["message"]


def test_audience_membership_over_http(
    served: tuple[PersonalizeEmulator, EmulatorServer, httpx.Client],
) -> None:
    emulator, _, http = served
    r = http.post("/_emulator/attributes", json={"key": "ltv"})
    assert r.status_code == 201
    r = http.post(
        "/_emulator/audiences", json={"name": "Big", "definition": _rule(r.json()["uid"])}
    )
    assert r.status_code == 201
    big = r.json()["uid"]
    _edge_patch(http, emulator, "rich", {"ltv": 2500})
    _edge_patch(http, emulator, "text", {"ltv": "2500"})
    r = http.get(f"/_emulator/audiences/{big}/members")
    assert r.json() == {"audience": big, "members": ["rich"]}
    r = http.get("/_emulator/audiences/Big/members/text")
    assert r.json() == {"audience": "Big", "user_uid": "text", "member": False}
    assert http.get("/_emulator/audiences/Nope/members").status_code == 404


def test_seed_experience_and_event(
    served: tuple[PersonalizeEmulator, EmulatorServer, httpx.Client],
) -> None:
    emulator, _, http = served
    r = http.post("/_emulator/experiences", json={"name": "Hero", "variants": ["0", "1"]})
    assert r.status_code == 201
    assert r.json()["shortUid"] == "a"
    assert http.post("/_emulator/events", json={"key": "signup"}).status_code == 201
    assert [e["key"] for e in emulator.catalogue("events")] == ["signup"]
    r = http.post("/_emulator/experiences", json={"name": "X", "colour": "red"})
    assert r.status_code == 400
    assert "unknown arguments ['colour']" in r.json()["message"]
    r = http.post("/_emulator/experiences", json={"name": "X", "active_variant": "9"})
    assert r.status_code == 400
    r = http.post("/_emulator/events", json=["signup"])
    assert (r.status_code, r.json()["message"]) == (
        400,
        "the body must be a JSON object of arguments",
    )


def test_requests_log_is_readable_and_not_polluted_by_control(
    served: tuple[PersonalizeEmulator, EmulatorServer, httpx.Client],
) -> None:
    emulator, _, http = served
    _edge_patch(http, emulator, "u1", {"plan": "gold"})
    http.get("/_emulator/users")
    r = http.get("/_emulator/requests")
    body = r.json()
    assert body["recording"] is True
    (entry,) = body["requests"]
    assert entry == {
        "api": "edge",
        "method": "PATCH",
        "path": "/user-attributes",
        "query": [],
        "status": 200,
        "user_uid": "u1",
        "project_uid": emulator.project_uid,
        "body": '{"plan":"gold"}',
        "json": {"plan": "gold"},
        "fault": None,
        "applied": True,
    }


def test_faults_set_read_clear_and_never_hit_control(
    served: tuple[PersonalizeEmulator, EmulatorServer, httpx.Client],
) -> None:
    emulator, _, http = served
    r = http.put(
        "/_emulator/faults",
        json={"fail_nth": {"1": 503}, "server_error_applied": 1.0, "apply_to": ["edge"]},
    )
    assert r.status_code == 200
    faults = r.json()["faults"]
    assert faults["fail_nth"] == {"1": 503}
    assert faults["apply_to"] == ["edge"]
    assert http.get("/_emulator/faults").json()["faults"] == faults
    # An outage does not reach the control endpoints.
    http.put("/_emulator/faults", json={"outage": True, "apply_to": ["edge"]})
    assert http.get("/_emulator/users").status_code == 200
    assert _edge_patch(http, emulator, "u", {"a": 1}) == 503
    assert http.delete("/_emulator/faults").status_code == 204
    assert emulator.faults is None
    assert _edge_patch(http, emulator, "u", {"a": 2}) == 200


def test_fault_applied_5xx_over_http(
    served: tuple[PersonalizeEmulator, EmulatorServer, httpx.Client],
) -> None:
    emulator, _, http = served
    http.put("/_emulator/faults", json={"fail_nth": {"1": 503}, "server_error_applied": 1.0})
    assert _edge_patch(http, emulator, "u", {"a": 1}) == 503
    assert http.get("/_emulator/users").json()["users"] == {"u": {"a": 1}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"explode": 1}, "unknown Faults options ['explode']"),
        ({"server_error": 2}, "server_error must be between 0 and 1"),
        ({"fail_nth": {"x": 500}}, "fail_nth keys must be request numbers"),
        ([], "must be a JSON object"),
    ],
)
def test_bad_faults_are_400(
    served: tuple[PersonalizeEmulator, EmulatorServer, httpx.Client],
    body: Any,
    message: str,
) -> None:
    emulator, _, http = served
    r = http.put("/_emulator/faults", json=body)
    assert r.status_code == 400
    assert r.json()["error"] == "emulator.BAD_REQUEST"
    assert message in r.json()["message"]
    assert emulator.faults is None


def test_bad_json_is_400(served: tuple[PersonalizeEmulator, EmulatorServer, httpx.Client]) -> None:
    _, _, http = served
    r = http.put("/_emulator/faults", content=b"{nope")
    assert (r.status_code, r.json()["message"]) == (400, "the body is not valid JSON")


def test_reset(served: tuple[PersonalizeEmulator, EmulatorServer, httpx.Client]) -> None:
    emulator, _, http = served
    emulator.add_attribute("plan")
    _edge_patch(http, emulator, "u1", {"plan": "gold"})
    emulator.set_faults(latency=0.001)
    assert http.post("/_emulator/reset").status_code == 204
    assert emulator.users() == {} and emulator.requests == [] and emulator.faults is None
    assert [a["key"] for a in emulator.catalogue("attributes")][-1] == "plan"


def test_describe(served: tuple[PersonalizeEmulator, EmulatorServer, httpx.Client]) -> None:
    emulator, _, http = served
    info = http.get("/_emulator").json()
    assert info["project_uid"] == emulator.project_uid
    assert info["organization_uid"] == emulator.organization_uid
    assert info["switches"]["audience_matching"] == "strict"
    assert info["switches"]["content_type"] == "any"
    assert info["faults"] is None
    assert "authtoken" not in str(info).lower()


def test_unknown_control_endpoint_lists_the_known_ones(
    served: tuple[PersonalizeEmulator, EmulatorServer, httpx.Client],
) -> None:
    _, _, http = served
    r = http.get("/_emulator/nope")
    assert r.status_code == 404
    assert r.json()["error"] == "emulator.UNKNOWN_CONTROL"
    assert "GET /_emulator/users" in r.json()["message"]


def test_prefix_works_on_real_host_names_without_colliding(emulator: PersonalizeEmulator) -> None:
    emulator.add_user("u1", {"a": 1})
    with httpx.Client(transport=emulator.transport()) as http:
        r = http.get("https://personalize-edge.contentstack.com/_emulator/users")
        assert r.json()["users"] == {"u1": {"a": 1}}
        # The real APIs' paths are untouched.
        r = http.get(
            "https://personalize-edge.contentstack.com/manifest",
            headers={"x-project-uid": emulator.project_uid},
        )
        assert r.status_code == 200
    assert emulator.count() == 1


def test_cli_flags_fix_uids_and_switches() -> None:
    emulator, _ = build(
        [
            "--project-uid",
            "p" * 24,
            "--organization-uid",
            "o" * 24,
            "--authtoken",
            "blt-test-token",
            "--audience-matching",
            "lenient",
            "--content-type",
            "json",
        ]
    )
    assert (emulator.project_uid, emulator.organization_uid) == ("p" * 24, "o" * 24)
    assert emulator.authtoken == "blt-test-token"
    switches = emulator.describe()["switches"]
    assert (switches["audience_matching"], switches["content_type"]) == ("lenient", "json")
    r = emulator.request(
        "GET",
        "/management/attributes",
        headers={"x-project-uid": "p" * 24, "authtoken": "blt-test-token"},
    )
    assert r.status == 200


def test_fixed_uids_keep_the_other_uids() -> None:
    default, fixed = PersonalizeEmulator(), PersonalizeEmulator(project_uid="p1")
    assert default.add_attribute("x")["uid"] == fixed.add_attribute("x")["uid"]


def test_bad_uid_flag_exits_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build(["--authtoken", "has space"])
    assert "authtoken must be" in capsys.readouterr().err


def test_cli_process_is_inspectable_and_controllable() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "contentstack_personalize.testing",
            "--port",
            "0",
            "--project-uid",
            "proj1",
            "--record",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        control = ""
        for _ in range(12):
            line = proc.stdout.readline()
            if "control_url:" in line:
                control = line.split(": ", 1)[1].strip()
                break
        assert control.endswith("/_emulator")
        edge = control.removesuffix("/_emulator") + "/edge"
        with httpx.Client() as http:
            r = http.patch(
                f"{edge}/user-attributes",
                headers={"x-project-uid": "proj1", "x-cs-personalize-user-uid": "u"},
                content=b'{"plan": "gold"}',
            )
            assert r.status_code == 200
            assert http.get(f"{control}/users").json()["users"] == {"u": {"plan": "gold"}}
            assert len(http.get(f"{control}/requests").json()["requests"]) == 1
            assert http.post(f"{control}/reset").status_code == 204
            assert http.get(f"{control}/users").json()["users"] == {}
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
