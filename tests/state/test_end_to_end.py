"""``Sync(..., state="postgresql://...")`` end to end: in process against the emulator, and with
the sync in its own process (killed, stopped, overlapped), the emulator served in another and
the database in a third.

What must hold, as with SQLite (tests/reliability/test_crashes.py): the store never claims a
value the edge may not hold, at most the stated number of users is left unknown after a kill,
the next clean run ends with the edge exactly equal to the source, and two runs of one sync never
overlap.
"""

from __future__ import annotations

import json
import random
import signal
import time
from typing import Any

import psycopg
import pytest

from contentstack_personalize import PersonalizeClient, RetryPolicy, SyncInProgressError
from contentstack_personalize.sync import Sync
from contentstack_personalize.testing import Faults, PersonalizeEmulator
from tests.reliability._crash_worker import MAPPING, SYNC_NAME, expected, rows
from tests.reliability.test_crashes import RESEND_BOUND, finish, patch_count, spawn, wait_for
from tests.state._pgserver import PostgresServer, postgres_server
from tests.sync.conftest import make_client, people

N = 2000


def test_a_postgres_url_adds_then_sends_nothing_then_only_changes(pg_url: str) -> None:
    emulator = PersonalizeEmulator(seed=3, management_rate_limit=None)
    mapping = {"plan": "plan", "ltv": "ltv"}
    with make_client(emulator) as client:
        with Sync(client, match_on="user_id", mapping=mapping, state=pg_url) as sync:
            first = sync.run(people(300))
            assert (first.added, first.status) == (300, "succeeded")
        # A new worker: a new Sync, a new connection, nothing on local disk.
        with Sync(client, match_on="user_id", mapping=mapping, state=pg_url) as sync:
            before = patch_count(emulator)
            again = sync.run(people(300))
            assert (again.added, again.changed, again.unchanged) == (0, 0, 300)
            assert patch_count(emulator) == before
            source = people(300)
            for row in source[:7]:
                row["ltv"] += 1
            third = sync.run(source)
            assert (third.changed, third.unchanged) == (7, 293)
            assert patch_count(emulator) == before + 7
            assert [r.status for r in sync.history()] == ["succeeded"] * 3
    assert emulator.users()["1"] == {"plan": "gold", "ltv": 11}


def test_reset_forgets_the_sync_and_waits_for_no_one(pg_url: str) -> None:
    emulator = PersonalizeEmulator(seed=5, management_rate_limit=None)
    mapping = {"plan": "plan"}
    with (
        make_client(emulator) as client,
        Sync(client, match_on="user_id", mapping=mapping, state=pg_url, name="a") as sync,
        Sync(client, match_on="user_id", mapping=mapping, state=pg_url, name="b") as other,
    ):
        sync.run(people(20))
        other.run(people(20))
        holder = json.dumps({"host": "elsewhere", "pid": 1, "run_id": "r"})
        assert sync.state.acquire_lock("a", holder, 60.0) is None
        with pytest.raises(SyncInProgressError):
            sync.reset()
        sync.state.release_lock("a", holder)
        sync.reset()
        assert sync.run(people(20)).added == 20  # everything again
        assert other.run(people(20)).unchanged == 20  # the other sync kept its state


def served_client(server: Any, emulator: PersonalizeEmulator) -> PersonalizeClient:
    return PersonalizeClient(
        emulator.project_uid,
        edge_url=server.edge_url,
        management_url=server.edge_url.rsplit("/", 1)[0] + "/management",
        retry=RetryPolicy(max_attempts=8, initial_delay=0.001, max_delay=0.01),
        read_env=False,
        timeout=10.0,
    )


