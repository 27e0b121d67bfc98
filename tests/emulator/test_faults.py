"""Fault injection through the httpx transports (sync and async)."""

from __future__ import annotations

import time

import httpx
import pytest

from contentstack_personalize.testing import Faults, PersonalizeEmulator

EDGE = "https://personalize-edge.contentstack.com"
MANAGEMENT = "https://personalize-api.contentstack.com"


def _patch(client: httpx.Client, emulator: PersonalizeEmulator, uid: str, value: int) -> int:
    r = client.patch(
        f"{EDGE}/user-attributes",
        headers={"x-project-uid": emulator.project_uid, "x-cs-personalize-user-uid": uid},
        json={"n": value},
    )
    return r.status_code


def _outcomes(seed: int, n: int = 200) -> list[str]:
    emulator = PersonalizeEmulator(seed=seed)
    emulator.set_faults(server_error=0.1, rate_limit=0.1, timeout=0.1, drop=0.1)
    out = []
    with httpx.Client(transport=emulator.transport()) as client:
        for i in range(n):
            try:
                out.append(str(_patch(client, emulator, f"u{i}", i)))
            except httpx.ReadTimeout:
                out.append("timeout")
            except httpx.RemoteProtocolError:
                out.append("drop")
    return out


def test_same_seed_same_fault_sequence() -> None:
    a, b, c = _outcomes(1), _outcomes(1), _outcomes(2)
    assert a == b
    assert a != c
    counts = {k: a.count(k) for k in set(a)}
    assert set(counts) == {"200", "503", "429", "timeout", "drop"}
    assert 80 <= counts["200"] <= 160


def test_faults_seed_overrides_emulator_seed() -> None:
    e1, e2 = PersonalizeEmulator(seed=1), PersonalizeEmulator(seed=2)
    for e in (e1, e2):
        e.faults = Faults(server_error=0.5, seed=42)
    with httpx.Client(transport=e1.transport()) as c1, httpx.Client(transport=e2.transport()) as c2:
        s1 = [_patch(c1, e1, "u", i) for i in range(50)]
        s2 = [_patch(c2, e2, "u", i) for i in range(50)]
    assert s1 == s2


def test_injected_errors_are_not_applied(emulator: PersonalizeEmulator) -> None:
    emulator.set_faults(
        fail_nth={1: 500, 2: 429, 3: "server_error", 4: "rate_limit"}, retry_after=3
    )
    with httpx.Client(transport=emulator.transport()) as client:
        statuses = [_patch(client, emulator, f"u{i}", i) for i in range(5)]
        r = client.patch(
            f"{EDGE}/user-attributes",
            headers={"x-project-uid": emulator.project_uid, "x-cs-personalize-user-uid": "x"},
            json={},
        )
    assert statuses == [500, 429, 503, 429, 200]
    assert r.status_code == 200
    assert list(emulator.users()) == ["u4", "x"]
    log = emulator.requests
    assert [r.fault for r in log[:5]] == [
        "server_error",
        "rate_limit",
        "server_error",
        "rate_limit",
        None,
    ]
    assert [r.applied for r in log[:5]] == [False, False, False, False, True]


def test_rate_limit_fault_has_retry_after(emulator: PersonalizeEmulator) -> None:
    emulator.set_faults(rate_limit=1.0, retry_after=2.5)
    with httpx.Client(transport=emulator.transport()) as client:
        r = client.get(f"{EDGE}/manifest", headers={"x-project-uid": emulator.project_uid})
    assert r.status_code == 429
    assert r.headers["retry-after"] == "2.5"
    assert r.json()["error"] == "personalize.TOO_MANY_REQUESTS"


def test_server_error_status_is_configurable(emulator: PersonalizeEmulator) -> None:
    emulator.set_faults(server_error=1.0, server_error_status=502)
    with httpx.Client(transport=emulator.transport()) as client:
        assert _patch(client, emulator, "u", 1) == 502


