"""Sync state: per user, the last attribute values the edge *accepted* and the keys whose value on
the edge is *unknown* (sent without an acknowledgement), the failure count of users not yet
accepted, the run history, one lock per sync, small per-sync metadata (alert states, the
destination), and the API exchanges a debugger chose to keep with a run (with a retention period).

Two stores share one interface: :class:`SQLiteState` (a file; WAL, transactions, schema version)
and :class:`MemoryState` (tests, notebooks, throwaway runs). Many syncs can share one store: every
record is keyed by the sync's name. The protocol a run follows with them (write-ahead of pending
keys, acknowledgements, the lock) is described in docs/guarantees.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from ..errors import ConfigurationError, StateStoreError

logger = logging.getLogger("contentstack_personalize.sync")

__all__ = [
    "ExchangeStore",
    "LockInfo",
    "MemoryState",
    "RunRecord",
    "SQLiteState",
    "StateStore",
    "UserState",
    "open_state",
]

#: Version 2 added the ``exchanges`` table (debugger persistence), version 3 the ``locks`` table
#: (one run per sync) and unknown keys (``null`` in a user's ``attrs``); older files are migrated.
SCHEMA_VERSION = 3
#: Most exchanges ``exchanges()`` returns unless told otherwise.
DEFAULT_EXCHANGE_LIMIT = 1000
_QUERY_CHUNK = 900  # below SQLite's historical 999-parameter limit


@attrs.frozen
class UserState:
    """What the store knows of one user for one sync.

    ``attrs`` maps attribute key -> canonical JSON of the last value the edge accepted, or
    ``None`` when the edge's value is unknown: the key was sent and no acknowledgement was
    recorded (a lost answer, a 5xx, a kill). Unknown keys are sent again on the next run
    whatever the source says.

    Example::

        state = SQLiteState("users.db").load(sync.name, ["user-42"]).get("user-42")
        if state is not None and state.failed_attempts:
            print(state.failed_attempts, state.last_error)
    """

    attrs: dict[str, str | None]
    failed_attempts: int = 0
    last_error: str | None = None

    @property
    def unknown_keys(self) -> list[str]:
        """Keys whose value on the edge is unknown (pending or left by an unanswered send)."""
        return [key for key, value in self.attrs.items() if value is None]

    @property
    def accepted(self) -> dict[str, str]:
        """The keys the edge acknowledged, with their canonical JSON."""
        return {key: value for key, value in self.attrs.items() if value is not None}


@attrs.frozen(kw_only=True)
class LockInfo:
    """Who holds a sync's lock: the ``holder`` text its run gave (JSON with ``host``, ``pid``,
    ``run_id``), since when and until when (Unix times) unless renewed."""

    name: str
    holder: str
    acquired_at: float
    expires_at: float

    def describe(self) -> dict[str, Any]:
        """The holder's fields plus ``since`` and ``expires`` (Unix times)."""
        try:
            data = json.loads(self.holder)
        except ValueError:
            data = {"holder": self.holder}
        if not isinstance(data, dict):
            data = {"holder": self.holder}
        return {**data, "since": self.acquired_at, "expires": self.expires_at}


@attrs.frozen(kw_only=True)
class RunRecord:
    """One run in the history (see ``Sync.history()``).

    ``status`` is ``"running"`` while a run goes (and stays so if the process died), else the
    run's final status; ``counts`` holds the result's counts plus ``requests``.

    Example::

        for run in sync.history(limit=10):
            print(run.run_id, run.status, run.duration, run.counts.get("rejected"), run.error)
    """

    run_id: str
    sync_name: str
    started_at: float
    finished_at: float | None
    status: str
    counts: dict[str, int]
    error: str | None = None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> RunRecord:
        """From a ``runs`` table row: run_id, sync_name, started_at, finished_at, status,
        counts (JSON text), error (every SQL store keeps this layout)."""
        return cls(
            run_id=row[0],
            sync_name=row[1],
            started_at=row[2],
            finished_at=row[3],
            status=row[4],
            counts=json.loads(row[5]),
            error=row[6],
        )

    @property
    def duration(self) -> float | None:
        """Seconds the run took, or ``None`` when it has not finished (or never did)."""
        return None if self.finished_at is None else self.finished_at - self.started_at