def test_an_overlapping_run_in_another_process_is_refused(pg_url: str) -> None:
    emulator = PersonalizeEmulator(seed=4)
    # Slow answers keep the first run going (for at least 400 / 8 x 0.2 = 10 s) until the
    # overlap has been tried; then the faults are cleared and it finishes quickly.
    emulator.faults = Faults(latency=0.2, apply_to=("edge",))
    n = 400
    with emulator.serve() as server:
        proc = spawn("sync", server.edge_url, emulator.project_uid, pg_url, n, 0)
        try:
            wait_for(lambda: patch_count(emulator) >= 10, proc)
            assert proc.poll() is None, "the first run ended before the overlap was tried"
            with (
                served_client(server, emulator) as client,
                Sync(
                    client, match_on="user_id", mapping=MAPPING, state=pg_url, name=SYNC_NAME
                ) as sync,
            ):
                with pytest.raises(SyncInProgressError) as info:
                    sync.run(rows(n, 0))
                assert info.value.holder["pid"] == proc.pid
                emulator.faults = None
                code, report, err = finish(proc)
                assert code == 0, err
                assert report is not None and report["result"]["added"] == n
                # The first run released its lock: the next one goes, and has nothing to send.
                again = sync.run(rows(n, 0))
                assert again.unchanged == n
        finally:
            if proc.poll() is None:
                proc.kill()
    assert emulator.users() == expected(n, 0)