def test_outage_and_apply_to(emulator: PersonalizeEmulator) -> None:
    emulator.set_faults(outage=True, apply_to={"management"})
    with httpx.Client(transport=emulator.transport()) as client:
        assert _patch(client, emulator, "u", 1) == 200
        r = client.get(
            f"{MANAGEMENT}/attributes",
            headers={"x-project-uid": emulator.project_uid, "authtoken": emulator.authtoken},
        )
        assert r.status_code == 503
        emulator.faults = Faults(outage=True)
        assert _patch(client, emulator, "u", 2) == 503
        emulator.clear_faults()
        assert _patch(client, emulator, "u", 3) == 200
    assert emulator.user_attributes("u") == {"n": 3}


def test_fail_nth_counts_only_affected_apis(emulator: PersonalizeEmulator) -> None:
    emulator.set_faults(fail_nth={2: 500}, apply_to={"edge"})
    with httpx.Client(transport=emulator.transport()) as client:
        client.get(
            f"{MANAGEMENT}/attributes",
            headers={"x-project-uid": emulator.project_uid, "authtoken": emulator.authtoken},
        )
        assert _patch(client, emulator, "u", 1) == 200
        assert _patch(client, emulator, "u", 2) == 500
        assert _patch(client, emulator, "u", 3) == 200
        # Setting faults again restarts the count.
        emulator.set_faults(fail_nth={1: 503})
        assert _patch(client, emulator, "u", 4) == 503


@pytest.mark.parametrize("applied", [0.0, 1.0])
def test_timeout_raises_read_timeout(emulator: PersonalizeEmulator, applied: float) -> None:
    emulator.set_faults(fail_nth={1: "timeout"}, applied_before_failure=applied)
    with httpx.Client(transport=emulator.transport()) as client, pytest.raises(httpx.ReadTimeout):
        _patch(client, emulator, "u", 1)
    assert emulator.user_attributes("u") == ({"n": 1} if applied else {})
    (record,) = emulator.requests
    assert (record.fault, record.status, record.applied) == ("timeout", None, bool(applied))


