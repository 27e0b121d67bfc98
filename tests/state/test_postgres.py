"""What only the PostgreSQL store has: a named schema in a shared database, a server that can be
unreachable, slow or restarted, versions and migrations in a table, and the move of a sync's
state from an SQLite file."""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from contentstack_personalize import ConfigurationError, StateStoreError
from contentstack_personalize.state import ChangeEntry, open_state
from contentstack_personalize.state import postgres as pgmod
from contentstack_personalize.state.postgres import PostgresState
from contentstack_personalize.sync import SQLiteState, Sync
from contentstack_personalize.testing import PersonalizeEmulator
from tests.state._pgserver import PostgresServer, free_port
from tests.sync.conftest import make_client, people

MAPPING = {"plan": "plan", "ltv": "ltv"}
HOLDER = json.dumps({"host": "elsewhere", "pid": 1, "run_id": "x"})


def tables(server: PostgresServer, schema: str) -> set[str]:
    with psycopg.connect(server.url) as conn:
        return {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
            )
        }


def test_tables_go_in_the_named_schema(postgres: PostgresServer, pg_schema: str) -> None:
    store, owned = open_state(
        f"postgres://{postgres.user}@127.0.0.1:{postgres.port}/postgres?schema={pg_schema}"
    )
    try:
        assert owned and store.__class__ is PostgresState
        assert store.schema == pg_schema  # type: ignore[attr-defined]
        assert tables(postgres, pg_schema) == {
            "user_state",
            "runs",
            "sync_meta",
            "exchanges",
            "locks",
            "schema_version",
            "changes",
        }
    finally:
        store.close()
    other = PostgresState(postgres.url, schema=f"{pg_schema}_b")
    try:
        assert other.schema_version() == pgmod.SCHEMA_VERSION
        assert "user_state" in tables(postgres, f"{pg_schema}_b")
    finally:
        other.close()


def test_default_schema(postgres: PostgresServer) -> None:
    store = PostgresState(postgres.url)
    store.close()
    assert store.schema == "contentstack_personalize"
    assert "user_state" in tables(postgres, "contentstack_personalize")


