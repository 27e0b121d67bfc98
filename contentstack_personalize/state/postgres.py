"""Sync state in PostgreSQL: for workers whose disk does not outlive a run (Airflow, Dagster,
Prefect, Kubernetes jobs, CI runners), so the next run on another machine is still incremental.

``Sync(..., state="postgresql://user@host:5432/db")`` (or ``postgres://``) opens a
:class:`PostgresState`; its tables live in one schema, ``contentstack_personalize`` unless the URL
says ``?schema=name`` or ``PostgresState(url, schema=...)`` names another, so the store can sit
in a shared database next to other data. It needs psycopg 3: ``pip install
'contentstack-personalize[postgres]'`` (imported only when a store is opened).

The semantics are those of :class:`~contentstack_personalize.sync.SQLiteState` (the same
conformance suite runs against both): write-ahead of pending keys, acknowledgements that clear
failures, run history, per-sync metadata, a debugger's exchanges with retention, and one lease row
per lock. Lease times are taken from the database server's clock, so workers on machines whose
clocks disagree still agree on when a lease expires. Every statement is bounded by
``statement_timeout`` and ``lock_timeout`` (``timeout=`` seconds), and a failure becomes
:class:`~contentstack_personalize.errors.StateStoreError` saying what to do.

Example::

    from contentstack_personalize.state.postgres import PostgresState

    store = PostgresState("postgresql://sync@db.internal/analytics", schema="personalize")
    sync = Sync(client, match_on="user_id", mapping={"plan": "plan"}, state=store)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    import psycopg

logger = logging.getLogger("contentstack_personalize.sync")

__all__ = ["DEFAULT_SCHEMA", "SCHEMA_VERSION", "PostgresState", "is_postgres_url"]

#: The schema the tables go in unless told otherwise.
DEFAULT_SCHEMA = "contentstack_personalize"
#: The version of the tables this code writes; a schema at a higher version is refused.
SCHEMA_VERSION = 2
#: Most users per statement (one round trip each); the engine loads 500 at a time.
_CHUNK = 5000
_KINDS = ("data", "ack", "read", "lease")
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

# Version 1: every table. ``{s}`` is the quoted schema name. Times are Unix seconds (double
# precision), as in SQLiteState; ``attrs`` maps each key to the canonical JSON text the edge
# accepted, or null when the edge's value is unknown.
_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS {s}.user_state (
    sync_name text NOT NULL,
    uid text NOT NULL,
    attrs jsonb NOT NULL,
    failed_attempts integer NOT NULL DEFAULT 0,
    last_error text,
    updated_at double precision NOT NULL,
    PRIMARY KEY (sync_name, uid)
);
CREATE TABLE IF NOT EXISTS {s}.runs (
    run_id text PRIMARY KEY,
    sync_name text NOT NULL,
    started_at double precision NOT NULL,
    finished_at double precision,
    status text NOT NULL,
    counts jsonb NOT NULL,
    error text
);
CREATE INDEX IF NOT EXISTS runs_by_sync ON {s}.runs (sync_name, started_at);
CREATE TABLE IF NOT EXISTS {s}.sync_meta (
    sync_name text NOT NULL,
    key text NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (sync_name, key)
);
CREATE TABLE IF NOT EXISTS {s}.exchanges (
    id bigserial PRIMARY KEY,
    sync_name text NOT NULL,
    run_id text NOT NULL,
    seq integer NOT NULL,
    time double precision NOT NULL,
    uid text,
    status integer,
    ok boolean NOT NULL,
    record jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS exchanges_by_run ON {s}.exchanges (sync_name, run_id, time);
CREATE INDEX IF NOT EXISTS exchanges_by_uid ON {s}.exchanges (sync_name, uid, time);
CREATE INDEX IF NOT EXISTS exchanges_by_time ON {s}.exchanges (time);
CREATE TABLE IF NOT EXISTS {s}.locks (
    name text PRIMARY KEY,
    holder text NOT NULL,
    acquired_at double precision NOT NULL,
    expires_at double precision NOT NULL
);
"""

# Version 2: the change log, per run and user: what was sent and how it ended (ChangeEntry). The
# values are JSON objects holding the values themselves: ``new_values->>'plan'`` reads in SQL.
_CHANGES_SCHEMA = """
CREATE TABLE IF NOT EXISTS {s}.changes (
    id bigserial PRIMARY KEY,
    sync_name text NOT NULL,
    run_id text NOT NULL,
    time double precision NOT NULL,
    uid text NOT NULL,
    outcome text NOT NULL,
    keys jsonb NOT NULL,
    new_values jsonb NOT NULL,
    old_values jsonb NOT NULL,
    status integer,
    error text
);
CREATE INDEX IF NOT EXISTS changes_by_run ON {s}.changes (sync_name, run_id);
CREATE INDEX IF NOT EXISTS changes_by_uid ON {s}.changes (sync_name, uid);
CREATE INDEX IF NOT EXISTS changes_by_time ON {s}.changes (time);
"""