def settled(conn: Any) -> None:
    """Wait until no other session is left on the server: a killed client's last COMMIT may still
    be running in its backend (the server finishes it after the client is gone), and reading
    before it ends would undercount what the store holds."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        others = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND datname = current_database() AND backend_type = 'client backend'"
        ).fetchone()
        if not others or not others[0]:
            return
        time.sleep(0.05)
    raise AssertionError("the killed worker's sessions never ended")


def stored_users(url: str) -> tuple[dict[str, dict[str, Any]], int]:
    """``{uid: accepted attributes}`` in the store, and how many users have unknown keys."""
    base, _, query = url.partition("?schema=")
    with psycopg.connect(base, autocommit=True) as conn:
        settled(conn)
        found = conn.execute(
            f"SELECT uid, attrs::text FROM {query}.user_state WHERE sync_name = %s",
            (SYNC_NAME,),
        ).fetchall()
    out, unknown = {}, 0
    for uid, text in found:
        values = json.loads(text)
        unknown += None in values.values()
        accepted = {k: json.loads(v) for k, v in values.items() if v is not None}
        if accepted:
            out[uid] = accepted
    return out, unknown


def run_status(url: str) -> tuple[list[str], int]:
    base, _, schema = url.partition("?schema=")
    with psycopg.connect(base) as conn:
        statuses = [
            r[0] for r in conn.execute(f"SELECT status FROM {schema}.runs ORDER BY started_at")
        ]
        locks = conn.execute(f"SELECT count(*) FROM {schema}.locks").fetchone()
    return statuses, int(locks[0]) if locks else 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_then_rerun_ends_exact(pg_url: str, seed: int) -> None:
    rng = random.Random(seed)
    emulator = PersonalizeEmulator(seed=seed)
    # Odd seeds kill the very first run; even seeds an incremental one where every user changes.
    version = 0 if seed % 2 else 1
    with emulator.serve() as server:
        if version:
            code, _, err = finish(
                spawn("sync", server.edge_url, emulator.project_uid, pg_url, N, 0)
            )
            assert code == 0, err
        start = patch_count(emulator)
        kill_after = rng.randint(1, int(N * 0.9))
        proc = spawn("sync", server.edge_url, emulator.project_uid, pg_url, N, version)
        wait_for(lambda: patch_count(emulator) - start >= kill_after, proc)
        proc.send_signal(signal.SIGKILL)
        code, _, err = finish(proc)
        assert code == -signal.SIGKILL, f"the worker ended before the kill: {code} {err}"

        store, unknown = stored_users(pg_url)
        edge = emulator.users()
        for uid, attrs in store.items():
            assert {k: edge.get(uid, {}).get(k) for k in attrs} == attrs, uid
        assert unknown <= RESEND_BOUND
        current = expected(N, version)
        up_to_date = sum(1 for uid, attrs in store.items() if attrs == current[uid])
        statuses, locks = run_status(pg_url)
        assert statuses[-1] == "running" and locks == 1  # what a kill leaves

        # The dead holder's lease is taken over at once (same machine, its PID is gone).
        before = patch_count(emulator)
        code, report, err = finish(
            spawn("sync", server.edge_url, emulator.project_uid, pg_url, N, version)
        )
        assert code == 0, err
        assert report is not None
        result = report["result"]
        assert emulator.users() == current
        assert result["status"] == "succeeded" and result["unchanged"] == up_to_date
        assert patch_count(emulator) - before == N - up_to_date
        assert stored_users(pg_url) == (current, 0)
        statuses, locks = run_status(pg_url)
        assert statuses[-1] == "succeeded" and locks == 0


@pytest.mark.slow
def test_sigterm_stops_gracefully_and_the_next_run_finishes(pg_url: str) -> None:
    emulator = PersonalizeEmulator(seed=9)
    with emulator.serve() as server:
        proc = spawn("sync", server.edge_url, emulator.project_uid, pg_url, N, 0)
        wait_for(lambda: patch_count(emulator) >= N // 3, proc)
        proc.send_signal(signal.SIGTERM)
        code, report, err = finish(proc)
        assert code == 3, f"expected a graceful stop, got {code}: {err}"
        assert report is not None and report["result"]["status"] == "aborted"
        statuses, locks = run_status(pg_url)
        assert statuses == ["aborted"] and locks == 0  # recorded, and the lock released
        store, unknown = stored_users(pg_url)
        assert unknown <= RESEND_BOUND
        done = report["result"]["added"]
        assert len(store) >= done
        code, report, err = finish(
            spawn("sync", server.edge_url, emulator.project_uid, pg_url, N, 0)
        )
        assert code == 0, err
        assert emulator.users() == expected(N, 0)


@pytest.mark.slow
def test_the_database_crashing_mid_run_then_rerun_ends_exact(postgres: PostgresServer) -> None:
    """PostgreSQL itself crashes during a run (``pg_ctl stop -m immediate``): the run stops on
    the store's error; after the server's recovery the store still claims nothing the edge may
    not hold (acknowledgements commit asynchronously and may be lost: their keys stay pending),
    and the next run ends exact. Its own server (the session's ``postgres`` is only asked for
    so that the same skip rule applies), with PostgreSQL's durable settings."""
    with postgres_server(durable=True) as db:
        url = f"{db.url}?schema=crash"
        emulator = PersonalizeEmulator(seed=7)
        with emulator.serve() as server:
            code, _, err = finish(spawn("sync", server.edge_url, emulator.project_uid, url, N, 0))
            assert code == 0, err
            emulator.faults = Faults(latency=0.01, apply_to=("edge",))  # a run of >= 2.5 s
            start = patch_count(emulator)
            proc = spawn("sync", server.edge_url, emulator.project_uid, url, N, 1)
            wait_for(lambda: patch_count(emulator) - start >= N // 4, proc)
            db.crash()
            code, report, err = finish(proc)
            assert code == 3, f"expected the run to stop on the store's error: {code} {err}"
            assert report is not None and report["result"]["status"] == "aborted"
            assert "state store" in (report["result"].get("error") or "")
            db.start()
            emulator.faults = None

            store, _ = stored_users(url)
            edge = emulator.users()
            for uid, attrs in store.items():
                assert {k: edge.get(uid, {}).get(k) for k in attrs} == attrs, uid

            code, report, err = finish(
                spawn("sync", server.edge_url, emulator.project_uid, url, N, 1)
            )
            assert code == 0, err
            assert emulator.users() == expected(N, 1)
            assert stored_users(url) == (expected(N, 1), 0)
