"""State in an SQLite file: write-ahead log, every batch of acknowledgements in one transaction,
a schema version checked on open and migrations from older files."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..errors import ConfigurationError, StateStoreError
from ._base import (
    DEFAULT_CHANGE_LIMIT,
    DEFAULT_EXCHANGE_LIMIT,
    ChangeEntry,
    LockInfo,
    RunRecord,
    UserState,
    _check_limit,
    exchange_columns,
    sql_filters,
)

logger = logging.getLogger("contentstack_personalize.sync")

#: Version 2 added the ``exchanges`` table (debugger persistence), version 3 the ``locks`` table
#: (one run per sync) and unknown keys (``null`` in a user's ``attrs``), version 4 the ``changes``
#: table (the change log); older files are migrated.
SCHEMA_VERSION = 4
_QUERY_CHUNK = 900  # below SQLite's historical 999-parameter limit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS user_state (
    sync_name TEXT NOT NULL,
    uid TEXT NOT NULL,
    attrs TEXT NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    updated_at REAL NOT NULL,
    PRIMARY KEY (sync_name, uid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    sync_name TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    status TEXT NOT NULL,
    counts TEXT NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_sync ON runs (sync_name, started_at);
CREATE TABLE IF NOT EXISTS sync_meta (
    sync_name TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (sync_name, key)
) WITHOUT ROWID;
"""

# Version 2: the exchanges a debugger kept, per run. ``record`` is the JSON of a DebugRecord;
# the other columns are copies of its fields for filtering and retention.
_EXCHANGES_SCHEMA = """
CREATE TABLE IF NOT EXISTS exchanges (
    id INTEGER PRIMARY KEY,
    sync_name TEXT NOT NULL,
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    time REAL NOT NULL,
    uid TEXT,
    status INTEGER,
    ok INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS exchanges_by_run ON exchanges (sync_name, run_id, time);
CREATE INDEX IF NOT EXISTS exchanges_by_uid ON exchanges (sync_name, uid, time);
CREATE INDEX IF NOT EXISTS exchanges_by_time ON exchanges (time);
"""

# Version 3: one lease per lock name (a sync's name): who holds it and until when.
_LOCKS_SCHEMA = """
CREATE TABLE IF NOT EXISTS locks (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    acquired_at REAL NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
"""