#: ``{from_version: statements}``: each step brings a schema from that version to the next, all
#: steps of one upgrade in one transaction (PostgreSQL's DDL is transactional).
_MIGRATIONS: dict[int, str] = {1: _CHANGES_SCHEMA}

#: The server's clock as Unix seconds (lease times come from it).
_NOW = "extract(epoch from clock_timestamp())::double precision"


def is_postgres_url(text: str) -> bool:
    """Whether ``state=`` text names a PostgreSQL database."""
    low = text.lower()
    return low.startswith(("postgresql://", "postgres://"))


def _split_url(url: str) -> tuple[str, str | None]:
    """The URL without our ``schema`` query parameter (libpq refuses unknown ones), and that
    parameter's value."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    schemas = [v for k, v in query if k == "schema"]
    rest = [(k, v) for k, v in query if k != "schema"]
    clean = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(rest)))
    return clean, (schemas[-1] if schemas else None)


def _describe(params: Mapping[str, Any], schema: str) -> str:
    """Where the store is, for messages and ``repr``: never the password."""
    user = params.get("user") or ""
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    db = params.get("dbname") or user
    return f"postgresql://{user + '@' if user else ''}{host}:{port}/{db} (schema {schema})"


def _advice(exc: BaseException, timeout: float) -> str:
    """What to do about a database error, from its SQLSTATE class."""
    code = str(getattr(exc, "sqlstate", None) or "")
    text = str(exc).lower()
    if code in ("57014", "55P03") or "timeout" in text:
        return (
            f"a statement or a lock wait took more than {timeout:g} s (another session may hold "
            "a lock on the state tables: look at pg_stat_activity); raise "
            "PostgresState(timeout=) if that is expected"
        )
    if code.startswith("28"):
        return "the database refused the credentials; check the user and password in state="
    if code == "3D000":
        return "the database does not exist; create it or fix its name in state="
    if code.startswith("42501") or "permission denied" in text:
        return (
            "the database user lacks a privilege on the state schema; grant it USAGE and CREATE "
            "on the schema (and on the database to create it), or name a schema it owns with "
            "?schema="
        )
    if code in ("53100",) or "no space" in text:
        return "the database server's disk is full; free space. What was acknowledged is kept"
    if code.startswith("08") or "connection" in text or "server closed" in text:
        return (
            "the connection to the database failed or was lost; check that the server is up and "
            "reachable. The next operation reconnects; what was committed is kept"
        )
    if code.startswith("25") or code.startswith("40"):
        return "the transaction was rolled back by the server; running the sync again is safe"
    return "check the database server's log"


class PostgresState:
    """Sync state in a PostgreSQL schema (see the module's documentation).

    - ``url``: ``postgresql://user:password@host:port/dbname`` (any libpq URL; ``?schema=``
      names the schema; the password may also come from ``PGPASSWORD`` or ``~/.pgpass``).
    - ``schema``: the schema holding the tables (default ``contentstack_personalize``),
      created if missing.
    - ``timeout``: seconds any statement or lock wait may take (also the connect timeout),
      after which the operation raises :class:`StateStoreError`.

    Thread-safe: the sync calls it from its commit thread, its lock-renewal thread and the
    event loop. Data and lease operations use separate connections, so renewing a lease never
    waits behind a large load. A lost connection is reopened by the next operation.

    Example::

        store = PostgresState("postgresql://sync@db/analytics", schema="personalize")
        Sync(client, match_on="id", mapping={"plan": "plan"}, state=store).run(rows)
    """

    def __init__(self, url: str, *, schema: str | None = None, timeout: float = 30.0) -> None:
        if not isinstance(url, str) or not is_postgres_url(url):
            raise ConfigurationError(
                "PostgresState needs a URL like postgresql://user@host:5432/dbname"
            )
        if not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ConfigurationError("timeout must be a positive number of seconds")
        try:
            import psycopg
            import psycopg.conninfo
        except ImportError as exc:
            raise ConfigurationError(
                "state=postgresql://... needs psycopg 3; install it with "
                "pip install 'contentstack-personalize[postgres]'"
            ) from exc
        self._psycopg = psycopg
        clean, from_url = _split_url(url)
        if schema is not None and from_url is not None and schema != from_url:
            raise ConfigurationError(
                f"the schema is named twice: {from_url!r} in the URL and {schema!r} in "
                "schema=; keep one"
            )
        name = schema if schema is not None else (from_url or DEFAULT_SCHEMA)
        if not isinstance(name, str) or not _SCHEMA_NAME.match(name):
            raise ConfigurationError(
                f"schema must be a plain SQL identifier (letters, digits, _; at most 63), "
                f"got {name!r}"
            )
        try:
            params = psycopg.conninfo.conninfo_to_dict(clean)
        except psycopg.Error as exc:
            raise ConfigurationError(
                f"state= is not a valid PostgreSQL URL ({exc}); use "
                "postgresql://user:password@host:5432/dbname"
            ) from None
        self.schema = name
        self.timeout = float(timeout)
        self.where = _describe(params, name)
        # Defaults a user's URL may override: bounded connects and dead-peer detection, so a
        # network partition cannot leave a call waiting on a socket forever.
        defaults: dict[str, Any] = {
            "connect_timeout": max(1, round(self.timeout)),
            "application_name": "contentstack-personalize",
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "tcp_user_timeout": int(self.timeout * 1000),
        }
        self._params = {**defaults, **params}
        self._q = f'"{name}"'
        # One connection per kind of work, each used by one thread at a time: durable writes,
        # acknowledgements (asynchronous commit, see _connect), reads (which never wait behind
        # a commit: MVCC) and leases (a renewal never waits behind a large write). Opened on
        # first use.
        self._locks = {kind: threading.RLock() for kind in _KINDS}
        self._conns: dict[str, psycopg.Connection[Any] | None] = dict.fromkeys(_KINDS)
        self._closed = False
        # Rows written since the planner's statistics of user_state were last refreshed, and
        # the table's size then (see _keep_statistics).
        self._written = 0
        self._analyzed_rows = 0.0
        self._can_analyze = True
        try:
            with self._connection("data") as conn:
                self._init(conn)
                self._keep_statistics(conn, 0)
        except BaseException:
            self.close()
            raise

    # -- connections ----------------------------------------------------------------------------

    def _connect(self, kind: str) -> psycopg.Connection[Any]:
        import psycopg

        try:
            # No server-side prepared statements: they break behind PgBouncer's transaction
            # pooling, and planning these statements costs little next to running them.
            conn = psycopg.connect(autocommit=True, prepare_threshold=None, **self._params)
        except psycopg.Error as exc:
            raise StateStoreError(
                f"state store {self.where}: cannot connect: {exc}: {_advice(exc, self.timeout)}"
            ) from exc
        ms = int(self.timeout * 1000)
        try:
            conn.execute(
                f"SET statement_timeout = {ms}; SET lock_timeout = {ms}; "
                f"SET idle_in_transaction_session_timeout = {max(ms * 2, 60000)}"
            )
            if kind == "ack":
                # Acknowledgements need not wait for the disk: one lost in a crash of the
                # database server leaves its keys pending, so they are sent again (the protocol
                # in docs/guarantees.md). The next write-ahead, a synchronous commit, flushes
                # every earlier acknowledgement with it. Write-aheads stay synchronous: losing
                # one could leave an old value claimed for a key the edge has replaced.
                conn.execute("SET synchronous_commit = off")
        except psycopg.Error as exc:
            conn.close()
            raise StateStoreError(
                f"state store {self.where}: {exc}: {_advice(exc, self.timeout)}"
            ) from exc
        return conn

    @contextlib.contextmanager
    def _connection(self, kind: str) -> Iterator[psycopg.Connection[Any]]:
        """The ``data`` (writes), ``ack`` (acknowledgements and failure counts: asynchronous
        commit), ``read`` or ``lease`` connection, for this thread alone until
        the block ends (waiting at most ``timeout`` for another thread); database errors become
        :class:`StateStoreError` and a broken connection is dropped, to be reopened."""
        lock = self._locks[kind]
        if not lock.acquire(timeout=self.timeout):
            raise StateStoreError(
                f"state store {self.where}: another thread of this process used it for more "
                f"than {self.timeout:g} s; raise PostgresState(timeout=) if that is expected"
            )
        try:
            if self._closed:
                raise StateStoreError(f"state store {self.where}: the store was closed")
            conn = self._conns[kind]
            if conn is None or conn.closed:
                conn = self._conns[kind] = self._connect(kind)
            try:
                yield conn
            except self._psycopg.Error as exc:
                if conn.broken or conn.closed:
                    with contextlib.suppress(Exception):
                        conn.close()
                    self._conns[kind] = None
                raise StateStoreError(
                    f"state store {self.where}: {str(exc).strip()}: {_advice(exc, self.timeout)}"
                ) from exc
        finally:
            lock.release()

    @staticmethod
    def _write_chunks(
        conn: psycopg.Connection[Any], statement: str, params: list[tuple[Any, ...]]
    ) -> None:
        """One statement per chunk, all in one transaction (a single chunk is one statement,
        atomic on its own: one round trip)."""
        if len(params) == 1:
            conn.execute(statement, params[0])
            return
        with conn.transaction():
            for p in params:
                conn.execute(statement, p)

    # -- schema ---------------------------------------------------------------------------------

    def _keep_statistics(self, conn: psycopg.Connection[Any], written: int) -> None:
        """Refresh the planner's statistics of ``user_state`` each time it has doubled (at least
        every 10,000 rows written) and when it has none. Without them a table that grew from
        empty within a run looks tiny to the planner, which then reads every user of the sync
        to find 500 of them: loads get slower as the run goes on. Autovacuum would catch up
        only later; ``ANALYZE`` samples the table and takes a fraction of a second."""
        if not self._can_analyze:
            return
        self._written += written
        if written and self._written < max(10_000.0, self._analyzed_rows):
            return
        table = f"{self._q}.user_state"
        try:
            row = conn.execute(
                "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (table,)
            ).fetchone()
            rows = float(row[0]) if row else 0.0
            if written or rows < 0:  # -1: never analyzed
                conn.execute(f"ANALYZE {table}")
                row = conn.execute(
                    "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (table,)
                ).fetchone()
                rows = float(row[0]) if row else 0.0
        except self._psycopg.errors.InsufficientPrivilege:
            self._can_analyze = False  # not the table's owner: autovacuum's job then
            return
        except self._psycopg.Error as exc:
            if conn.broken:
                raise
            logger.debug("state store %s: ANALYZE failed: %s", self.where, exc)
            return
        self._written = 0
        self._analyzed_rows = max(rows, 0.0)

    def _init(self, conn: psycopg.Connection[Any]) -> None:
        """Create or migrate the schema, refusing a newer or a foreign one. Two processes
        opening a new store at once are serialized by an advisory lock on the schema's name."""
        s = self._q
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"cp-schema:{s}",))
            exists = conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)
            ).fetchone()
            tables: set[str] = set()
            version = 0
            if exists:
                tables = {
                    r[0]
                    for r in conn.execute(
                        "SELECT tablename FROM pg_tables WHERE schemaname = %s", (self.schema,)
                    )
                }
                if "schema_version" in tables:
                    row = conn.execute(f"SELECT max(version) FROM {s}.schema_version").fetchone()
                    version = int(row[0]) if row and row[0] is not None else 0
                elif tables:
                    raise ConfigurationError(
                        f"the schema {self.schema!r} of {self.where} holds other tables "
                        f"({', '.join(sorted(tables)[:5])}) and no sync state; name another "
                        "schema with ?schema= in state= (or PostgresState(schema=...))"
                    )
            if version > SCHEMA_VERSION:
                raise ConfigurationError(
                    f"the state store {self.where} was written by a newer version of "
                    f"contentstack-personalize (schema {version}, this one reads up to "
                    f"{SCHEMA_VERSION}); upgrade the library or use another schema"
                )
            if version == SCHEMA_VERSION:
                return
            if version == 0:
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {s}.schema_version (version integer NOT NULL, "
                    "migrated_at double precision NOT NULL)"
                )
                for statement in _statements(_SCHEMA_V1.format(s=s)):
                    conn.execute(statement)
                start = 1
            else:
                start = version
            for step in range(start, SCHEMA_VERSION):
                for statement in _statements(_MIGRATIONS[step].format(s=s)):
                    conn.execute(statement)
            conn.execute(
                f"INSERT INTO {s}.schema_version (version, migrated_at) VALUES (%s, {_NOW})",
                (SCHEMA_VERSION,),
            )
        if version:
            logger.info(
                "migrated the state store %s from schema %d to %d",
                self.where,
                version,
                SCHEMA_VERSION,
            )

    def schema_version(self) -> int:
        """The version of the tables in the database."""
        with self._connection("read") as conn:
            row = conn.execute(f"SELECT max(version) FROM {self._q}.schema_version").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    # -- users ----------------------------------------------------------------------------------

    def load(self, sync_name: str, uids: Sequence[str]) -> dict[str, UserState]:
        """The known state of ``uids`` (users never seen are absent): one statement per
        5,000 users."""
        out: dict[str, UserState] = {}
        if not uids:
            return out
        loads = json.loads
        with self._connection("read") as conn:
            for start in range(0, len(uids), _CHUNK):
                cursor = conn.execute(
                    "SELECT uid, attrs::text, failed_attempts, last_error "
                    f"FROM {self._q}.user_state WHERE sync_name = %s AND uid = ANY(%s::text[])",
                    (sync_name, _text_array(uids[start : start + _CHUNK])),
                )
                found = cursor.fetchall()
                if not found:
                    continue
                # One json.loads for the chunk: most of a load's time was spent per row there.
                every = loads("[" + ",".join([row[1] for row in found]) + "]")
                for (uid, _, failed, error), attrs_ in zip(found, every, strict=True):
                    out[uid] = UserState(attrs_, failed, error)
        return out

    def _upsert_attrs(
        self,
        sync_name: str,
        users: Sequence[tuple[str, dict[str, str | None]]],
        *,
        clear_failures: bool,
    ) -> None:
        # The last entry of a uid wins, as with one statement per row (and one row may not be
        # updated twice by one statement); one statement per chunk, its rows as one JSON array.
        latest = {uid: attrs_ for uid, attrs_ in users}
        if not latest:
            return
        reset = ", failed_attempts = 0, last_error = NULL" if clear_failures else ""
        statement = (
            f"INSERT INTO {self._q}.user_state "
            "(sync_name, uid, attrs, failed_attempts, last_error, updated_at) "
            "SELECT %s, u, a, 0, NULL, extract(epoch from now()) "
            "FROM jsonb_to_recordset(%s::jsonb) AS t(u text, a jsonb) "
            "ON CONFLICT (sync_name, uid) DO UPDATE SET attrs = excluded.attrs, "
            f"updated_at = excluded.updated_at{reset}"
        )
        items = [{"u": uid, "a": attrs_} for uid, attrs_ in latest.items()]
        params = [
            (sync_name, _json(items[start : start + _CHUNK]))
            for start in range(0, len(items), _CHUNK)
        ]
        with self._connection("ack" if clear_failures else "data") as conn:
            self._write_chunks(conn, statement, params)
            self._keep_statistics(conn, len(items))

    def mark_pending(
        self, sync_name: str, pending: Sequence[tuple[str, dict[str, str | None]]]
    ) -> None:
        """Write-ahead: users' attributes with the keys about to be sent unknown (``None``);
        failures are kept."""
        self._upsert_attrs(sync_name, pending, clear_failures=False)

    def commit(self, sync_name: str, accepted: Sequence[tuple[str, dict[str, str | None]]]) -> None:
        """Record users' new attributes and clear their failures, in one transaction."""
        self._upsert_attrs(sync_name, accepted, clear_failures=True)

    def record_failures(self, sync_name: str, failures: Sequence[tuple[str, str]]) -> None:
        """Count one more failed attempt for each ``(uid, error)``."""
        counts: dict[str, dict[str, Any]] = {}
        for uid, error in failures:
            entry = counts.setdefault(uid, {"u": uid, "n": 0, "e": error})
            entry["n"] += 1
            entry["e"] = error
        if not counts:
            return
        items = list(counts.values())
        statement = (
            f"INSERT INTO {self._q}.user_state AS cur "
            "(sync_name, uid, attrs, failed_attempts, last_error, updated_at) "
            "SELECT %s, u, '{}'::jsonb, n, e, extract(epoch from now()) "
            "FROM jsonb_to_recordset(%s::jsonb) AS t(u text, n integer, e text) "
            "ON CONFLICT (sync_name, uid) DO UPDATE SET "
            "failed_attempts = cur.failed_attempts + excluded.failed_attempts, "
            "last_error = excluded.last_error, updated_at = excluded.updated_at"
        )
        params = [
            (sync_name, _json(items[start : start + _CHUNK]))
            for start in range(0, len(items), _CHUNK)
        ]
        with self._connection("ack") as conn:
            self._write_chunks(conn, statement, params)
            self._keep_statistics(conn, len(items))

    def clear_failures(self, sync_name: str, uids: Sequence[str]) -> None:
        """Forget the failures of users that no longer need a request."""
        if not uids:
            return
        unique = list(dict.fromkeys(uids))
        params = [
            (sync_name, _text_array(unique[start : start + _CHUNK]))
            for start in range(0, len(unique), _CHUNK)
        ]
        with self._connection("ack") as conn:
            self._write_chunks(
                conn,
                f"UPDATE {self._q}.user_state SET failed_attempts = 0, last_error = NULL "
                "WHERE sync_name = %s AND uid = ANY(%s::text[]) "
                "AND (failed_attempts <> 0 OR last_error IS NOT NULL)",
                params,
            )

    def forget(self, sync_name: str) -> None:
        """Drop all user state of one sync (its history stays), in one transaction. Millions
        of rows may take longer than ``timeout``: this statement gets ten times as long (lock
        waits stay bounded by ``timeout``)."""
        with self._connection("data") as conn, conn.transaction():
            conn.execute(f"SET LOCAL statement_timeout = {int(self.timeout * 10_000)}")
            conn.execute(f"DELETE FROM {self._q}.user_state WHERE sync_name = %s", (sync_name,))

    def user_count(self, sync_name: str) -> int:
        """How many users the store knows for ``sync_name``."""
        with self._connection("read") as conn:
            row = conn.execute(
                f"SELECT count(*) FROM {self._q}.user_state WHERE sync_name = %s", (sync_name,)
            ).fetchone()
        return int(row[0]) if row else 0

    # -- runs and metadata ----------------------------------------------------------------------

    def save_run(self, record: RunRecord) -> None:
        """Insert or update a run record."""
        with self._connection("data") as conn:
            conn.execute(
                f"INSERT INTO {self._q}.runs (run_id, sync_name, started_at, finished_at, "
                "status, counts, error) VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s) "
                "ON CONFLICT (run_id) DO UPDATE SET sync_name = excluded.sync_name, "
                "started_at = excluded.started_at, finished_at = excluded.finished_at, "
                "status = excluded.status, counts = excluded.counts, error = excluded.error",
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
        with self._connection("read") as conn:
            cursor = conn.execute(
                "SELECT run_id, sync_name, started_at, finished_at, status, counts::text, error "
                f"FROM {self._q}.runs WHERE sync_name = %s ORDER BY started_at DESC LIMIT %s",
                (sync_name, limit),
            )
            return [RunRecord.from_row(r) for r in cursor]

    def get_meta(self, sync_name: str, key: str) -> str | None:
        """A small per-sync value, or ``None``."""
        with self._connection("read") as conn:
            row = conn.execute(
                f"SELECT value FROM {self._q}.sync_meta WHERE sync_name = %s AND key = %s",
                (sync_name, key),
            ).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, sync_name: str, key: str, value: str | None) -> None:
        """Set or (with ``None``) delete a per-sync value."""
        with self._connection("data") as conn:
            if value is None:
                conn.execute(
                    f"DELETE FROM {self._q}.sync_meta WHERE sync_name = %s AND key = %s",
                    (sync_name, key),
                )
            else:
                conn.execute(
                    f"INSERT INTO {self._q}.sync_meta (sync_name, key, value) "
                    "VALUES (%s, %s, %s) ON CONFLICT (sync_name, key) "
                    "DO UPDATE SET value = excluded.value",
                    (sync_name, key, value),
                )

    # -- exchanges ------------------------------------------------------------------------------

    def save_exchanges(
        self, sync_name: str, run_id: str, records: Sequence[Mapping[str, Any]]
    ) -> None:
        """Keep a debugger's records with run ``run_id`` (see :class:`ExchangeStore`)."""
        if not records:
            return
        rows = [[*exchange_columns(r), dict(r)] for r in records]
        with self._connection("data") as conn:
            conn.execute(
                f"INSERT INTO {self._q}.exchanges "
                "(sync_name, run_id, seq, time, uid, status, ok, record) "
                "SELECT %s, %s, (e->>0)::integer, (e->>1)::double precision, e->>2, "
                "(e->>3)::integer, (e->>4)::boolean, (e->5)::jsonb "
                "FROM json_array_elements(%s::json) WITH ORDINALITY AS x(e, n) ORDER BY n",
                (sync_name, run_id, _json(rows)),
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
        where, params = sql_filters(sync_name, run_id, uid, mark="%s")
        if failed_only:
            where.append("NOT ok")
        with self._connection("read") as conn:
            cursor = conn.execute(
                f"SELECT record::text FROM {self._q}.exchanges WHERE {' AND '.join(where)} "
                "ORDER BY time DESC, seq DESC, id DESC LIMIT %s",
                (*params, limit),
            )
            found = [json.loads(row[0]) for row in cursor]
        found.reverse()
        return found

    def prune_exchanges(self, older_than: float) -> int:
        """Delete exchanges that happened before ``older_than``; return how many."""
        with self._connection("data") as conn:
            cursor = conn.execute(
                f"DELETE FROM {self._q}.exchanges WHERE time < %s", (float(older_than),)
            )
            return int(cursor.rowcount)

    # -- change log -----------------------------------------------------------------------------

    def log_changes(self, sync_name: str, run_id: str, entries: Sequence[ChangeEntry]) -> None:
        """Append ``entries`` to run ``run_id``'s change log (see :class:`ChangeLogStore`), with
        COPY: one round trip however many entries."""
        if not entries:
            return
        # COPY's text format written here in one piece: adapting ten fields per row in Python
        # (write_row) cost more than the database's work.
        prefix = f"{_copy_field(sync_name)}\t{_copy_field(run_id)}\t{time.time()!r}\t"
        lines = []
        for entry in entries:
            uid, outcome, keys, new, old, status, error = entry.columns()
            code = _NULL if status is None else str(int(status))
            lines.append(
                f"{prefix}{_copy_field(uid)}\t{outcome}\t{_copy_field(keys)}\t"
                f"{_copy_field(new)}\t{_copy_field(old)}\t{code}\t{_copy_field(error)}\n"
            )
        with (
            self._connection("ack") as conn,
            conn.cursor().copy(
                f"COPY {self._q}.changes (sync_name, run_id, time, uid, outcome, keys, "
                "new_values, old_values, status, error) FROM STDIN"
            ) as copy,
        ):
            copy.write("".join(lines).encode("utf-8"))

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
        where, params = sql_filters(sync_name, run_id, uid, mark="%s")
        with self._connection("read") as conn:
            cursor = conn.execute(
                "SELECT run_id, time, uid, outcome, new_values::text, old_values::text, status, "
                f"error FROM {self._q}.changes WHERE {' AND '.join(where)} "
                "ORDER BY id DESC LIMIT %s",
                (*params, limit),
            )
            return [ChangeEntry.from_columns(row) for row in cursor]

    def prune_changes(self, older_than: float) -> int:
        """Delete change-log entries logged before ``older_than``; return how many."""
        with self._connection("data") as conn:
            cursor = conn.execute(
                f"DELETE FROM {self._q}.changes WHERE time < %s", (float(older_than),)
            )
            return int(cursor.rowcount)

    # -- locks ----------------------------------------------------------------------------------

    def acquire_lock(self, name: str, holder: str, ttl: float) -> LockInfo | None:
        """Take lock ``name`` unless another holder has an unexpired lease (see
        :class:`StateStore`). One statement: insert, or take over an expired lease, or extend
        our own; a refusal reads the current holder."""
        with self._connection("lease") as conn:
            for _ in range(5):
                row = conn.execute(
                    f"INSERT INTO {self._q}.locks AS l (name, holder, acquired_at, expires_at) "
                    f"SELECT %s, %s, n, n + %s FROM (SELECT {_NOW} AS n) AS c "
                    "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                    "acquired_at = CASE WHEN l.holder = excluded.holder THEN l.acquired_at "
                    "ELSE excluded.acquired_at END, expires_at = excluded.expires_at "
                    "WHERE l.holder = excluded.holder OR l.expires_at <= excluded.acquired_at "
                    "RETURNING l.holder",
                    (name, holder, float(ttl)),
                ).fetchone()
                if row is not None:
                    return None
                current = conn.execute(
                    f"SELECT holder, acquired_at, expires_at FROM {self._q}.locks WHERE name = %s",
                    (name,),
                ).fetchone()
                if current is not None:
                    return LockInfo(
                        name=name,
                        holder=current[0],
                        acquired_at=current[1],
                        expires_at=current[2],
                    )
                # Released between the two statements: try again.
        raise StateStoreError(
            f"state store {self.where}: the lock {name!r} changed hands five times in a row "
            "while being taken; try again"
        )

    def renew_lock(self, name: str, holder: str, ttl: float) -> bool:
        """Extend our lease by ``ttl`` seconds from now (the server's clock); ``False`` if
        another holder has it now."""
        with self._connection("lease") as conn:
            cursor = conn.execute(
                f"UPDATE {self._q}.locks SET expires_at = {_NOW} + %s "
                "WHERE name = %s AND holder = %s",
                (float(ttl), name, holder),
            )
            return cursor.rowcount == 1

    def release_lock(self, name: str, holder: str) -> None:
        """Release lock ``name`` if ``holder`` has it."""
        with self._connection("lease") as conn:
            conn.execute(
                f"DELETE FROM {self._q}.locks WHERE name = %s AND holder = %s", (name, holder)
            )

    # -- moving state ---------------------------------------------------------------------------

    def import_sqlite(
        self,
        path: str | os.PathLike[str],
        *,
        sync_names: Sequence[str] | None = None,
        replace: bool = False,
    ) -> dict[str, int]:
        """Copy syncs' state from an :class:`SQLiteState` file into this store: users (accepted
        and unknown keys, failures), run history, metadata (the destination), exchanges and the
        change log.

        The file is opened read-only and left untouched. Stop the syncs first: a sync whose
        lease in the file has not expired is refused, and each sync's lock in this store is
        held while it is copied. A sync that already has users here is refused unless
        ``replace=True`` (its users, runs, metadata, exchanges and change log here are then
        replaced).
        Returns ``{sync_name: users copied}``.

        Example::

            PostgresState("postgresql://sync@db/analytics").import_sqlite("users.db")
        """
        source = os.fspath(path)
        if not os.path.isfile(source):
            raise ConfigurationError(f"no SQLite state file at {source!r}")
        uri = "file:" + urllib.parse.quote(os.path.abspath(source)) + "?mode=ro"
        try:
            db = sqlite3.connect(uri, uri=True)
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot open {source!r}: {exc}") from exc
        holder = json.dumps({"host": "import", "pid": os.getpid(), "run_id": "import_sqlite"})
        copied: dict[str, int] = {}
        try:
            try:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                tables = {
                    r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
                }
            except sqlite3.Error as exc:
                raise ConfigurationError(
                    f"{source!r} is not an SQLite state store ({exc})"
                ) from exc
            if "user_state" not in tables or version < 1:
                raise ConfigurationError(f"{source!r} is not an SQLite state store")
            names = list(sync_names) if sync_names is not None else self._sqlite_syncs(db, tables)
            now = time.time()
            if "locks" in tables:
                for name, lock_holder, expires in db.execute(
                    "SELECT name, holder, expires_at FROM locks"
                ):
                    if name in names and expires > now:
                        raise StateStoreError(
                            f"sync {name!r} is running on {source!r} (its lock is held by "
                            f"{lock_holder} until {time.ctime(expires)}); stop it, then import"
                        )
            for name in names:
                current = self.acquire_lock(name, holder, 600.0)
                if current is not None:
                    raise StateStoreError(
                        f"sync {name!r} is running on {self.where} ({current.holder}); stop it, "
                        "then import"
                    )
                try:
                    copied[name] = self._import_one(db, tables, name, replace=replace)
                finally:
                    self.release_lock(name, holder)
        finally:
            db.close()
        return copied

    @staticmethod
    def _sqlite_syncs(db: sqlite3.Connection, tables: set[str]) -> list[str]:
        queries = ["SELECT DISTINCT sync_name FROM user_state"]
        for table in ("runs", "sync_meta", "exchanges", "changes"):
            if table in tables:
                queries.append(f"SELECT DISTINCT sync_name FROM {table}")
        return sorted({r[0] for r in db.execute(" UNION ".join(queries))})

    def _import_one(
        self, db: sqlite3.Connection, tables: set[str], name: str, *, replace: bool
    ) -> int:
        s = self._q
        count = 0
        with self._connection("data") as conn, conn.transaction():
            # A one-off copy of millions of rows: no bound on its statements (we feed them),
            # lock waits stay bounded by ``timeout``.
            conn.execute("SET LOCAL statement_timeout = 0")
            exists = conn.execute(
                f"SELECT 1 FROM {s}.user_state WHERE sync_name = %s LIMIT 1", (name,)
            ).fetchone()
            if exists and not replace:
                raise ConfigurationError(
                    f"sync {name!r} already has state in {self.where}; pass replace=True "
                    "to overwrite it with the file's"
                )
            for table in ("user_state", "runs", "sync_meta", "exchanges", "changes"):
                conn.execute(f"DELETE FROM {s}.{table} WHERE sync_name = %s", (name,))
            cursor = db.execute(
                "SELECT uid, attrs, failed_attempts, last_error, updated_at FROM user_state "
                "WHERE sync_name = ?",
                (name,),
            )
            with conn.cursor().copy(
                f"COPY {s}.user_state (sync_name, uid, attrs, failed_attempts, last_error, "
                "updated_at) FROM STDIN"
            ) as copy:
                for uid, attrs_text, failed, error, updated in cursor:
                    copy.write_row((name, uid, attrs_text, failed, error, updated))
                    count += 1
            for run in db.execute(
                "SELECT run_id, started_at, finished_at, status, counts, error FROM runs "
                "WHERE sync_name = ?",
                (name,),
            ):
                conn.execute(
                    f"INSERT INTO {s}.runs (run_id, sync_name, started_at, finished_at, status, "
                    "counts, error) VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s) "
                    "ON CONFLICT (run_id) DO NOTHING",
                    (run[0], name, run[1], run[2], run[3], run[4], run[5]),
                )
            for key, value in db.execute(
                "SELECT key, value FROM sync_meta WHERE sync_name = ?", (name,)
            ):
                conn.execute(
                    f"INSERT INTO {s}.sync_meta (sync_name, key, value) VALUES (%s, %s, %s)",
                    (name, key, value),
                )
            if "exchanges" in tables:
                with conn.cursor().copy(
                    f"COPY {s}.exchanges (sync_name, run_id, seq, time, uid, status, ok, "
                    "record) FROM STDIN"
                ) as copy:
                    for row in db.execute(
                        "SELECT run_id, seq, time, uid, status, ok, record FROM exchanges "
                        "WHERE sync_name = ? ORDER BY id",
                        (name,),
                    ):
                        copy.write_row(
                            (name, row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6])
                        )
            if "changes" in tables:
                with conn.cursor().copy(
                    f"COPY {s}.changes (sync_name, run_id, time, uid, outcome, keys, new_values, "
                    "old_values, status, error) FROM STDIN"
                ) as copy:
                    for row in db.execute(
                        "SELECT run_id, time, uid, outcome, keys, new_values, old_values, status, "
                        "error FROM changes WHERE sync_name = ? ORDER BY id",
                        (name,),
                    ):
                        copy.write_row((name, *row))
        return count

    # -- lifetime -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database connections (further calls raise :class:`StateStoreError`)."""
        self._closed = True
        for kind in _KINDS:
            # Bounded: a thread stuck in a statement must not keep close() waiting forever.
            locked = self._locks[kind].acquire(timeout=self.timeout)
            try:
                conn, self._conns[kind] = self._conns[kind], None
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
            finally:
                if locked:
                    self._locks[kind].release()

    def __repr__(self) -> str:
        return f"PostgresState({self.where!r})"


def _text_array(values: Sequence[str]) -> str:
    """A ``text[]`` literal: psycopg adapts lists element by element in Python, which costs more
    than the query for thousands of users."""
    plain = "".join(values)
    if "\\" not in plain and '"' not in plain:  # the usual case: nothing to escape
        return '{"' + '","'.join(values) + '"}' if values else "{}"
    return (
        "{"
        + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
        + "}"
    )


_NULL = "\\N"  # null in COPY's text format


def _copy_field(value: str | None) -> str:
    """A text field of COPY's text format: ``\\N`` for null; backslash, tab, newline and
    carriage return escaped."""
    if value is None:
        return _NULL
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return (
            value.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return value


def _json(value: Any) -> str:
    """Rows as one JSON parameter: dumped in C here, read by ``jsonb_to_recordset`` there
    (twice as fast as extracting fields from ``json_array_elements``)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _statements(script: str) -> list[str]:
    return [part for part in script.split(";") if part.strip()]