@runtime_checkable
class StateStore(Protocol):
    """What the sync engine needs from a state store.

    :class:`MemoryState` and :class:`SQLiteState` implement it; any object with these methods
    can be passed as ``Sync(..., state=...)``. Methods may be called from worker threads.

    Example::

        store = SQLiteState("users.db")
        assert isinstance(store, StateStore)
        sync = Sync(client, match_on="id", mapping={"plan": "plan"}, state=store)
    """

    def load(self, sync_name: str, uids: Sequence[str]) -> dict[str, UserState]:
        """The known state of ``uids`` (users never seen are absent)."""
        ...

    def mark_pending(
        self, sync_name: str, pending: Sequence[tuple[str, dict[str, str | None]]]
    ) -> None:
        """Write-ahead, before a batch is sent: store each user's attributes (the full set) with
        the keys about to be sent set to ``None`` (unknown). Failures are kept."""
        ...

    def commit(self, sync_name: str, accepted: Sequence[tuple[str, dict[str, str | None]]]) -> None:
        """Record users' new attributes (the full set, acknowledged keys with their value) and
        clear their failures."""
        ...

    def record_failures(self, sync_name: str, failures: Sequence[tuple[str, str]]) -> None:
        """Count one more failed attempt for each ``(uid, error)``."""
        ...

    def clear_failures(self, sync_name: str, uids: Sequence[str]) -> None:
        """Forget the failures of users that no longer need a request."""
        ...

    def forget(self, sync_name: str) -> None:
        """Drop all user state of one sync (its history stays)."""
        ...

    def save_run(self, record: RunRecord) -> None:
        """Insert or update a run record."""
        ...

    def runs(self, sync_name: str, limit: int = 50) -> list[RunRecord]:
        """The latest runs of a sync, newest first."""
        ...

    def get_meta(self, sync_name: str, key: str) -> str | None:
        """A small per-sync value (e.g. an alert's state)."""
        ...

    def set_meta(self, sync_name: str, key: str, value: str | None) -> None:
        """Set or (with ``None``) delete a per-sync value."""
        ...

    def acquire_lock(self, name: str, holder: str, ttl: float) -> LockInfo | None:
        """Take lock ``name`` for ``ttl`` seconds unless another holder has it and it has not
        expired. Returns ``None`` when taken (or already ours), else the current holder. Never
        waits for the lock (callers poll)."""
        ...

    def renew_lock(self, name: str, holder: str, ttl: float) -> bool:
        """Extend our lock by ``ttl`` seconds from now; ``False`` if it is no longer ours."""
        ...

    def release_lock(self, name: str, holder: str) -> None:
        """Release lock ``name`` if ``holder`` has it (a no-op otherwise)."""
        ...

    def close(self) -> None:
        """Release the store's resources."""
        ...


@runtime_checkable
class ExchangeStore(Protocol):
    """A store that can keep a debugger's exchanges with their run (optional for a
    :class:`StateStore`; ``SQLiteState`` and ``MemoryState`` are both).

    Records are the dicts of ``DebugRecord.to_dict()``: at least ``time`` (a Unix timestamp),
    ``user_uid``, ``status`` and ``seq``.

    Example::

        store.save_exchanges("users", run_id, [r.to_dict() for r in debugger.failed()])
        store.exchanges("users", uid="user-42")
        store.prune_exchanges(time.time() - 7 * 86400)
    """

    def save_exchanges(
        self, sync_name: str, run_id: str, records: Sequence[Mapping[str, Any]]
    ) -> None:
        """Keep ``records`` as exchanges of run ``run_id`` of ``sync_name``."""
        ...

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
        ...

    def prune_exchanges(self, older_than: float) -> int:
        """Delete exchanges that happened before ``older_than`` (Unix time); return how many."""
        ...


def exchange_columns(record: Mapping[str, Any]) -> tuple[int, float, str | None, int | None, bool]:
    """The columns every store keeps beside an exchange record for filtering and retention:
    ``(seq, time, uid, status, ok)``."""
    status = record.get("status")
    uid = record.get("user_uid")
    return (
        int(record.get("seq") or 0),
        float(record.get("time") or time.time()),
        None if uid is None else str(uid),
        status if isinstance(status, int) else None,
        _record_ok(record),
    )


def _record_ok(record: Mapping[str, Any]) -> bool:
    status = record.get("status")
    return isinstance(status, int) and 200 <= status < 300


