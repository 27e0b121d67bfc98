"""End-to-end syncs through an emulator that fails on purpose.

Every fault the issue names at once (5% server errors, 2% 429 with Retry-After, 1% dropped
connections, 1% timeouts, half of which the server applied before the answer got lost) over
10,000+ users. What must hold at the end: every valid row's attributes in the emulator equal the
source, the counts of every run add up to the rows read, and an unchanged user costs no request.
A total outage in the middle of a run aborts it cleanly and the next run finishes the job.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from contentstack_personalize import RetryPolicy, SyncAbortedError
from contentstack_personalize.sync import MemoryState, SQLiteState, Sync, SyncResult
from contentstack_personalize.testing import PersonalizeEmulator
from tests._invariants import assert_accounted
from tests.sync.conftest import make_async_client, make_client

# Six attempts: P(one request fails six times at a 9% fault rate) ~ 5e-7, so a rerun is rarely
# needed; the tests still loop until nothing is left, which is what a user's scheduler does.
RETRY = RetryPolicy(sleep=False, max_attempts=6)
MIXED: dict[str, Any] = {
    "server_error": 0.05,
    "rate_limit": 0.02,
    "retry_after": 0.01,
    "drop": 0.01,
    "timeout": 0.01,
    "applied_before_failure": 0.5,
}
N_USERS = 10_000


def source(n: int, *, version: int = 0) -> list[dict[str, Any]]:
    """``n`` valid rows plus the messy ones a real table has (bad and duplicate UIDs)."""
    rows: list[dict[str, Any]] = [
        {
            "user_id": f"user-{i}",
            "plan": ["free", "silver", "gold"][(i + version) % 3],
            "ltv": i * 10 + (version if i % 10 == 0 else 0),
            "tags": [f"t{i % 7}", "x"],
        }
        for i in range(n)
    ]
    rows += [
        {"user_id": None, "plan": "gold", "ltv": 1, "tags": []},
        {"user_id": "", "plan": "gold", "ltv": 1, "tags": []},
        {"user_id": "bad\nuid", "plan": "gold", "ltv": 1, "tags": []},
        {"user_id": "dup-1", "plan": "gold", "ltv": 1, "tags": []},
        {"user_id": "dup-1", "plan": "free", "ltv": 2, "tags": []},
        {"user_id": "nan-ltv", "plan": "gold", "ltv": float("inf"), "tags": []},
    ]
    return rows


BAD_ROWS = 6  # rows of ``source`` that can never be sent


def expected(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """What the emulator must hold for ``rows`` (only users with a usable, unique UID)."""
    out = {}
    for row in rows:
        uid = row["user_id"]
        if isinstance(uid, str) and uid.startswith("user-"):
            out[uid] = {"plan": row["plan"], "ltv": row["ltv"], "tags": row["tags"]}
    return out


def run_until_done(sync: Sync, rows: list[dict[str, Any]], limit: int = 4) -> list[SyncResult]:
    """Run like a scheduler would until a run leaves nothing rejected."""
    results = []
    for _ in range(limit):
        result = sync.run(rows)
        assert_accounted(result)
        assert result.read == len(rows)
        results.append(result)
        if not result.rejected and not result.not_sent:
            return results
    raise AssertionError(f"still failing after {limit} runs: {results[-1].summary()}")


def edge_patches(emulator: PersonalizeEmulator, since: int = 0) -> list[tuple[str, dict[str, Any]]]:
    return [
        (r.user_uid or "", json.loads(r.body))
        for r in emulator.requests[since:]
        if r.api == "edge" and r.method == "PATCH" and r.path == "/user-attributes"
    ]


@pytest.mark.slow
def test_mixed_faults_over_ten_thousand_users_end_exact(tmp_path: Any) -> None:
    emulator = PersonalizeEmulator(seed=7)
    emulator.set_faults(seed=11, **MIXED)
    rows = source(N_USERS)
    with (
        make_client(emulator, retry=RETRY) as client,
        Sync(
            client,
            match_on="user_id",
            mapping={"plan": "plan", "ltv": "ltv", "tags": "tags"},
            state=SQLiteState(tmp_path / "state.db"),
            concurrency=64,
        ) as sync,
    ):
        first = run_until_done(sync, rows)
        assert first[0].invalid == BAD_ROWS
        assert first[0].requests >= N_USERS  # retries are counted per user, not per attempt
        faults = {r.fault for r in emulator.requests}
        assert {"server_error", "rate_limit", "drop", "timeout"} <= faults
        assert emulator.users() == expected(rows)
        assert sum(r.added for r in first) == N_USERS

        # Second run: a tenth of the users changed, one in ten thousand is new; the faults go on.
        before = len(emulator.requests)
        changed_rows = source(N_USERS, version=1)
        changed_rows.append({"user_id": f"user-{N_USERS}", "plan": "new", "ltv": 0, "tags": []})
        old = expected(rows)
        new = expected(changed_rows)
        must_change = {uid for uid, attrs in new.items() if old.get(uid) != attrs}
        second = run_until_done(sync, changed_rows)

        assert emulator.users() == new
        sent_to = {uid for uid, _ in edge_patches(emulator, before)}
        assert sent_to == must_change  # nothing sent for an unchanged user, even on retries
        for uid, body in edge_patches(emulator, before):
            # Only the changed attributes travel, and always the new values.
            assert body == {k: v for k, v in new[uid].items() if old.get(uid, {}).get(k) != v}
        assert second[0].unchanged == N_USERS - (len(must_change) - 1)
        assert sum(r.added for r in second) == 1

        # Third run, same rows: no request at all.
        emulator.clear_faults()
        before = len(emulator.requests)
        third = sync.run(changed_rows)
        assert third.requests == 0 and len(emulator.requests) == before
        assert third.unchanged == N_USERS + 1
        assert_accounted(third)


async def test_mixed_faults_async_client_and_memory_state() -> None:
    emulator = PersonalizeEmulator(seed=3)
    emulator.set_faults(seed=5, **MIXED)
    rows = source(2_000)
    async with make_async_client(emulator, retry=RETRY) as client:
        sync = Sync(
            client,
            match_on="user_id",
            mapping={"plan": "plan", "ltv": "ltv", "tags": "tags"},
            state=MemoryState(),
            concurrency=32,
        )
        for _ in range(4):
            result = await sync.arun(rows)
            assert_accounted(result)
            if not result.rejected:
                break
        assert emulator.users() == expected(rows)
        before = len(emulator.requests)
        again = await sync.arun(rows)
        assert again.requests == 0 and len(emulator.requests) == before


def test_rate_limited_run_with_real_sleeps_ends_exact() -> None:
    """With sleeping on (as in production), 429 + Retry-After answers still end exact."""
    emulator = PersonalizeEmulator(seed=9)
    emulator.set_faults(rate_limit=0.3, retry_after=0.001, server_error=0.05, seed=2)
    retry_after: list[str] = []
    policy = RetryPolicy(max_attempts=12, initial_delay=0.001, max_delay=0.002)
    with make_client(emulator, retry=policy) as client:
        client.add_exchange_hook(
            lambda ex: (
                retry_after.append(ex.response_headers.get("retry-after", ""))
                if ex.status == 429
                else None
            )
        )
        sync = Sync(client, match_on="user_id", mapping={"plan": "plan"}, concurrency=16)
        rows = [{"user_id": f"u{i}", "plan": "gold"} for i in range(300)]
        result = sync.run(rows)
    assert result.status == "succeeded" and result.added == 300
    assert len(retry_after) > 30 and set(retry_after) == {"0.001"}
    assert emulator.users() == {f"u{i}": {"plan": "gold"} for i in range(300)}


@pytest.mark.slow
def test_total_outage_mid_run_aborts_cleanly_and_next_run_finishes(tmp_path: Any) -> None:
    emulator = PersonalizeEmulator(seed=4)
    n = 3_000
    rows = source(n)
    # Everything from the 400th edge request on answers 503: a total outage mid-run.
    emulator.set_faults(fail_nth={k: 503 for k in range(400, 40_000)})
    state_path = tmp_path / "state.db"
    with make_client(emulator, retry=RetryPolicy(sleep=False, max_attempts=3)) as client:
        sync = Sync(
            client,
            match_on="user_id",
            mapping={"plan": "plan", "ltv": "ltv", "tags": "tags"},
            state=state_path,
            concurrency=16,
            commit_every=50,
        )
        with pytest.raises(SyncAbortedError) as caught:
            sync.run(rows)
        aborted = caught.value.result
        assert aborted is not None and aborted.status == "aborted"
        assert "503" in (aborted.error or "") or "failed" in (aborted.error or "")
        assert_accounted(aborted)
        assert aborted.not_sent > 0  # it stopped instead of failing every row one by one
        assert aborted.requests < n
        assert aborted.added == len(emulator.users())  # exactly what the edge accepted
        history = sync.history()
        assert history[0].status == "aborted"
        sync.close()

        # The state on disk says synced only for users the edge holds, with their values.
        store = SQLiteState(state_path)
        want = expected(rows)
        held = store.load(sync.name, list(want))
        synced = {uid for uid, st in held.items() if st.accepted}  # unknown keys claim nothing
        assert synced == set(emulator.users())
        store.close()

        emulator.clear_faults()
        before = len(emulator.requests)
        with Sync(
            client,
            match_on="user_id",
            mapping={"plan": "plan", "ltv": "ltv", "tags": "tags"},
            state=state_path,
        ) as resumed:
            result = resumed.run(rows)
        assert result.status == "succeeded"
        assert_accounted(result)
        assert emulator.users() == want
        resent = {uid for uid, _ in edge_patches(emulator, before)}
        assert resent.isdisjoint(synced)  # what the edge acknowledged is not sent again
        assert result.unchanged == len(synced)
        assert result.added == n - len(synced)