@pytest.mark.parametrize("applied", [0.0, 1.0])
def test_drop_raises_remote_protocol_error(emulator: PersonalizeEmulator, applied: float) -> None:
    emulator.set_faults(drop=1.0, applied_before_failure=applied)
    with (
        httpx.Client(transport=emulator.transport()) as client,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        _patch(client, emulator, "u", 1)
    assert emulator.user_attributes("u") == ({"n": 1} if applied else {})


def test_applied_before_failure_is_a_seeded_probability() -> None:
    def applied(seed: int) -> list[bool]:
        emulator = PersonalizeEmulator(seed=seed)
        emulator.set_faults(timeout=1.0, applied_before_failure=0.5)
        with httpx.Client(transport=emulator.transport()) as client:
            for i in range(100):
                with pytest.raises(httpx.ReadTimeout):
                    _patch(client, emulator, f"u{i}", i)
        return [r.applied for r in emulator.requests]

    first = applied(3)
    assert first == applied(3)
    assert 25 <= sum(first) <= 75


async def test_async_client_faults_and_latency(emulator: PersonalizeEmulator) -> None:
    emulator.set_faults(latency=0.05, fail_nth={2: "timeout", 3: "drop", 4: 503})
    headers = {"x-project-uid": emulator.project_uid, "x-cs-personalize-user-uid": "u"}
    async with httpx.AsyncClient(transport=emulator.async_transport()) as client:
        start = time.perf_counter()
        r = await client.patch(f"{EDGE}/user-attributes", headers=headers, json={"a": 1})
        assert time.perf_counter() - start >= 0.045
        assert r.status_code == 200
        with pytest.raises(httpx.ReadTimeout):
            await client.patch(f"{EDGE}/user-attributes", headers=headers, json={"a": 2})
        with pytest.raises(httpx.RemoteProtocolError):
            await client.patch(f"{EDGE}/user-attributes", headers=headers, json={"a": 3})
        r = await client.patch(f"{EDGE}/user-attributes", headers=headers, json={"a": 4})
        assert r.status_code == 503


def test_sync_latency_and_jitter(emulator: PersonalizeEmulator) -> None:
    emulator.set_faults(latency=0.02, jitter=0.02)
    with httpx.Client(transport=emulator.transport()) as client:
        start = time.perf_counter()
        for i in range(5):
            assert _patch(client, emulator, "u", i) == 200
        elapsed = time.perf_counter() - start
    assert 0.1 <= elapsed < 1.0


def test_faults_not_applied_to_login_apis_by_default(emulator: PersonalizeEmulator) -> None:
    emulator.set_faults(outage=True)
    emulator.add_user_login("a@b.c", "pw")
    with httpx.Client(transport=emulator.transport()) as client:
        r = client.post(
            "https://api.contentstack.io/v3/user-session",
            json={"user": {"email": "a@b.c", "password": "pw"}},
        )
    assert r.status_code == 200


@pytest.mark.parametrize(
    "kwargs",
    [
        {"server_error": 1.5},
        {"timeout": 0.6, "drop": 0.6},
        {"latency": -1},
        {"apply_to": {"edge", "mars"}},
        {"fail_nth": {0: 500}},
        {"fail_nth": {1: "explode"}},
        {"fail_nth": {1: 99}},
    ],
)
def test_faults_validate(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Faults(**kwargs)  # type: ignore[arg-type]


def test_set_faults_forms(emulator: PersonalizeEmulator) -> None:
    assert Faults().is_quiet and not Faults(latency=1).is_quiet
    faults = emulator.set_faults(drop=0.5)
    assert emulator.faults == faults == Faults(drop=0.5)
    with pytest.raises(TypeError):
        emulator.set_faults(Faults(), drop=0.1)
    assert emulator.set_faults() is None
    assert emulator.faults is None


def test_server_error_is_not_applied_by_default(emulator: PersonalizeEmulator) -> None:
    emulator.set_faults(fail_nth={1: 500, 2: "server_error"})
    with httpx.Client(transport=emulator.transport()) as client:
        assert [_patch(client, emulator, "u", i) for i in (1, 2)] == [500, 503]
    assert emulator.user_attributes("u") == {}
    assert [r.applied for r in emulator.requests] == [False, False]


@pytest.mark.parametrize(
    "faults",
    [
        Faults(server_error=1.0, server_error_applied=1.0),
        Faults(fail_nth={1: 502}, server_error_applied=1.0),
        Faults(fail_nth={1: "server_error"}, server_error_applied=1.0),
    ],
)
def test_server_error_after_the_work_was_applied(
    emulator: PersonalizeEmulator, faults: Faults
) -> None:
    emulator.faults = faults
    with httpx.Client(transport=emulator.transport()) as client:
        status = _patch(client, emulator, "u", 7)
    assert status >= 500
    assert emulator.user_attributes("u") == {"n": 7}
    (record,) = emulator.requests
    assert (record.fault, record.status, record.applied) == ("server_error", status, True)


def test_server_error_applied_spares_429_and_outage(emulator: PersonalizeEmulator) -> None:
    emulator.set_faults(fail_nth={1: 429, 2: 400}, server_error_applied=1.0)
    with httpx.Client(transport=emulator.transport()) as client:
        assert [_patch(client, emulator, "u", i) for i in (1, 2)] == [429, 400]
        emulator.set_faults(outage=True, server_error_applied=1.0)
        assert _patch(client, emulator, "u", 3) == 503
    assert emulator.user_attributes("u") == {}


def test_server_error_applied_rate_is_seeded() -> None:
    def applied(seed: int) -> list[bool]:
        emulator = PersonalizeEmulator(seed=seed)
        emulator.set_faults(server_error=1.0, server_error_applied=0.5)
        with httpx.Client(transport=emulator.transport()) as client:
            for i in range(100):
                _patch(client, emulator, f"u{i}", i)
        return [r.applied for r in emulator.requests]

    first = applied(3)
    assert first == applied(3)
    assert 20 < sum(first) < 80


def test_server_error_applied_is_a_probability() -> None:
    with pytest.raises(ValueError, match="server_error_applied"):
        Faults(server_error_applied=1.5)