def _check_limit(limit: int) -> None:
    if not isinstance(limit, int) or limit < 1:
        raise ConfigurationError(
            f"limit must be a positive integer, got {limit!r}; pass e.g. limit=50"
        )


class MemoryState:
    """State kept in this process only: a rerun in the same process is incremental, a new
    process starts from nothing (and so sends every user again).

    Example: ``Sync(client, match_on="id", mapping={...}, state=MemoryState())``
    """

    def __init__(self) -> None:
        self._users: dict[tuple[str, str], UserState] = {}
        self._runs: dict[str, RunRecord] = {}
        self._meta: dict[tuple[str, str], str] = {}
        self._exchanges: list[tuple[str, str, dict[str, Any]]] = []
        self._locks: dict[str, LockInfo] = {}
        self._lock = threading.Lock()

    def load(self, sync_name: str, uids: Sequence[str]) -> dict[str, UserState]:
        """The known state of ``uids`` (users never seen are absent)."""
        with self._lock:
            out = {}
            for uid in uids:
                state = self._users.get((sync_name, uid))
                if state is not None:
                    out[uid] = state
            return out

    def mark_pending(
        self, sync_name: str, pending: Sequence[tuple[str, dict[str, str | None]]]
    ) -> None:
        """Write-ahead: users' attributes with the keys about to be sent unknown (``None``)."""
        with self._lock:
            for uid, attrs_ in pending:
                old = self._users.get((sync_name, uid))
                failed, error = (old.failed_attempts, old.last_error) if old else (0, None)
                self._users[(sync_name, uid)] = UserState(dict(attrs_), failed, error)

    def commit(self, sync_name: str, accepted: Sequence[tuple[str, dict[str, str | None]]]) -> None:
        """Record users' new attributes and clear their failures."""
        with self._lock:
            for uid, attrs_ in accepted:
                self._users[(sync_name, uid)] = UserState(dict(attrs_))

    def record_failures(self, sync_name: str, failures: Sequence[tuple[str, str]]) -> None:
        """Count one more failed attempt for each ``(uid, error)``."""
        with self._lock:
            for uid, error in failures:
                old = self._users.get((sync_name, uid), UserState({}))
                self._users[(sync_name, uid)] = UserState(old.attrs, old.failed_attempts + 1, error)

    def clear_failures(self, sync_name: str, uids: Sequence[str]) -> None:
        """Forget the failures of users that no longer need a request."""
        with self._lock:
            for uid in uids:
                old = self._users.get((sync_name, uid))
                if old is not None and old.failed_attempts:
                    self._users[(sync_name, uid)] = UserState(old.attrs)

    def forget(self, sync_name: str) -> None:
        """Drop all user state of one sync (its history stays)."""
        with self._lock:
            for key in [k for k in self._users if k[0] == sync_name]:
                del self._users[key]

    def save_run(self, record: RunRecord) -> None:
        """Insert or update a run record."""
        with self._lock:
            self._runs[record.run_id] = record

    def runs(self, sync_name: str, limit: int = 50) -> list[RunRecord]:
        """The latest runs of a sync, newest first."""
        with self._lock:
            mine = [r for r in self._runs.values() if r.sync_name == sync_name]
        mine.sort(key=lambda r: r.started_at, reverse=True)
        return mine[:limit]

    def get_meta(self, sync_name: str, key: str) -> str | None:
        """A small per-sync value, or ``None``."""
        with self._lock:
            return self._meta.get((sync_name, key))

    def set_meta(self, sync_name: str, key: str, value: str | None) -> None:
        """Set or (with ``None``) delete a per-sync value."""
        with self._lock:
            if value is None:
                self._meta.pop((sync_name, key), None)
            else:
                self._meta[(sync_name, key)] = value

    def save_exchanges(
        self, sync_name: str, run_id: str, records: Sequence[Mapping[str, Any]]
    ) -> None:
        """Keep a debugger's records with run ``run_id`` (see :class:`ExchangeStore`)."""
        copies = [(sync_name, run_id, json.loads(json.dumps(dict(r)))) for r in records]
        with self._lock:
            self._exchanges.extend(copies)

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
        with self._lock:
            mine = [
                dict(rec)
                for name, run, rec in self._exchanges
                if name == sync_name
                and (run_id is None or run == run_id)
                and (uid is None or rec.get("user_uid") == uid)
                and not (failed_only and _record_ok(rec))
            ]
        mine.sort(key=lambda r: (r.get("time") or 0.0, r.get("seq") or 0))
        return mine[-limit:]

    def prune_exchanges(self, older_than: float) -> int:
        """Delete exchanges that happened before ``older_than``; return how many."""
        with self._lock:
            before = len(self._exchanges)
            self._exchanges = [
                e for e in self._exchanges if (e[2].get("time") or 0.0) >= older_than
            ]
            return before - len(self._exchanges)

    def user_count(self, sync_name: str) -> int:
        """How many users the store knows for ``sync_name``."""
        with self._lock:
            return sum(1 for k in self._users if k[0] == sync_name)

    def acquire_lock(self, name: str, holder: str, ttl: float) -> LockInfo | None:
        """Take lock ``name`` unless another live holder has it (see :class:`StateStore`)."""
        now = time.time()
        with self._lock:
            current = self._locks.get(name)
            if current is not None and current.holder != holder and current.expires_at > now:
                return current
            since = current.acquired_at if current and current.holder == holder else now
            self._locks[name] = LockInfo(
                name=name, holder=holder, acquired_at=since, expires_at=now + ttl
            )
            return None

    def renew_lock(self, name: str, holder: str, ttl: float) -> bool:
        """Extend our lock; ``False`` if another holder has it now."""
        with self._lock:
            current = self._locks.get(name)
            if current is None or current.holder != holder:
                return False
            self._locks[name] = attrs.evolve(current, expires_at=time.time() + ttl)
            return True

    def release_lock(self, name: str, holder: str) -> None:
        """Release lock ``name`` if ``holder`` has it."""
        with self._lock:
            current = self._locks.get(name)
            if current is not None and current.holder == holder:
                del self._locks[name]

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"MemoryState(users={len(self._users)})"


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

