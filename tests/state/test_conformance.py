"""One suite, every store: MemoryState, SQLiteState and PostgresState must behave the same for
everything the sync engine relies on (docs/guarantees.md, docs/state.md).

``opened`` gives a store; ``reopen()`` gives another object on the same storage (another
process would see the same: for SQLite the same file, for PostgreSQL the same schema; for memory
the same object, since memory is not shared).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from contentstack_personalize import ConfigurationError
from contentstack_personalize._values import canonical
from contentstack_personalize.state import ChangeEntry, ChangeLogStore, open_state
from contentstack_personalize.state.postgres import PostgresState
from contentstack_personalize.sync import (
    ExchangeStore,
    MemoryState,
    RunRecord,
    SQLiteState,
    StateStore,
    Sync,
)

Opener = Callable[[], Any]

PERSISTENT = ["sqlite", "postgres"]


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def reopen(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Opener]:
    opened: list[Any] = []
    memory = MemoryState()

    def make() -> Any:
        if kind == "memory":
            return memory
        if kind == "sqlite":
            store: Any = SQLiteState(tmp_path / "state.db")
        else:
            store = PostgresState(request.getfixturevalue("pg_url"))
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(reopen: Opener) -> Any:
    return reopen()


def attrs(**values: Any) -> dict[str, str | None]:
    """Canonical JSON per key; ``None`` stays unknown."""
    return {k: (None if v is None else json.dumps(v)) for k, v in values.items()}


# ---------------------------------------------------------------------------------------------
# The protocol
# ---------------------------------------------------------------------------------------------


def test_every_store_implements_the_protocols(store: Any) -> None:
    assert isinstance(store, StateStore)
    assert isinstance(store, ExchangeStore)


def test_unseen_users_are_absent(store: Any) -> None:
    assert store.load("s", []) == {}
    assert store.load("s", ["nobody"]) == {}
    assert store.user_count("s") == 0


def test_pending_keys_are_unknown_until_committed(store: Any) -> None:
    store.commit("s", [("u1", attrs(plan="gold", ltv=10))])
    # Write-ahead of a change to "plan": the old value is no longer claimed.
    store.mark_pending("s", [("u1", {**attrs(ltv=10), "plan": None}), ("u2", attrs(plan=None))])
    loaded = store.load("s", ["u1", "u2"])
    assert loaded["u1"].attrs == {"plan": None, "ltv": "10"}
    assert loaded["u1"].unknown_keys == ["plan"]
    assert loaded["u1"].accepted == {"ltv": "10"}
    assert loaded["u2"].unknown_keys == ["plan"]
    # The acknowledgement makes it accepted.
    store.commit("s", [("u1", attrs(plan="silver", ltv=10))])
    assert store.load("s", ["u1"])["u1"].attrs == attrs(plan="silver", ltv=10)
    assert store.load("s", ["u1"])["u1"].unknown_keys == []


def test_values_round_trip_exactly(store: Any) -> None:
    odd = {
        "text": json.dumps("naïve 😀 \u0000-free \\ \" '"),
        "big": "12345678901234567890",
        "float": "0.1",
        "list": '["a",1,null]',
        "obj": '{"b":1,"a":2}',
        "null": "null",
        "gone": None,
    }
    uid = "user ünicode/'quote\"+%\\back{,}NULL"
    plain = "a,b{c} d"  # nothing to escape, but separators of an array literal
    store.commit("s", [(uid, odd), ("NULL", odd), (plain, odd)])
    assert store.load("s", [uid, "NULL"])[uid].attrs == odd
    assert set(store.load("s", ["NULL", plain])) == {"NULL", plain}
    store.record_failures("s", [(uid, "x")])
    store.clear_failures("s", [uid])
    assert store.load("s", [uid])[uid].failed_attempts == 0


def test_failures_count_until_an_acknowledgement(store: Any) -> None:
    store.record_failures("s", [("u1", "HTTP 500"), ("new", "timeout")])
    store.record_failures("s", [("u1", "HTTP 503")])
    loaded = store.load("s", ["u1", "new"])
    assert (loaded["u1"].failed_attempts, loaded["u1"].last_error) == (2, "HTTP 503")
    assert loaded["new"].attrs == {} and loaded["new"].failed_attempts == 1
    # Write-ahead keeps the failures; the acknowledgement clears them.
    store.mark_pending("s", [("u1", attrs(plan=None))])
    assert store.load("s", ["u1"])["u1"].failed_attempts == 2
    store.commit("s", [("u1", attrs(plan="gold"))])
    got = store.load("s", ["u1"])["u1"]
    assert (got.failed_attempts, got.last_error) == (0, None)
    # clear_failures keeps the attributes.
    store.clear_failures("s", ["new", "never-seen"])
    got = store.load("s", ["new"])["new"]
    assert (got.attrs, got.failed_attempts, got.last_error) == ({}, 0, None)


def test_a_uid_twice_in_one_batch(store: Any) -> None:
    store.commit("s", [("u", attrs(a=1)), ("u", attrs(a=2))])
    assert store.load("s", ["u"])["u"].attrs == attrs(a=2)  # the last one wins
    store.mark_pending("s", [("u", attrs(a=None)), ("u", attrs(a=None, b=None))])
    assert store.load("s", ["u"])["u"].attrs == attrs(a=None, b=None)
    store.record_failures("s", [("u", "first"), ("u", "second")])
    got = store.load("s", ["u"])["u"]
    assert (got.failed_attempts, got.last_error) == (2, "second")


def test_many_users_in_one_call(store: Any) -> None:
    uids = [f"user-{i}" for i in range(12_345)]
    store.mark_pending("s", [(u, attrs(n=None)) for u in uids])
    store.commit("s", [(u, attrs(n=i)) for i, u in enumerate(uids)])
    store.record_failures("s", [(u, "x") for u in uids[::2]])
    loaded = store.load("s", [*uids, "absent"])
    assert len(loaded) == len(uids) and store.user_count("s") == len(uids)
    assert loaded["user-12344"].attrs == attrs(n=12344)
    assert sum(1 for s in loaded.values() if s.failed_attempts) == len(uids[::2])
    store.clear_failures("s", uids)
    assert not any(s.failed_attempts for s in store.load("s", uids).values())


def test_syncs_are_isolated_and_forget_keeps_history(store: Any) -> None:
    store.commit("a", [("u", attrs(x=1))])
    store.commit("b", [("u", attrs(x=2))])
    store.save_run(RunRecord(run_id="r1", sync_name="a", started_at=1.0, finished_at=2.0,
                             status="succeeded", counts={"added": 1}))  # fmt: skip
    store.set_meta("a", "destination", '{"p":1}')
    assert store.load("a", ["u"])["u"].attrs == attrs(x=1)
    store.forget("a")
    assert store.load("a", ["u"]) == {} and store.user_count("a") == 0
    assert store.load("b", ["u"])["u"].attrs == attrs(x=2)
    assert [r.run_id for r in store.runs("a")] == ["r1"]
    assert store.get_meta("a", "destination") == '{"p":1}'


def test_run_history(store: Any) -> None:
    for i in range(5):
        store.save_run(
            RunRecord(
                run_id=f"r{i}",
                sync_name="s",
                started_at=100.0 + i,
                finished_at=None,
                status="running",
                counts={},
            )
        )
    store.save_run(
        RunRecord(
            run_id="r2",
            sync_name="s",
            started_at=102.0,
            finished_at=110.5,
            status="aborted",
            counts={"added": 3, "requests": 4},
            error="stopped by SIGTERM",
        )
    )
    runs = store.runs("s")
    assert [r.run_id for r in runs] == ["r4", "r3", "r2", "r1", "r0"]
    r2 = runs[2]
    assert (r2.status, r2.counts, r2.error, r2.duration) == (
        "aborted",
        {"added": 3, "requests": 4},
        "stopped by SIGTERM",
        8.5,
    )
    assert [r.run_id for r in store.runs("s", limit=2)] == ["r4", "r3"]
    assert store.runs("other") == []


def test_meta(store: Any) -> None:
    assert store.get_meta("s", "k") is None
    store.set_meta("s", "k", "v1")
    store.set_meta("s", "k", "v2")
    store.set_meta("t", "k", "other")
    assert store.get_meta("s", "k") == "v2"
    store.set_meta("s", "k", None)
    assert store.get_meta("s", "k") is None
    assert store.get_meta("t", "k") == "other"
    store.set_meta("s", "absent", None)  # deleting nothing is fine


def exchange(seq: int, t: float, uid: str | None, status: int | None) -> dict[str, Any]:
    return {"seq": seq, "time": t, "user_uid": uid, "status": status, "path": "/x", "ok": "ü"}


def test_exchanges_filters_limits_and_retention(store: Any) -> None:
    store.save_exchanges(
        "s",
        "run-1",
        [exchange(1, 10.0, "u1", 200), exchange(2, 11.0, "u2", 500), exchange(3, 12.0, "u1", None)],
    )
    store.save_exchanges("s", "run-2", [exchange(1, 20.0, "u1", 204), exchange(2, 21.0, None, 429)])
    store.save_exchanges("other", "run-9", [exchange(1, 5.0, "u1", 200)])
    store.save_exchanges("s", "run-3", [])
    every = store.exchanges("s")
    assert [(e["seq"], e["time"]) for e in every] == [(1, 10.0), (2, 11.0), (3, 12.0), (1, 20.0),
                                                      (2, 21.0)]  # fmt: skip
    assert every[0] == exchange(1, 10.0, "u1", 200)  # the record comes back as it went in
    assert [e["time"] for e in store.exchanges("s", run_id="run-1")] == [10.0, 11.0, 12.0]
    assert [e["time"] for e in store.exchanges("s", uid="u1")] == [10.0, 12.0, 20.0]
    assert [e["time"] for e in store.exchanges("s", failed_only=True)] == [11.0, 12.0, 21.0]
    assert [e["time"] for e in store.exchanges("s", limit=2)] == [20.0, 21.0]  # the latest two
    with pytest.raises(ConfigurationError, match="limit"):
        store.exchanges("s", limit=0)
    assert store.prune_exchanges(12.0) == 3  # before 12.0: the s/10, s/11 and other/5
    assert [e["time"] for e in store.exchanges("s")] == [12.0, 20.0, 21.0]
    assert store.exchanges("other") == []


# ---------------------------------------------------------------------------------------------
# The change log (sync logs): per run and user, what was sent and how it ended
# ---------------------------------------------------------------------------------------------


def sent(**values: Any) -> dict[str, str | None]:
    """The canonical JSON the engine logs per key (``None`` stays "nothing known")."""
    return {k: (None if v is None else canonical(v)) for k, v in values.items()}


def change(uid: str, outcome: str = "changed", **new: Any) -> ChangeEntry:
    return ChangeEntry(uid=uid, outcome=outcome, new=sent(**new))  # type: ignore[arg-type]


def test_every_store_keeps_a_change_log(store: Any) -> None:
    assert isinstance(store, ChangeLogStore)


def test_change_log_round_trips_values_exactly(store: Any) -> None:
    values = sent(plan="gold", ltv=12.5, tags=["a", "ü"], nested={"k": [1, None]}, gone=None)
    values["gone"] = "null"  # a null sent (null="send") is a value, not "unknown"
    entries = [
        ChangeEntry(uid="u1", outcome="added", new=values),
        ChangeEntry(
            uid="u2",
            outcome="changed",
            new=sent(plan="pro"),
            old=sent(plan="gold"),
        ),
        ChangeEntry(
            uid="u3",
            outcome="rejected",
            new=sent(plan="x" * 3, ltv=2),
            old={"plan": None, "ltv": "null"},  # plan unknown, ltv an accepted null
            status=422,
            error="422 INVALID: plan is not one of gold, pro",
        ),
        ChangeEntry(  # what COPY's text format and SQL quoting must escape
            uid='u\\4\t"x"',
            outcome="rejected",
            new=sent(note='a\\b\n"c"\t\r', plan="\\N"),
            old=sent(note="\\."),
            status=None,
            error="line one\nline two\t\\ end",
        ),
    ]
    store.log_changes("s", "run-1", entries)
    got = {entry.uid: entry for entry in store.changes("s", run_id="run-1")}
    for entry in entries:
        back = got[entry.uid]
        known = {k: v for k, v in entry.old.items() if v is not None}  # unknown: not kept
        assert (back.outcome, dict(back.new), dict(back.old), back.status, back.error) == (
            entry.outcome,
            dict(entry.new),
            known,
            entry.status,
            entry.error,
        )
        assert back.run_id == "run-1" and back.time is not None
        assert back.keys == sorted(entry.new)


def test_change_log_filters_limits_and_newest_first(store: Any) -> None:
    store.log_changes("s", "run-1", [change("u1", plan="a"), change("u2", plan="b")])
    store.log_changes("s", "run-2", [change("u1", plan="c")])
    store.log_changes("other", "run-9", [change("u1", plan="z")])
    store.log_changes("s", "run-3", [])
    assert [(e.run_id, e.uid) for e in store.changes("s")] == [
        ("run-2", "u1"),
        ("run-1", "u2"),
        ("run-1", "u1"),
    ]
    assert [e.new["plan"] for e in store.changes("s", uid="u1")] == ['"c"', '"a"']
    assert [e.uid for e in store.changes("s", run_id="run-1", uid="u2")] == ["u2"]
    assert [e.run_id for e in store.changes("s", limit=1)] == ["run-2"]
    assert store.changes("s", run_id="run-3") == []
    with pytest.raises(ConfigurationError, match="limit"):
        store.changes("s", limit=0)


def test_change_log_digests_keep_changes_visible_not_values(store: Any) -> None:
    first = ChangeEntry(uid="u1", outcome="changed", new=attrs(email="a@example.com")).digested()
    again = ChangeEntry(uid="u2", outcome="changed", new=sent(email="a@example.com")).digested()
    store.log_changes("s", "run-1", [first, again])
    logged = store.changes("s")
    assert all("example.com" not in json.dumps(dict(e.new)) for e in logged)
    assert logged[0].new == logged[1].new  # equal values, equal digests
    assert json.loads(logged[0].new["email"]).startswith("sha256:")


def test_change_log_retention_and_forget(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    store.log_changes("s", "run-1", [change("u1", plan="a"), change("u2", plan="a")])
    clock[0] = 2_000.0
    store.log_changes("s", "run-2", [change("u1", plan="b")])
    monkeypatch.undo()
    store.forget("s")  # forgetting a sync's state keeps its history, the change log included
    assert len(store.changes("s")) == 3
    assert store.prune_changes(1_500.0) == 2
    assert [e.run_id for e in store.changes("s")] == ["run-2"]
    assert store.prune_changes(0.0) == 0


# ---------------------------------------------------------------------------------------------
# Locks
# ---------------------------------------------------------------------------------------------

A = json.dumps({"host": "elsewhere", "pid": 1, "run_id": "a"})
B = json.dumps({"host": "elsewhere", "pid": 2, "run_id": "b"})


def test_lock_is_refused_while_held_and_reports_the_holder(reopen: Opener) -> None:
    one, two = reopen(), reopen()  # two processes sharing the store
    assert one.acquire_lock("s", A, 60.0) is None
    held = two.acquire_lock("s", B, 60.0)
    assert held is not None and held.holder == A and held.name == "s"
    assert held.expires_at > held.acquired_at and held.describe()["run_id"] == "a"
    # Another name is another lock.
    assert two.acquire_lock("t", B, 60.0) is None
    # The holder taking it again keeps its start and extends the lease.
    assert one.acquire_lock("s", A, 120.0) is None
    again = two.acquire_lock("s", B, 60.0)
    assert again is not None and again.acquired_at == held.acquired_at
    assert again.expires_at > held.expires_at


def test_only_the_holder_renews_or_releases(reopen: Opener) -> None:
    one, two = reopen(), reopen()
    assert one.acquire_lock("s", A, 60.0) is None
    assert one.renew_lock("s", A, 60.0) is True
    assert two.renew_lock("s", B, 60.0) is False
    two.release_lock("s", B)  # not the holder: a no-op
    assert two.acquire_lock("s", B, 60.0) is not None
    one.release_lock("s", A)
    assert one.renew_lock("s", A, 60.0) is False  # released: nothing to renew
    assert two.acquire_lock("s", B, 60.0) is None
    one.release_lock("never-taken", A)


def test_an_expired_lease_can_be_taken_over(reopen: Opener) -> None:
    one, two = reopen(), reopen()
    assert one.acquire_lock("s", A, 0.05) is None
    time.sleep(0.3)  # let the lease run out (not a timing assertion)
    assert two.acquire_lock("s", B, 60.0) is None
    # The old holder learns it lost the lease and cannot release the new one.
    assert one.renew_lock("s", A, 60.0) is False
    one.release_lock("s", A)
    held = one.acquire_lock("s", A, 60.0)
    assert held is not None and held.holder == B


def test_concurrent_writers_and_lease_renewals(store: Any) -> None:
    """The engine calls a store from its commit thread, the lock-renewal thread and the event
    loop at once."""
    assert store.acquire_lock("s", A, 60.0) is None
    errors: list[BaseException] = []

    def writer(part: int) -> None:
        try:
            for batch in range(20):
                users = [(f"p{part}-{batch}-{i}", attrs(v=i)) for i in range(25)]
                store.mark_pending("s", [(u, {"v": None}) for u, _ in users])
                store.commit("s", users)
                store.load("s", [u for u, _ in users])
        except BaseException as exc:
            errors.append(exc)

    def renewer() -> None:
        try:
            for _ in range(50):
                assert store.renew_lock("s", A, 60.0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in range(3)]
    threads.append(threading.Thread(target=renewer))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.user_count("s") == 3 * 20 * 25


# ---------------------------------------------------------------------------------------------
# Persistence and schema versions (the stores that outlive a process)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", PERSISTENT, indirect=True)
def test_state_outlives_the_store_object(reopen: Opener) -> None:
    first = reopen()
    first.mark_pending("s", [("u", attrs(a=None, b=2))])
    first.record_failures("s", [("u", "HTTP 500")])
    first.save_run(RunRecord(run_id="r", sync_name="s", started_at=1.0, finished_at=None,
                             status="running", counts={}))  # fmt: skip
    first.set_meta("s", "k", "v")
    first.save_exchanges("s", "r", [exchange(1, 1.0, "u", 500)])
    assert first.acquire_lock("s", A, 60.0) is None
    first.close()
    second = reopen()
    got = second.load("s", ["u"])["u"]
    assert (got.attrs, got.failed_attempts, got.last_error) == (attrs(a=None, b=2), 1, "HTTP 500")
    assert second.runs("s")[0].status == "running"
    assert second.get_meta("s", "k") == "v"
    assert len(second.exchanges("s")) == 1
    held = second.acquire_lock("s", B, 60.0)
    assert held is not None and held.holder == A


def make_newer(kind: str, store: Any, tmp_path: Path) -> None:
    """Mark the storage as written by a future version of the library."""
    if kind == "sqlite":
        db = sqlite3.connect(tmp_path / "state.db")
        db.execute("PRAGMA user_version = 99")
        db.commit()
        db.close()
    else:
        with store._connection("data") as conn:
            conn.execute(
                f"INSERT INTO {store._q}.schema_version (version, migrated_at) VALUES (99, 0)"
            )


@pytest.mark.parametrize("kind", PERSISTENT, indirect=True)
def test_a_newer_schema_is_refused(
    kind: str, reopen: Opener, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    first = reopen()
    first.commit("s", [("u", attrs(a=1))])
    make_newer(kind, first, tmp_path)
    first.close()
    with pytest.raises(ConfigurationError, match="newer version"):
        reopen()


def test_open_state_accepts_each_kind(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    spec: Any = {
        "memory": None,
        "sqlite": f"sqlite:///{tmp_path / 'x.db'}",
        "postgres": request.getfixturevalue("pg_url") if kind == "postgres" else None,
    }[kind]
    store, owned = open_state(spec)
    try:
        assert owned
        assert (
            type(store).__name__
            == {
                "memory": "MemoryState",
                "sqlite": "SQLiteState",
                "postgres": "PostgresState",
            }[kind]
        )
    finally:
        store.close()


def test_the_sync_runs_the_same_on_every_store(kind: str, reopen: Opener) -> None:
    """The engine through each store: first run adds, rerun sends nothing, a change is sent."""
    from contentstack_personalize.testing import PersonalizeEmulator
    from tests.sync.conftest import make_client, people

    emulator = PersonalizeEmulator(seed=1, management_rate_limit=None)
    mapping = {"plan": "plan", "ltv": "ltv"}
    with make_client(emulator) as client:
        sync = Sync(client, match_on="user_id", mapping=mapping, state=reopen())
        first = sync.run(people(50))
        assert (first.added, first.status) == (50, "succeeded")
        again = Sync(client, match_on="user_id", mapping=mapping, state=reopen()).run(people(50))
        assert (again.added, again.changed, again.unchanged) == (0, 0, 50)
        rows = people(50)
        rows[3]["plan"] = "platinum"
        third = Sync(client, match_on="user_id", mapping=mapping, state=reopen()).run(rows)
        assert (third.changed, third.unchanged) == (1, 49)
        assert [r.status for r in sync.history()] == ["succeeded"] * 3
    assert emulator.users()["4"]["plan"] == "platinum"
