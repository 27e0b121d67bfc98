"""The state protocol, in process: write-ahead of pending keys, unknown keys resent whatever the
source says, one run per sync under a lease, stops (SIGTERM, ``Sync.stop``), the recent-window
abort rule, destination binding, and state store failures that stop a run with a result."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from contentstack_personalize import (
    ConfigurationError,
    DestinationMismatchError,
    PersonalizeClient,
    RetryPolicy,
    StateStoreError,
    SyncAbortedError,
    SyncInProgressError,
)
from contentstack_personalize.sync import MemoryState, SQLiteState, Sync
from contentstack_personalize.sync._control import LockKeeper
from contentstack_personalize.testing import PersonalizeEmulator
from tests._invariants import assert_accounted
from tests.sync.conftest import make_client, patches

ROOT = Path(__file__).resolve().parents[2]


def plans(value: str, n: int = 3) -> list[dict[str, Any]]:
    return [{"user_id": f"u{i}", "plan": value} for i in range(n)]


def make_sync(client: Any, state: Any, **kwargs: Any) -> Sync:
    kwargs.setdefault("name", "users")
    return Sync(client, match_on="user_id", mapping={"plan": "plan"}, state=state, **kwargs)


# -- accepted, pending, unknown ---------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"timeout": 1.0, "applied_before_failure": 1.0},
        {"drop": 1.0, "applied_before_failure": 1.0},
        {"server_error": 1.0, "server_error_applied": 1.0},
    ],
    ids=["timeout", "drop", "5xx-after-work"],
)
def test_a_lost_answer_then_a_revert_is_sent_again(
    emulator: PersonalizeEmulator, tmp_path: Path, fault: dict[str, Any]
) -> None:
    with make_client(emulator, retry=RetryPolicy(sleep=False, max_attempts=2)) as client:
        sync = make_sync(client, tmp_path / "s.db", raise_on_abort=False)
        assert sync.run(plans("free")).added == 3
        emulator.set_faults(**fault)
        failed = sync.run(plans("gold"))
        assert failed.rejected == 3
        assert {a["plan"] for a in emulator.users().values()} == {"gold"}  # applied anyway
        store = sync.state.load("users", ["u0"])["u0"]
        assert store.unknown_keys == ["plan"] and store.accepted == {}
        emulator.clear_faults()
        result = sync.run(plans("free"))  # back to what the state last accepted
    # Counted as added: the state holds no acknowledged value for them any more.
    assert result.added == 3 and result.status == "succeeded"
    assert {a["plan"] for a in emulator.users().values()} == {"free"}


class _DiesOnCommit(MemoryState):
    """A store whose process 'dies' between the edge's answer and the commit."""

    die = False

    def commit(self, sync_name: str, accepted: Sequence[tuple[str, dict[str, Any]]]) -> None:
        if self.die:
            raise SystemExit("killed before the commit")
        super().commit(sync_name, accepted)


def test_a_kill_between_answer_and_commit_leaves_keys_unknown(
    client: PersonalizeClient, emulator: PersonalizeEmulator
) -> None:
    store = _DiesOnCommit()
    sync = make_sync(client, store)
    sync.run(plans("free"))
    store.die = True
    with pytest.raises(SystemExit):
        sync.run(plans("gold"))
    store.die = False
    assert all(s.unknown_keys == ["plan"] for s in store.load("users", ["u0", "u1"]).values())
    before = len(patches(emulator))
    result = sync.run(plans("free"))
    assert result.added == 3 and len(patches(emulator)) - before == 3
    assert {a["plan"] for a in emulator.users().values()} == {"free"}


def test_an_unknown_key_no_longer_mapped_does_not_make_users_change(
    client: PersonalizeClient,
) -> None:
    store = MemoryState()
    store.commit("users", [("u0", {"plan": '"free"', "old": None})])
    result = make_sync(client, store).run(plans("free", 1))
    assert result.unchanged == 1 and result.requests == 0