#: ``{from_version: statements}``: each step brings a file from that version to the next.
_MIGRATIONS: dict[int, str] = {1: _EXCHANGES_SCHEMA, 2: _LOCKS_SCHEMA}

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
                for statement in _statements(_SCHEMA + _EXCHANGES_SCHEMA + _LOCKS_SCHEMA):
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
        where = ["sync_name = ?"]
        params: list[Any] = [sync_name]
        if run_id is not None:
            where.append("run_id = ?")
            params.append(run_id)
        if uid is not None:
            where.append("uid = ?")
            params.append(uid)
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


def open_state(state: StateStore | str | os.PathLike[str] | None) -> tuple[StateStore, bool]:
    """Turn the ``state=`` argument into a store; the flag says whether we own (and close) it.

    ``None`` and ``":memory:"`` give a :class:`MemoryState`; a path or an ``sqlite:///path`` URL
    an :class:`SQLiteState`; a ``postgresql://`` (or ``postgres://``) URL a
    :class:`~contentstack_personalize.sync.postgres.PostgresState` (``?schema=`` names its
    schema; needs the ``[postgres]`` extra); an empty text is refused (it would silently be a
    throwaway store).
    """
    if state is None:
        return MemoryState(), True
    if isinstance(state, (str, os.PathLike)):
        text = os.fsdecode(os.fspath(state))
        if isinstance(state, str) and text.lower().startswith(("postgresql://", "postgres://")):
            from .postgres import PostgresState  # psycopg is imported only now

            return PostgresState(text), True
        if text.startswith("sqlite://"):
            text = text[len("sqlite://") :]
            text = text[1:] if text.startswith("/") else text  # sqlite:///rel, sqlite:////abs
        if not text.strip():
            raise ConfigurationError(
                "state is empty text; pass a file path (state='personalize_state.db'), "
                "or state=None for a store that lives only in this process"
            )
        if text == ":memory:":
            return MemoryState(), True
        return SQLiteState(text), True
    given: object = state  # callers may pass anything at run time
    if isinstance(given, StateStore):
        return given, False
    missing = [
        name
        for name in ("load", "mark_pending", "commit", "acquire_lock", "renew_lock", "release_lock")
        if not callable(getattr(given, name, None))
    ]
    hint = f" (it lacks {', '.join(missing)}: see the StateStore protocol)" if missing else ""
    raise ConfigurationError(
        "state must be a file path, a postgresql:// URL, MemoryState(), SQLiteState(...) or "
        f"another StateStore, not {type(state).__name__}{hint}"
    )