# Version 4: the change log, per run and user: what was sent and how it ended (ChangeEntry).
_CHANGES_SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    id INTEGER PRIMARY KEY,
    sync_name TEXT NOT NULL,
    run_id TEXT NOT NULL,
    time REAL NOT NULL,
    uid TEXT NOT NULL,
    outcome TEXT NOT NULL,
    keys TEXT NOT NULL,
    new_values TEXT NOT NULL,
    old_values TEXT NOT NULL,
    status INTEGER,
    error TEXT
);
CREATE INDEX IF NOT EXISTS changes_by_run ON changes (sync_name, run_id);
CREATE INDEX IF NOT EXISTS changes_by_uid ON changes (sync_name, uid);
CREATE INDEX IF NOT EXISTS changes_by_time ON changes (time);
"""

#: ``{from_version: statements}``: each step brings a file from that version to the next.
_MIGRATIONS: dict[int, str] = {1: _EXCHANGES_SCHEMA, 2: _LOCKS_SCHEMA, 3: _CHANGES_SCHEMA}

#: SQLite's header: the first 16 bytes of every database file.
_SQLITE_MAGIC = b"SQLite format 3\x00"


def _statements(script: str) -> list[str]:
    return [part for part in script.split(";") if part.strip()]


def _store_error(path: str, exc: sqlite3.Error, timeout: float) -> StateStoreError:
    """A :class:`StateStoreError` that says what went wrong with the file and what to do."""
    text = str(exc)
    low = text.lower()
    if "locked" in low or "busy" in low:
        advice = (
            f"another process held the state file's write lock for more than {timeout:g} s; "
            "find it (another sync or a tool with the file open) or raise SQLiteState(timeout=)"
        )
    elif "readonly" in low or "read-only" in low:
        advice = (
            "the state file (or its directory, where SQLite writes its -wal and -shm files) is "
            "read-only; make both writable or point state= at a writable place"
        )
    elif "full" in low or "too big" in low or "disk i/o" in low:
        advice = (
            "the disk (or the process's file-size limit) is full; free space or point state= "
            "at a file on another disk. What was acknowledged before is kept"
        )
    elif "malformed" in low or "not a database" in low or "corrupt" in low:
        advice = (
            "the state file is damaged; restore it from a backup, or point state= at a new file "
            "(the first run then sends every user again)"
        )
    else:
        advice = "check the file and its disk"
    return StateStoreError(f"state store {path!r}: {text}: {advice}")


class SQLiteState:
    """State in an SQLite file, safe against crashes: write-ahead log, every batch of
    acknowledgements in one transaction, and a schema version checked on open.

    Several syncs (and several processes, one run per sync at a time) can share one file.
    ``timeout`` bounds every wait for the file's write lock held by another process (and for
    this object's own lock between threads); past it an operation raises
    :class:`~contentstack_personalize.errors.StateStoreError`.

    Example: ``Sync(client, match_on="id", mapping={...}, state="personalize_state.db")``
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        self.path = os.fspath(path)
        if not self.path:
            raise ConfigurationError(
                "the state store path is empty; pass a file name (e.g. state='personalize.db'), "
                "or state=None for a store that lives only in this process"
            )
        self.timeout = timeout
        self._check_header()
        try:
            self._db = sqlite3.connect(
                self.path, timeout=timeout, check_same_thread=False, isolation_level=None
            )
        except sqlite3.Error as exc:
            raise ConfigurationError(
                f"cannot open the state store {self.path!r}: {exc}; check that its directory "
                "exists and is writable, or point state= at another file"
            ) from exc
        self._lock = threading.RLock()
        try:
            self._init()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise ConfigurationError(
                f"{self.path!r} is not a usable state store ({exc}); point state= at a new file"
            ) from exc
        except BaseException:
            self._db.close()
            raise

    def _check_header(self) -> None:
        """Refuse a file that is not an SQLite database before SQLite touches it."""
        try:
            with open(self.path, "rb") as f:
                head = f.read(16)
        except FileNotFoundError:
            return
        except IsADirectoryError:
            raise ConfigurationError(
                f"the state store {self.path!r} is a directory; point state= at a file in it, "
                f"e.g. {os.path.join(self.path, 'personalize_state.db')!r}"
            ) from None
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the state store {self.path!r}: {exc}; check its permissions"
            ) from exc
        if head and head != _SQLITE_MAGIC:
            raise ConfigurationError(
                f"{self.path!r} is not a usable state store (not an SQLite database); it was "
                "left untouched: point state= at a new file"
            )

    def _init(self) -> None:
        db = self._db
        # Every check that may refuse the file happens before anything writes to it (the WAL
        # pragma rewrites the header), so a refused file is left exactly as it was.
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"the state store {self.path!r} was written by a newer version of "
                f"contentstack-personalize (schema {version}, this one reads up to "
                f"{SCHEMA_VERSION}); upgrade the library or use another file"
            )
        if version == 0 and tables and "user_state" not in tables:
            raise ConfigurationError(
                f"{self.path!r} is an SQLite database that is not a sync state store "
                f"(it has tables {sorted(tables)}); point state= at a new file"
            )
        if version == 0 and "user_state" in tables:
            raise ConfigurationError(
                f"the state store {self.path!r} has no schema version; it was not written by a "
                "released version of this library and cannot be read safely; point state= at a "
                "new file (the first run then sends every user again)"
            )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        if version == 0:
            with self._transaction():
                for statement in _statements(
                    _SCHEMA + _EXCHANGES_SCHEMA + _LOCKS_SCHEMA + _CHANGES_SCHEMA
                ):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            return
        # An older store: apply each migration step in one transaction, so a crash leaves the
        # file at its old version, still readable by the old library and migrated next time.
        if version < SCHEMA_VERSION:
            with self._transaction():
                for step in range(version, SCHEMA_VERSION):
                    for statement in _statements(_MIGRATIONS[step]):
                        db.execute(statement)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            logger.info(
                "migrated the state store %r from schema %d to %d",
                self.path,
                version,
                SCHEMA_VERSION,
            )

    @contextlib.contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        """This object's lock (bounded by ``timeout``) with SQLite errors turned into
        :class:`StateStoreError`."""
        if not self._lock.acquire(timeout=self.timeout):
            raise StateStoreError(
                f"state store {self.path!r}: another thread of this process used it for more "
                f"than {self.timeout:g} s; raise SQLiteState(timeout=) if that is expected"
            )
        try:
            yield self._db
        except sqlite3.Error as exc:
            raise _store_error(self.path, exc, self.timeout) from exc
        finally:
            self._lock.release()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. ``BEGIN IMMEDIATE`` takes the file's write lock (waiting up to
        ``timeout`` for another process); if it cannot, nothing is held afterwards."""
        with self._locked() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def load(self, sync_name: str, uids: Sequence[str]) -> dict[str, UserState]:
        """The known state of ``uids`` (users never seen are absent)."""
        out: dict[str, UserState] = {}
        with self._locked() as db:
            for start in range(0, len(uids), _QUERY_CHUNK):
                part = uids[start : start + _QUERY_CHUNK]
                marks = ",".join("?" * len(part))
                cursor = db.execute(
                    "SELECT uid, attrs, failed_attempts, last_error FROM user_state "
                    f"WHERE sync_name = ? AND uid IN ({marks})",
                    (sync_name, *part),
                )
                for uid, attrs_text, failed, error in cursor:
                    out[uid] = UserState(json.loads(attrs_text), failed, error)
        return out

    @staticmethod
    def _attrs_rows(
        sync_name: str, users: Sequence[tuple[str, dict[str, str | None]]]
    ) -> list[tuple[str, str, str, float]]:
        now = time.time()
        return [
            (sync_name, uid, json.dumps(attrs_, ensure_ascii=False, separators=(",", ":")), now)
            for uid, attrs_ in users
        ]

    def mark_pending(
        self, sync_name: str, pending: Sequence[tuple[str, dict[str, str | None]]]
    ) -> None:
        """Write-ahead: users' attributes with the keys about to be sent unknown (``None``)."""
        if not pending:
            return
        # The mark must be on disk before the requests go out, even across a power cut: with
        # synchronous=NORMAL a WAL commit is not fsynced, and a mark rolled back after the edge
        # applied the change would reopen the lost-answer hole. Acknowledgements stay NORMAL
        # (losing one only means a resend).
        with self._locked() as db:
            db.execute("PRAGMA synchronous=FULL")
            try:
                with self._transaction() as tx:
                    tx.executemany(
                        "INSERT INTO user_state (sync_name, uid, attrs, failed_attempts, "
                        "last_error, updated_at) VALUES (?, ?, ?, 0, NULL, ?) ON CONFLICT "
                        "(sync_name, uid) DO UPDATE SET attrs = excluded.attrs, "
                        "updated_at = excluded.updated_at",
                        self._attrs_rows(sync_name, pending),
                    )
            finally:
                db.execute("PRAGMA synchronous=NORMAL")

    def commit(self, sync_name: str, accepted: Sequence[tuple[str, dict[str, str | None]]]) -> None:
        """Record users' new attributes and clear their failures."""
        if not accepted:
            return
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO user_state (sync_name, uid, attrs, failed_attempts, last_error, "
                "updated_at) VALUES (?, ?, ?, 0, NULL, ?) ON CONFLICT (sync_name, uid) DO UPDATE "
                "SET attrs = excluded.attrs, failed_attempts = 0, last_error = NULL, "
                "updated_at = excluded.updated_at",
                self._attrs_rows(sync_name, accepted),
            )

    def record_failures(self, sync_name: str, failures: Sequence[tuple[str, str]]) -> None:
        """Count one more failed attempt for each ``(uid, error)``."""
        if not failures:
            return
        now = time.time()
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO user_state (sync_name, uid, attrs, failed_attempts, last_error, "
                "updated_at) VALUES (?, ?, '{}', 1, ?, ?) ON CONFLICT (sync_name, uid) DO UPDATE "
                "SET failed_attempts = failed_attempts + 1, last_error = excluded.last_error, "
                "updated_at = excluded.updated_at",
                [(sync_name, uid, error, now) for uid, error in failures],
            )

    def clear_failures(self, sync_name: str, uids: Sequence[str]) -> None:
        """Forget the failures of users that no longer need a request."""
        if not uids:
            return
        with self._transaction() as db:
            db.executemany(
                "UPDATE user_state SET failed_attempts = 0, last_error = NULL "
                "WHERE sync_name = ? AND uid = ?",
                [(sync_name, uid) for uid in uids],
            )

    def acquire_lock(self, name: str, holder: str, ttl: float) -> LockInfo | None:
        """Take lock ``name`` unless another live holder has it (see :class:`StateStore`)."""
        with self._transaction() as db:
            now = time.time()
            row = db.execute(
                "SELECT holder, acquired_at, expires_at FROM locks WHERE name = ?", (name,)
            ).fetchone()
            if row is not None and row[0] != holder and row[2] > now:
                return LockInfo(name=name, holder=row[0], acquired_at=row[1], expires_at=row[2])
            since = row[1] if row is not None and row[0] == holder else now
            db.execute(
                "INSERT OR REPLACE INTO locks (name, holder, acquired_at, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (name, holder, since, now + ttl),
            )
            return None

    def renew_lock(self, name: str, holder: str, ttl: float) -> bool:
        """Extend our lock; ``False`` if another holder has it now."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE locks SET expires_at = ? WHERE name = ? AND holder = ?",
                (time.time() + ttl, name, holder),
            )
            return cursor.rowcount == 1

    def release_lock(self, name: str, holder: str) -> None:
        """Release lock ``name`` if ``holder`` has it."""
        with self._transaction() as db:
            db.execute("DELETE FROM locks WHERE name = ? AND holder = ?", (name, holder))

    def forget(self, sync_name: str) -> None:
        """Drop all user state of one sync (its history stays)."""
        with self._transaction() as db:
            db.execute("DELETE FROM user_state WHERE sync_name = ?", (sync_name,))

    def save_run(self, record: RunRecord) -> None:
        """Insert or update a run record."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO runs (run_id, sync_name, started_at, finished_at, status, "
                "counts, error) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.run_id,
                    record.sync_name,
                    record.started_at,
                    record.finished_at,
                    record.status,
                    json.dumps(record.counts),
                    record.error,
                ),
            )

    def runs(self, sync_name: str, limit: int = 50) -> list[RunRecord]:
        """The latest runs of a sync, newest first."""
        with self._locked() as db:
            cursor = db.execute(
                "SELECT run_id, sync_name, started_at, finished_at, status, counts, error "
                "FROM runs WHERE sync_name = ? ORDER BY started_at DESC LIMIT ?",
                (sync_name, limit),
            )
            return [RunRecord.from_row(r) for r in cursor]

    def get_meta(self, sync_name: str, key: str) -> str | None:
        """A small per-sync value, or ``None``."""
        with self._locked() as db:
            row = db.execute(
                "SELECT value FROM sync_meta WHERE sync_name = ? AND key = ?", (sync_name, key)
            ).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, sync_name: str, key: str, value: str | None) -> None:
        """Set or (with ``None``) delete a per-sync value."""
        with self._transaction() as db:
            if value is None:
                db.execute(
                    "DELETE FROM sync_meta WHERE sync_name = ? AND key = ?", (sync_name, key)
                )
            else:
                db.execute(
                    "INSERT OR REPLACE INTO sync_meta (sync_name, key, value) VALUES (?, ?, ?)",
                    (sync_name, key, value),
                )

    def save_exchanges(
        self, sync_name: str, run_id: str, records: Sequence[Mapping[str, Any]]
    ) -> None:
        """Keep a debugger's records with run ``run_id`` (see :class:`ExchangeStore`)."""
        if not records:
            return
        rows = [
            (
                sync_name,
                run_id,
                *exchange_columns(r),
                json.dumps(dict(r), ensure_ascii=False, separators=(",", ":")),
            )
            for r in records
        ]
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO exchanges (sync_name, run_id, seq, time, uid, status, ok, record) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def exchanges(
        self,
        sync_name: str,
        run_id: str | None = None,
        uid: str | None = None,
        limit: int = DEFAULT_EXCHANGE_LIMIT,
        *,
        failed_only: bool = False,
    ) -> list[dict[str, Any]]:
        """The most recent ``limit`` stored exchanges matching the filters, oldest first."""
        _check_limit(limit)
        where, params = sql_filters(sync_name, run_id, uid, mark="?")
        if failed_only:
            where.append("ok = 0")
        with self._locked() as db:
            cursor = db.execute(
                f"SELECT record FROM exchanges WHERE {' AND '.join(where)} "
                "ORDER BY time DESC, seq DESC, id DESC LIMIT ?",
                (*params, limit),
            )
            found = [json.loads(row[0]) for row in cursor]
        found.reverse()
        return found

    def prune_exchanges(self, older_than: float) -> int:
        """Delete exchanges that happened before ``older_than``; return how many."""
        with self._transaction() as db:
            cursor = db.execute("DELETE FROM exchanges WHERE time < ?", (older_than,))
            return int(cursor.rowcount)

    # -- change log -----------------------------------------------------------------------------

    def log_changes(self, sync_name: str, run_id: str, entries: Sequence[ChangeEntry]) -> None:
        """Append ``entries`` to run ``run_id``'s change log (see :class:`ChangeLogStore`)."""
        if not entries:
            return
        now = time.time()
        rows = [(sync_name, run_id, now, *entry.columns()) for entry in entries]
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO changes (sync_name, run_id, time, uid, outcome, keys, new_values, "
                "old_values, status, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def changes(
        self,
        sync_name: str,
        *,
        run_id: str | None = None,
        uid: str | None = None,
        limit: int = DEFAULT_CHANGE_LIMIT,
    ) -> list[ChangeEntry]:
        """The newest ``limit`` change-log entries matching the filters, newest first."""
        _check_limit(limit)
        where, params = sql_filters(sync_name, run_id, uid, mark="?")
        with self._locked() as db:
            cursor = db.execute(
                "SELECT run_id, time, uid, outcome, new_values, old_values, status, error "
                f"FROM changes WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
                (*params, limit),
            )
            return [ChangeEntry.from_columns(row) for row in cursor]

    def prune_changes(self, older_than: float) -> int:
        """Delete change-log entries logged before ``older_than``; return how many."""
        with self._transaction() as db:
            cursor = db.execute("DELETE FROM changes WHERE time < ?", (older_than,))
            return int(cursor.rowcount)

    def user_count(self, sync_name: str) -> int:
        """How many users the store knows for ``sync_name``."""
        with self._locked() as db:
            row = db.execute(
                "SELECT count(*) FROM user_state WHERE sync_name = ?", (sync_name,)
            ).fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"SQLiteState({self.path!r})"
