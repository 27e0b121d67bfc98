"""Exchanges kept with their run in the state store: save, query, retention, schema migration."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contentstack_personalize import ConfigurationError, Exchange
from contentstack_personalize.debugger import Debugger, DebugRecord
from contentstack_personalize.state import ChangeEntry, ExchangeStore, StateStore
from contentstack_personalize.state import _sqlite as _state
from contentstack_personalize.sync import MemoryState, SQLiteState, Sync
from contentstack_personalize.testing import PersonalizeEmulator
from tests.sync.conftest import make_client, people

DAY = 86_400.0


def record(seq: int, uid: str, status: int | None, when: float) -> dict[str, Any]:
    return DebugRecord(
        seq=seq,
        time=when,
        api="edge",
        method="PATCH",
        url="https://edge/user-attributes",
        request_headers={},
        request_body="{}",
        status=status,
        response_headers={},
        response_body=None,
        duration=0.01,
        attempt=1,
        user_uid=uid,
    ).to_dict()


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    s: Any = MemoryState() if request.param == "memory" else SQLiteState(tmp_path / "s.db")
    yield s
    s.close()


class TestStoreExchanges:
    def test_query_by_run_user_and_failure(self, store: Any) -> None:
        now = time.time()
        store.save_exchanges("s", "r1", [record(1, "a", 200, now), record(2, "b", 400, now + 1)])
        store.save_exchanges("s", "r2", [record(1, "a", None, now + 2)])
        store.save_exchanges("other", "r9", [record(1, "a", 200, now)])

        assert [(e["user_uid"], e["status"]) for e in store.exchanges("s")] == [
            ("a", 200),
            ("b", 400),
            ("a", None),
        ]
        assert [e["user_uid"] for e in store.exchanges("s", run_id="r1")] == ["a", "b"]
        assert [e["status"] for e in store.exchanges("s", uid="a")] == [200, None]
        assert [e["status"] for e in store.exchanges("s", failed_only=True)] == [400, None]
        # limit keeps the most recent ones, still oldest first.
        assert [e["status"] for e in store.exchanges("s", limit=2)] == [400, None]
        assert store.exchanges("nobody") == []
        with pytest.raises(ConfigurationError, match="limit"):
            store.exchanges("s", limit=0)

    def test_prune_deletes_only_what_is_older(self, store: Any) -> None:
        now = time.time()
        store.save_exchanges(
            "s", "old", [record(1, "a", 200, now - 10 * DAY), record(2, "b", 500, now - 8 * DAY)]
        )
        store.save_exchanges("s", "new", [record(1, "c", 200, now - DAY)])
        assert store.prune_exchanges(now - 7 * DAY) == 2
        assert [e["user_uid"] for e in store.exchanges("s")] == ["c"]
        assert store.prune_exchanges(now - 7 * DAY) == 0

    def test_stores_satisfy_the_protocol(self, store: Any) -> None:
        assert isinstance(store, ExchangeStore)
        assert isinstance(store, StateStore)


class TestDebuggerPersistence:
    def test_a_run_saves_its_exchanges_and_prunes_expired_ones(self, tmp_path: Path) -> None:
        emulator = PersonalizeEmulator(seed=2)
        emulator.set_faults(fail_nth={3: 500})
        state = SQLiteState(tmp_path / "state.db")
        now = time.time()
        state.save_exchanges("users", "ancient", [record(1, "x", 200, now - 30 * DAY)])
        debugger = Debugger(persist=True, retention_days=7)
        with make_client(emulator) as client:
            sync = Sync(
                client, match_on="user_id", mapping={"plan": "plan"}, state=state, name="users"
            )
            with debugger.attach(client, sync_name="users", run_id="run-1", store=state):
                result = sync.run(people(20))
        assert result.added == 20

        stored = state.exchanges("users", run_id="run-1")
        assert len(stored) == 21  # 20 users, one retried after the injected 500
        assert [e["status"] for e in state.exchanges("users", failed_only=True)] == [500]
        assert state.exchanges("users", run_id="ancient") == []  # past retention
        failed_uid = state.exchanges("users", failed_only=True)[0]["user_uid"]
        assert [e["status"] for e in state.exchanges("users", uid=failed_uid)] == [500, 200]
        assert DebugRecord.from_dict(stored[0]).run_id == "run-1"
        state.close()

        # The exchanges outlive the process: a new store object on the same file sees them.
        reopened = SQLiteState(tmp_path / "state.db")
        assert len(reopened.exchanges("users", run_id="run-1")) == 21
        reopened.close()

    def test_persisting_twice_saves_each_record_once(self) -> None:
        store = MemoryState()
        debugger = Debugger()
        debugger(_exchange("a"))
        assert debugger.persist_to(store, "s", "r") == 1
        debugger(_exchange("b"))
        assert debugger.persist_to(store, "s", "r") == 1
        assert [e["user_uid"] for e in store.exchanges("s")] == ["a", "b"]

    def test_without_persist_nothing_is_stored(self) -> None:
        emulator = PersonalizeEmulator(seed=2)
        store = MemoryState()
        with (
            make_client(emulator) as client,
            Debugger().attach(client, sync_name="s", run_id="r", store=store),
        ):
            client.users.set_attributes("u", {"plan": "gold"})
        assert store.exchanges("s") == []

    def test_a_store_that_cannot_keep_exchanges_is_named(self) -> None:
        class Bare:
            pass

        with pytest.raises(ConfigurationError, match="Bare cannot store exchanges"):
            Debugger().persist_to(Bare(), "s", "r")


def _exchange(uid: str) -> Exchange:
    return Exchange(
        api="edge",
        method="PATCH",
        url="https://edge/user-attributes",
        request_headers={},
        request_body="{}",
        status=200,
        response_headers={},
        response_body=None,
        started_at=time.time(),
        duration=0.0,
        attempt=1,
        user_uid=uid,
    )


class TestSchemaMigration:
    def make_v1(self, path: Path) -> None:
        """A store exactly as version 1 of the library wrote it, with some data."""
        db = sqlite3.connect(path, isolation_level=None)
        for statement in _state._SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute("PRAGMA user_version=1")
        db.execute(
            "INSERT INTO user_state VALUES ('s', 'u1', '{\"plan\":\"\\\"gold\\\"\"}', 0, NULL, 1.0)"
        )
        db.execute(
            "INSERT INTO runs VALUES ('r0', 's', 1.0, 2.0, 'succeeded', '{\"read\": 1}', NULL)"
        )
        db.execute("INSERT INTO sync_meta VALUES ('s', 'alert', 'firing')")
        db.close()

    def test_a_version_1_file_is_migrated_and_keeps_its_data(self, tmp_path: Path) -> None:
        path = tmp_path / "v1.db"
        self.make_v1(path)
        store = SQLiteState(path)
        assert store.load("s", ["u1"])["u1"].attrs == {"plan": '"gold"'}
        assert [r.run_id for r in store.runs("s")] == ["r0"]
        assert store.get_meta("s", "alert") == "firing"
        store.save_exchanges("s", "r1", [record(1, "u1", 200, time.time())])
        assert len(store.exchanges("s")) == 1
        store.close()
        version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
        assert version == _state.SCHEMA_VERSION == 4
        migrated = SQLiteState(path)  # the change log (version 4) works on the migrated file
        migrated.log_changes("s", "r1", [ChangeEntry(uid="u1", outcome="changed", new={"a": "1"})])
        assert [e.uid for e in migrated.changes("s")] == ["u1"]
        migrated.close()
        # Opening the migrated file again is a no-op that keeps everything.
        again = SQLiteState(path)
        assert len(again.exchanges("s")) == 1
        again.close()

    def test_a_new_file_has_the_exchanges_table(self, tmp_path: Path) -> None:
        SQLiteState(tmp_path / "new.db").close()
        db = sqlite3.connect(tmp_path / "new.db")
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"user_state", "runs", "sync_meta", "exchanges", "locks", "changes"} <= tables
        assert db.execute("PRAGMA user_version").fetchone()[0] == 4

    def test_a_newer_file_is_still_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "newer.db"
        db = sqlite3.connect(path)
        db.execute(f"PRAGMA user_version={_state.SCHEMA_VERSION + 1}")
        db.close()
        with pytest.raises(ConfigurationError, match="newer version"):
            SQLiteState(path)