def test_pending_is_written_before_the_request_goes_out(emulator: PersonalizeEmulator) -> None:
    store = MemoryState()
    store.commit("users", [("u0", {"plan": '"free"'})])
    inner = emulator.transport()
    seen: list[dict[str, Any]] = []

    class Watching(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            uid = request.headers["x-cs-personalize-user-uid"]
            seen.append(dict(store.load("users", [uid])[uid].attrs))  # as the edge gets it
            return inner.handle_request(request)

    with PersonalizeClient(emulator.project_uid, transport=Watching(), read_env=False) as client:
        make_sync(client, store).run(plans("gold", 1))
    assert seen == [{"plan": None}]  # unknown while the request is out
    assert store.load("users", ["u0"])["u0"].attrs == {"plan": '"gold"'}


# -- one run per sync --------------------------------------------------------------------------


def _slow_rows(started: threading.Event, release: threading.Event) -> Iterator[dict[str, Any]]:
    yield {"user_id": "u0", "plan": "free"}
    started.set()
    release.wait(30)
    yield {"user_id": "u1", "plan": "free"}


def test_a_second_run_of_the_same_sync_fails_fast_naming_the_holder(
    emulator: PersonalizeEmulator, tmp_path: Path
) -> None:
    started, release = threading.Event(), threading.Event()
    with make_client(emulator) as a, make_client(emulator) as b:
        first = make_sync(a, tmp_path / "s.db")
        second = make_sync(b, tmp_path / "s.db")
        results: list[Any] = []
        thread = threading.Thread(
            target=lambda: results.append(first.run(_slow_rows(started, release)))
        )
        thread.start()
        assert started.wait(30)
        try:
            with pytest.raises(SyncInProgressError, match="already running") as caught:
                second.run(plans("gold"))
            assert caught.value.holder["pid"] == os.getpid()
            assert caught.value.holder["run_id"]
            assert second.history()[0].status == "running"  # the refused run left no record
        finally:
            release.set()
            thread.join()
        assert results[0].added == 2
        # With a lock_timeout, a second run waits for the first instead.
        started.clear()
        release.clear()
        waiter = make_sync(b, tmp_path / "s.db", lock_timeout=30)
        thread = threading.Thread(target=lambda: first.run(_slow_rows(started, release)))
        thread.start()
        assert started.wait(30)
        threading.Timer(0.3, release.set).start()
        waited = waiter.run(plans("gold"))
        assert (waited.changed, waited.added) == (2, 1)
        thread.join()
        first.close()
        second.close()
        waiter.close()
    assert {a["plan"] for a in emulator.users().values()} == {"gold"}


def test_reset_is_refused_while_a_run_holds_the_lock(
    client: PersonalizeClient, tmp_path: Path
) -> None:
    store = SQLiteState(tmp_path / "s.db")
    keeper = LockKeeper(store, "users", "other", ttl=60, on_lost=lambda r: None)
    keeper.acquire(0)
    try:
        with pytest.raises(SyncInProgressError):
            make_sync(client, store).reset()
    finally:
        keeper.release()
    make_sync(client, store).reset()


def test_a_lock_whose_holder_died_is_taken_over_at_once(
    client: PersonalizeClient, tmp_path: Path
) -> None:
    path = tmp_path / "s.db"
    code = (
        "import os, signal, sys\n"
        "from contentstack_personalize.sync import SQLiteState\n"
        "from contentstack_personalize.sync._control import LockKeeper\n"
        "k = LockKeeper(SQLiteState(sys.argv[1]), 'users', 'dead', ttl=3600, on_lost=print)\n"
        "k.acquire(0)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    held = sqlite3.connect(path).execute("SELECT holder, expires_at FROM locks").fetchone()
    assert json.loads(held[0])["run_id"] == "dead" and held[1] > time.time() + 3000
    result = make_sync(client, path).run(plans("free"))  # no wait for the hour-long lease
    assert result.added == 3


def test_an_expired_lease_of_another_host_is_taken_over(
    client: PersonalizeClient, tmp_path: Path
) -> None:
    store = SQLiteState(tmp_path / "s.db")
    holder = json.dumps({"host": "elsewhere", "pid": 1, "run_id": "r", "ns": ""})
    assert store.acquire_lock("users", holder, ttl=0.01) is None
    time.sleep(0.05)
    assert make_sync(client, store).run(plans("free")).added == 3
    # While the other host's lease is live, the run is refused.
    assert store.acquire_lock("users", holder, ttl=60) is None
    with pytest.raises(SyncInProgressError, match="elsewhere"):
        make_sync(client, store).run(plans("gold"))


def test_a_run_that_loses_its_lease_stops(
    emulator: PersonalizeEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("contentstack_personalize.sync._engine._LOCK_TTL", 0.2)
    store = MemoryState()
    emulator.set_faults(latency=0.02)
    with make_client(emulator) as client:
        sync = make_sync(client, store, concurrency=2, raise_on_abort=False)

        def steal() -> None:
            time.sleep(0.3)
            with store._lock:
                store._locks.clear()
            store.acquire_lock("users", "thief", ttl=60)

        thread = threading.Thread(target=steal)
        thread.start()
        result = sync.run(plans("free", 200))
        thread.join()
    assert result.status == "aborted" and "lost the sync's lock" in (result.error or "")
    assert result.not_sent > 0


# -- stopping ----------------------------------------------------------------------------------


def test_sync_stop_stops_gracefully_and_commits(emulator: PersonalizeEmulator) -> None:
    store = MemoryState()
    with make_client(emulator) as client:
        sync = make_sync(client, store, concurrency=4, raise_on_abort=False)
        seen = 0

        def stop_after_fifty(exchange: Any) -> None:
            nonlocal seen
            seen += 1
            if seen == 50:  # from another thread, in the middle of sending
                threading.Thread(target=sync.stop).start()

        client.add_exchange_hook(stop_after_fifty)
        result = sync.run(plans("free", 400))
    assert result.status == "aborted" and "Sync.stop()" in (result.error or "")
    assert 0 < result.added < 400
    assert result.added + result.not_sent == 400
    assert_accounted(result, read=400)
    accepted = [
        s for s in store.load("users", [f"u{i}" for i in range(400)]).values() if s.accepted
    ]
    assert len(accepted) == result.added == len(emulator.users())


def test_requests_still_in_flight_after_the_grace_period_are_cancelled(
    emulator: PersonalizeEmulator,
) -> None:
    emulator.set_faults(latency=30.0)  # nothing answers within the test
    store = MemoryState()
    with (
        emulator.serve() as server,
        PersonalizeClient(emulator.project_uid, edge_url=server.edge_url, read_env=False) as client,
    ):
        sync = make_sync(client, store, concurrency=4, stop_grace=0.05, raise_on_abort=False)
        threading.Timer(0.5, sync.stop).start()
        result = sync.run(plans("free", 50))
    assert result.status == "aborted"
    assert result.read == 50 == result.not_sent
    assert_accounted(result)
    cancelled = [i for i in result.rejected_rows if "cancelled in flight" in i.reason]
    assert len(cancelled) == 4  # the requests in flight, accounted and left unknown
    assert all(s.unknown_keys == ["plan"] for s in store.load("users", ["u0", "u1"]).values())


def test_a_host_applications_sigterm_handler_is_left_alone(client: PersonalizeClient) -> None:
    seen: list[Any] = []

    def mine(signum: int, frame: Any) -> None:
        pass

    def rows() -> Iterator[dict[str, Any]]:
        seen.append(signal.getsignal(signal.SIGTERM))
        yield {"user_id": "u0", "plan": "free"}

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        make_sync(client, MemoryState()).run(rows())
        assert seen == [mine]
    finally:
        signal.signal(signal.SIGTERM, previous)
    seen.clear()
    make_sync(client, MemoryState()).run(rows())
    assert seen[0] is not signal.SIG_DFL  # ours while the run goes...
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # ...and given back after


# -- when to give up ---------------------------------------------------------------------------


def test_a_late_outage_stops_on_a_recent_window(emulator: PersonalizeEmulator) -> None:
    n = 3000
    emulator.set_faults(fail_nth={k: 503 for k in range(2001, 20_000)})
    with make_client(emulator, retry=RetryPolicy(sleep=False, max_attempts=1)) as client:
        sync = make_sync(client, MemoryState(), concurrency=8, raise_on_abort=False)
        result = sync.run(plans("free", n))
    assert result.status == "aborted"
    assert "of the last 100 requests failed" in (result.error or "")
    # Judged on all requests since the start it would need ~2,000 failures; a window of 100
    # stops after about 50 failures (plus what was in flight).
    assert result.rejected <= 100 and result.requests <= 2000 + 100 + 3 * 8
    assert result.added == 2000


def test_a_refused_connection_stops_the_run_after_a_few_requests(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed when the block ends: nothing listens there
    url = f"http://127.0.0.1:{port}"
    with PersonalizeClient(
        "0123456789abcdef01234567",
        edge_url=url,
        read_env=False,
        retry=RetryPolicy(sleep=False, max_attempts=2),
    ) as client:
        sync = make_sync(client, MemoryState(), concurrency=4, raise_on_abort=False)
        result = sync.run(plans("free", 500))
    assert result.status == "aborted"
    assert f"cannot reach the Edge API at {url}: it refuses connections" in (result.error or "")
    assert result.requests <= 2 * 4  # the first wave of requests, not 500 failures
    assert result.read == 500 == result.rejected + result.not_sent
    assert_accounted(result)


# -- destination -------------------------------------------------------------------------------


def test_a_state_written_for_another_project_is_refused(
    emulator: PersonalizeEmulator, tmp_path: Path
) -> None:
    other = PersonalizeEmulator(seed=99)
    path = tmp_path / "s.db"
    with make_client(emulator) as staging, make_client(other) as production:
        make_sync(staging, path).run(plans("free"))
        moved = make_sync(production, path)
        with pytest.raises(DestinationMismatchError, match=r"another\s+name=") as caught:
            moved.run(plans("free"))
        assert caught.value.stored["project_uid"] == emulator.project_uid
        with pytest.raises(DestinationMismatchError):
            moved.plan(plans("free"))
        assert not other.users()
        moved.reset()
        assert moved.run(plans("free")).added == 3  # everything, to the new destination
    assert len(other.users()) == 3


def test_rebind_keeps_the_state_for_the_same_destination_at_a_new_url(
    emulator: PersonalizeEmulator, tmp_path: Path
) -> None:
    path = tmp_path / "s.db"
    with make_client(emulator) as client:
        make_sync(client, path).run(plans("free"))
    with make_client(emulator, edge_url="https://proxy.example/edge") as proxied:
        sync = make_sync(proxied, path)
        with pytest.raises(DestinationMismatchError, match="rebind"):
            sync.run(plans("free"))
        sync.rebind()
        assert sync.plan(plans("free")).unchanged == 3


# -- state store failures ----------------------------------------------------------------------


def test_empty_state_text_is_refused(client: PersonalizeClient) -> None:
    with pytest.raises(ConfigurationError, match="state is empty"):
        make_sync(client, "")
    with pytest.raises(ConfigurationError, match="empty"):
        SQLiteState("")


def test_a_refused_file_is_left_byte_for_byte_untouched(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE user_state (x TEXT)")
    db.execute("PRAGMA user_version=99")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(ConfigurationError, match="newer version"):
        SQLiteState(path)
    assert path.read_bytes() == before  # the WAL pragma never ran on it
    assert not Path(f"{path}-wal").exists()


def test_the_file_write_lock_held_elsewhere_times_out_and_frees_everything(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    store = SQLiteState(path, timeout=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    try:
        with pytest.raises(StateStoreError, match="write lock"):
            store.commit("s", [("u", {"a": "1"})])
        # Before the fix the store's own lock stayed taken and this call hung forever.
        done = threading.Event()

        def again() -> None:
            try:
                store.commit("s", [("u", {"a": "1"})])
            except StateStoreError:
                done.set()

        thread = threading.Thread(target=again, daemon=True)
        thread.start()
        thread.join(10)
        assert done.is_set(), "the store is stuck after a lock timeout"
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.commit("s", [("u", {"a": "1"})])
    assert store.load("s", ["u"])["u"].attrs == {"a": "1"}
    store.close()


def test_a_read_only_state_file_says_so(client: PersonalizeClient, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes to read-only files")
    path = tmp_path / "s.db"
    SQLiteState(path).close()
    path.chmod(0o444)
    with pytest.raises((ConfigurationError, StateStoreError), match=r"read-only|readonly"):
        make_sync(client, path).run(plans("free"))


def test_a_full_disk_mid_run_stops_the_run_with_a_result(tmp_path: Path) -> None:
    """RLIMIT_FSIZE stands in for a full disk: SQLite's writes fail with 'disk is full'."""
    emulator = PersonalizeEmulator(seed=3)
    with emulator.serve() as server:
        code = (
            "import resource, signal, sys, json\n"
            "from contentstack_personalize import PersonalizeClient, SyncAbortedError\n"
            "from contentstack_personalize.sync import Sync\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "client = PersonalizeClient(sys.argv[2], edge_url=sys.argv[3], read_env=False)\n"
            "sync = Sync(client, match_on='id', mapping={'blob': 'blob'}, state=sys.argv[1])\n"
            "sync.run([{'id': 'first', 'blob': 'x'}])\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))\n"
            "rows = [{'id': f'u{i}', 'blob': 'y' * 2000} for i in range(2000)]\n"
            "try:\n"
            "    sync.run(rows)\n"
            "except SyncAbortedError as exc:\n"
            "    r = exc.result\n"
            "    print(json.dumps({'status': r.status, 'error': r.error,\n"
            "                      'cause': type(exc.cause).__name__, 'added': r.added}))\n"
        )
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                code,
                str(tmp_path / "s.db"),
                emulator.project_uid,
                server.edge_url,
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["status"] == "aborted" and report["cause"] == "StateStoreError"
    assert "full" in report["error"] and "free space" in report["error"]
    # Whatever the store could not record stays unknown: a later run with room ends exact.
    with (
        emulator.serve() as server,
        PersonalizeClient(emulator.project_uid, edge_url=server.edge_url, read_env=False) as client,
    ):
        sync = Sync(client, match_on="id", mapping={"blob": "blob"}, state=tmp_path / "s.db")
        sync.rebind()  # the same emulator, served on a new port
        sync.run([{"id": f"u{i}", "blob": "y" * 2000} for i in range(2000)])
    assert len(emulator.users()) == 2001


def test_sqlite_errors_become_advice(tmp_path: Path) -> None:
    from contentstack_personalize.state._sqlite import _store_error

    path = tmp_path / "ro.db"
    SQLiteState(path).close()
    readonly = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as caught:
        readonly.execute("INSERT INTO sync_meta VALUES ('a', 'b', 'c')")
    readonly.close()
    assert "read-only" in str(_store_error(str(path), caught.value, 30))


def test_a_corrupted_page_stops_the_run_with_advice(
    client: PersonalizeClient, tmp_path: Path
) -> None:
    path = tmp_path / "s.db"
    sync = make_sync(client, path)
    sync.run(plans("free", 2000))
    sync.close()
    data = bytearray(path.read_bytes())
    for offset in range(4096 * 2, len(data), 4096 * 3):  # scribble over some pages
        data[offset : offset + 512] = b"\xa5" * 512
    path.write_bytes(bytes(data))
    with pytest.raises((SyncAbortedError, StateStoreError, ConfigurationError)) as caught:
        make_sync(client, path).run(plans("gold", 2000))
    text = str(caught.value) + str(
        getattr(caught.value, "result", None) and caught.value.result.error
    )
    assert "damaged" in text or "not a usable state store" in text
    assert "sqlite3" not in type(caught.value).__module__


async def test_sigterm_stops_every_run_going_in_the_loop(emulator: PersonalizeEmulator) -> None:
    """Two syncs run as tasks of one loop; one SIGTERM (really sent to this process) stops both
    gracefully, and SIGTERM's default action is back afterwards."""
    import asyncio

    emulator.set_faults(latency=0.05)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    with (
        emulator.serve() as server,
        PersonalizeClient(emulator.project_uid, edge_url=server.edge_url, read_env=False) as client,
    ):
        syncs = [make_sync(client, MemoryState(), name=f"s{i}", concurrency=2) for i in range(2)]
        runs = [asyncio.ensure_future(s.arun(plans("free", 300))) for s in syncs]
        await asyncio.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)
        outcomes = await asyncio.gather(*runs, return_exceptions=True)
    for outcome in outcomes:
        assert isinstance(outcome, SyncAbortedError), outcome
        assert outcome.result is not None and "SIGTERM" in (outcome.result.error or "")
        assert 0 < outcome.result.added < 300
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_lease_that_cannot_be_renewed_stops_the_run_before_it_expires() -> None:
    lost: list[str] = []

    class Flaky(MemoryState):
        def renew_lock(self, name: str, holder: str, ttl: float) -> bool:
            raise StateStoreError("the database went away")

    keeper = LockKeeper(Flaky(), "users", "r", ttl=0.4, on_lost=lost.append)
    keeper.acquire(0)
    deadline = time.monotonic() + 10
    while not lost and time.monotonic() < deadline:
        time.sleep(0.02)
    keeper.release()
    assert lost and "could not renew" in lost[0]


def test_a_stop_ends_the_wait_for_the_lock(client: PersonalizeClient, tmp_path: Path) -> None:
    store = SQLiteState(tmp_path / "s.db")
    other = LockKeeper(store, "users", "other", ttl=60, on_lost=lambda r: None)
    other.acquire(0)
    try:
        sync = make_sync(client, store, lock_timeout=60)
        threading.Timer(0.3, sync.stop).start()
        started = time.monotonic()
        with pytest.raises(SyncAbortedError, match="while waiting for its lock"):
            sync.run(plans("free"))
        assert time.monotonic() - started < 30  # not the whole lock_timeout
    finally:
        other.release()


def test_a_cancelled_wait_for_the_lock_leaves_it_free(
    client: PersonalizeClient, tmp_path: Path
) -> None:
    import asyncio

    store = SQLiteState(tmp_path / "s.db")
    other = LockKeeper(store, "users", "other", ttl=60, on_lost=lambda r: None)
    other.acquire(0)
    sync = make_sync(client, store, lock_timeout=60)

    async def impatient() -> None:
        await asyncio.wait_for(sync.arun(plans("free")), timeout=0.5)

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(impatient())
    other.release()
    time.sleep(0.2)  # an attempt still running when the loop closed has finished by now
    assert make_sync(client, store).run(plans("free")).added == 3


def test_dropped_answers_are_not_an_unreachable_edge(emulator: PersonalizeEmulator) -> None:
    emulator.set_faults(drop=1.0, applied_before_failure=1.0)
    with make_client(emulator, retry=RetryPolicy(sleep=False, max_attempts=1)) as client:
        result = make_sync(client, MemoryState(), raise_on_abort=False).run(plans("free", 10))
    assert result.rejected == 10 and "cannot reach" not in (result.error or "")


def test_a_host_handler_installed_after_a_threaded_run_is_kept(client: PersonalizeClient) -> None:
    def mine(signum: int, frame: Any) -> None:
        pass

    # A run on the main thread and one on another thread, the main one ending first.
    started, release = threading.Event(), threading.Event()
    side = make_sync(client, MemoryState(), name="side")
    thread = threading.Thread(target=lambda: side.run(_slow_rows(started, release)))
    main_sync = make_sync(client, MemoryState(), name="main")

    def rows_then_start_side() -> Iterator[dict[str, Any]]:
        thread.start()
        assert started.wait(30)
        yield {"user_id": "u9", "plan": "free"}

    main_sync.run(rows_then_start_side())
    release.set()
    thread.join()
    previous = signal.signal(signal.SIGTERM, mine)  # the host installs its own handler
    try:
        make_sync(client, MemoryState(), name="third").run(plans("free", 1))
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