@pytest.mark.parametrize(
    ("url_tail", "schema", "message"),
    [
        ("?schema=a", "b", "named twice"),
        ("?schema=bad-name", None, "identifier"),
        ("", 'x"; DROP TABLE y; --', "identifier"),
        ("", "", "identifier"),
    ],
)
def test_bad_schema_names_are_refused(
    postgres: PostgresServer, url_tail: str, schema: str | None, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        PostgresState(postgres.url + url_tail, schema=schema)


def test_a_schema_holding_other_tables_is_refused(postgres: PostgresServer, pg_schema: str) -> None:
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {pg_schema}")
        conn.execute(f"CREATE TABLE {pg_schema}.orders (id int)")
    with pytest.raises(ConfigurationError, match="holds other tables"):
        PostgresState(postgres.url, schema=pg_schema)
    assert tables(postgres, pg_schema) == {"orders"}  # left untouched


def test_an_older_schema_is_migrated_in_one_step(
    postgres: PostgresServer, pg_url: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:  # a store written by the version before the change log
        patch.setattr(pgmod, "SCHEMA_VERSION", 1)
        old = PostgresState(pg_url)
        old.commit("s", [("u", {"a": "1"})])
        old.close()
    assert "changes" not in tables(postgres, pg_schema)
    store = PostgresState(pg_url)
    try:
        assert store.schema_version() == pgmod.SCHEMA_VERSION == 2
        assert "changes" in tables(postgres, pg_schema)
        assert store.load("s", ["u"])["u"].attrs == {"a": "1"}
        store.log_changes("s", "r", [ChangeEntry(uid="u", outcome="changed", new={"a": "2"})])
        assert [e.new for e in store.changes("s")] == [{"a": "2"}]
    finally:
        store.close()


def test_a_failed_migration_leaves_the_old_version(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = PostgresState(pg_url)
    first.commit("s", [("u", {"a": "1"})])
    first.close()
    monkeypatch.setattr(pgmod, "SCHEMA_VERSION", 3)
    monkeypatch.setattr(pgmod, "_MIGRATIONS", {2: "ALTER TABLE {s}.nothing ADD COLUMN x int"})
    with pytest.raises(StateStoreError):
        PostgresState(pg_url)
    monkeypatch.setattr(pgmod, "SCHEMA_VERSION", 2)
    again = PostgresState(pg_url)
    try:
        assert again.schema_version() == 2
        assert again.load("s", ["u"])["u"].attrs == {"a": "1"}
    finally:
        again.close()


def test_workers_opening_a_new_store_at_once(pg_url: str) -> None:
    errors: list[BaseException] = []
    stores: list[PostgresState] = []

    def open_one() -> None:
        try:
            stores.append(PostgresState(pg_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert errors == [] and len(stores) == 6


# ---------------------------------------------------------------------------------------------
# Failures: every one a StateStoreError that says what to do, never a hang
# ---------------------------------------------------------------------------------------------


def test_missing_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_psycopg(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "psycopg" or name.startswith("psycopg."):
            raise ImportError("No module named 'psycopg'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_psycopg)
    with pytest.raises(ConfigurationError, match=r"\[postgres\]"):
        open_state("postgresql://u@localhost/db")


def test_an_unreachable_server_says_so_without_the_password() -> None:
    url = f"postgresql://syncer:s3cret-pw@127.0.0.1:{free_port()}/db?schema=x"
    with pytest.raises(StateStoreError) as info:
        PostgresState(url, timeout=2)
    text = str(info.value)
    assert "cannot connect" in text and "server is up" in text
    assert "s3cret-pw" not in text and "s3cret-pw" not in repr(info.value)


def test_the_password_is_never_in_repr(postgres: PostgresServer, pg_schema: str) -> None:
    url = f"postgresql://{postgres.user}:hunter2@127.0.0.1:{postgres.port}/postgres"
    store = PostgresState(url, schema=pg_schema)
    try:
        assert "hunter2" not in repr(store) and "hunter2" not in store.where
        assert f"127.0.0.1:{postgres.port}/postgres" in repr(store)
        emulator = PersonalizeEmulator(seed=1)
        with make_client(emulator) as client:
            sync = Sync(client, match_on="user_id", mapping=MAPPING, state=store)
            assert "hunter2" not in repr(sync)
    finally:
        store.close()


def test_a_lock_held_by_another_session_times_out_instead_of_hanging(pg_url: str) -> None:
    """Another session keeps the lease row locked (a stuck transaction): taking the lock gives
    up after ``timeout`` with advice, and works once the other session is gone."""
    store = PostgresState(pg_url, timeout=0.5)
    try:
        assert store.acquire_lock("s", HOLDER, 60.0) is None
        with psycopg.connect(pg_url.split("?")[0]) as other:
            other.execute(f"SELECT * FROM {store._q}.locks WHERE name = 's' FOR UPDATE")
            with pytest.raises(StateStoreError, match=r"took more than 0\.5 s"):
                store.renew_lock("s", HOLDER, 60.0)
            with pytest.raises(StateStoreError, match="pg_stat_activity"):
                store.acquire_lock("s", "someone else", 60.0)
        assert store.renew_lock("s", HOLDER, 60.0) is True
    finally:
        store.close()


def test_a_lost_connection_fails_one_call_and_the_next_reconnects(
    postgres: PostgresServer, pg_url: str
) -> None:
    store = PostgresState(pg_url)
    try:
        store.commit("s", [("u", {"a": "1"})])
        assert store.load("s", ["u"])  # both connections are open now
        with psycopg.connect(postgres.url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'contentstack-personalize' AND pid <> pg_backend_pid()"
            )
        with pytest.raises(StateStoreError, match="reconnects"):
            store.load("s", ["u"])
        with pytest.raises(StateStoreError, match="reconnects"):
            store.commit("s", [("u", {"a": "2"})])
        store.commit("s", [("u", {"a": "3"})])
        assert store.load("s", ["u"])["u"].attrs == {"a": "3"}
    finally:
        store.close()


def test_a_closed_store_refuses_calls(pg_url: str) -> None:
    store = PostgresState(pg_url)
    store.close()
    store.close()  # twice is fine
    with pytest.raises(StateStoreError, match="closed"):
        store.load("s", ["u"])


def test_a_failed_write_leaves_nothing_half_written(pg_url: str) -> None:
    """A batch is one transaction: a chunk that fails rolls back the chunks before it."""
    store = PostgresState(pg_url)
    try:
        users: list[tuple[str, dict[str, str | None]]] = [
            (f"u{i}", {"a": str(i)}) for i in range(pgmod._CHUNK + 10)
        ]
        users.append(("bad\x00uid", {"a": "1"}))  # PostgreSQL text cannot hold NUL
        with pytest.raises(StateStoreError):
            store.commit("s", users)
        assert store.user_count("s") == 0
    finally:
        store.close()


# ---------------------------------------------------------------------------------------------
# Moving a sync's state from SQLite to PostgreSQL
# ---------------------------------------------------------------------------------------------


def test_import_sqlite_then_the_next_run_sends_nothing(tmp_path: Path, pg_url: str) -> None:
    emulator = PersonalizeEmulator(seed=1, management_rate_limit=None)
    db = tmp_path / "state.db"
    with make_client(emulator) as client:
        with Sync(client, match_on="user_id", mapping=MAPPING, state=db, name="users") as sync:
            assert sync.run(people(40)).added == 40
        source = SQLiteState(db)
        source.record_failures("users", [("7", "HTTP 500")])
        source.mark_pending("users", [("8", {"plan": None, "ltv": "80"})])  # unknown key
        kept = {"seq": 1, "time": 5.0, "user_uid": "7", "status": 500, "path": "/x"}
        source.save_exchanges("users", "r0", [kept])
        logged = ChangeEntry(uid="7", outcome="rejected", new={"plan": '"gold"'}, status=500)
        source.log_changes("users", "r0", [logged])
        source.close()
        before = db.read_bytes()

        target = PostgresState(pg_url)
        try:
            assert target.import_sqlite(db) == {"users": 40}
            assert db.read_bytes() == before  # the file is only read
            assert target.load("users", ["7"])["7"].failed_attempts == 1
            assert target.load("users", ["8"])["8"].unknown_keys == ["plan"]
            assert [r.status for r in target.runs("users")] == ["succeeded"]
            assert target.exchanges("users") == [kept]
            moved = target.changes("users", run_id="r0")
            assert [(e.uid, e.outcome, dict(e.new), e.status) for e in moved] == [
                ("7", "rejected", {"plan": '"gold"'}, 500)
            ]
            assert target.get_meta("users", "destination") is not None
            with pytest.raises(ConfigurationError, match="replace=True"):
                target.import_sqlite(db)
            assert target.import_sqlite(db, replace=True) == {"users": 40}
        finally:
            target.close()

        patches = emulator.count("edge", "PATCH", "/user-attributes")
        with Sync(client, match_on="user_id", mapping=MAPPING, state=pg_url, name="users") as s2:
            again = s2.run(people(40))
            assert len(s2.history()) == 2
        # Only the user with an unknown key is sent again; the destination check passed.
        assert (again.changed + again.added, again.unchanged) == (1, 39)
        assert emulator.count("edge", "PATCH", "/user-attributes") - patches == 1


def test_import_sqlite_refuses_a_sync_that_is_running(tmp_path: Path, pg_url: str) -> None:
    db = tmp_path / "state.db"
    source = SQLiteState(db)
    source.commit("users", [("u", {"a": "1"})])
    assert source.acquire_lock("users", HOLDER, 600.0) is None
    source.close()
    target = PostgresState(pg_url)
    try:
        with pytest.raises(StateStoreError, match="is running"):
            target.import_sqlite(db)
        assert target.user_count("users") == 0
        with pytest.raises(ConfigurationError, match="no SQLite state file"):
            target.import_sqlite(tmp_path / "missing.db")
        (tmp_path / "other.db").write_bytes(b"")
        sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.close()
        with pytest.raises(ConfigurationError, match="not an SQLite state store"):
            target.import_sqlite(tmp_path / "other.db")
    finally:
        target.close()


def test_statistics_follow_a_table_that_grew_from_empty(pg_url: str, pg_schema: str) -> None:
    """Regression: a user_state that grew from empty within one run had no planner statistics
    (the planner took it for a few hundred rows), so each load of 500 users read every user of
    the sync: loads got slower as the run went on. The store refreshes the statistics each time
    the table doubles, so the planner's idea of its size stays within a factor of two."""
    store = PostgresState(pg_url)
    try:
        uids = [f"user-{i}" for i in range(30_000)]
        for start in range(0, len(uids), 500):
            store.commit("s", [(u, {"a": '"x"'}) for u in uids[start : start + 500]])
        with psycopg.connect(pg_url.split("?")[0]) as conn:
            row = conn.execute(
                "SELECT reltuples FROM pg_class WHERE oid = %s::regclass",
                (f"{pg_schema}.user_state",),
            ).fetchone()
        assert row is not None and row[0] >= len(uids) / 2
        assert len(store.load("s", uids[:500])) == 500
    finally:
        store.close()
