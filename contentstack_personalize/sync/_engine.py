"""The sync engine: source -> match -> map -> spool -> diff -> execute -> commit -> report.

A run first streams the whole source through matching and mapping into a temporary on-disk
spool (constant memory, and it lets a duplicate UID anywhere in the source invalidate every
occurrence before anything is sent). It then walks the spool in source order, compares each
user's mapped attributes with the state store, and sends only the changed attributes of changed
users, many requests in flight. A user's new state is committed only after the edge accepted it.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import contextvars
import difflib
import enum
import json
import logging
import math
import os
import queue
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Generator, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import attrs

from .._http import RateLimiter, connect_failure, user_uid_problem
from ..client import AsyncPersonalizeClient, PersonalizeClient
from ..debugger import Debugger
from ..errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    ConfigurationError,
    DestinationMismatchError,
    NotFoundError,
    PermissionDeniedError,
    PersonalizeError,
    StateStoreError,
    SyncAbortedError,
    TransportError,
)
from ..state import RunRecord, StateStore, UserState, open_state
from ._control import LockKeeper, RunControl, ahandle_sigterm, handle_sigterm
from ._distributed import (
    DistributedRun,
    Partition,
    SyncSpec,
    new_run_id,
    partition_of,
)
from ._fields import CompiledField, Field, FieldSpec, InvalidCell, compile_mapping
from ._progress import NullProgress, Progress, ProgressArg, make_progress
from ._result import Plan, RowIssue, RunStatus, SyncResult
from ._sender import EdgeSender, SendOutcome, make_sender
from ._sources import DEFAULT_CHUNK, InvalidRow, open_source
from ._typecheck import TypeCheck, TypeChecker, TypeIssue, expectations_from_audiences
from ._values import MISSING, _encode_str, is_null

if TYPE_CHECKING:
    from ..alerts import Alerts

__all__ = ["OnDuplicate", "Sync"]

logger = logging.getLogger("contentstack_personalize.sync")

OnDuplicate = Literal["reject_all", "first", "last"]
_T = TypeVar("_T")

_DIFF_CHUNK = 500
#: Requests in a row that could not connect at all (after their retries) before a run stops.
_CONNECT_FAILURES = 5
#: Seconds a run's lock lasts unless renewed (every quarter of it) by the running process.
_LOCK_TTL = 60.0
#: Seconds a clean pre-flight (attributes checked, audience rules read) is reused.
_PREFLIGHT_TTL = 300.0
#: Seconds the event loop may be held while rows are read and mapped before it gets a turn.
_LOAD_SLICE = 0.02
#: The sync_meta key holding the destination (project and Edge URL) a sync's state describes.
_DESTINATION = "destination"


# ---------------------------------------------------------------------------------------------
# Matching
# ---------------------------------------------------------------------------------------------


def uid_from_value(value: Any) -> tuple[str | None, str | None]:
    """``(uid, None)`` for a usable match value, else ``(None, reason)``.

    Integers become their decimal text (42 -> "42"), and so do integral floats (42.0 from a
    DataFrame column that also holds NaN); text is used as it is.
    """
    t = type(value)
    if t is str:
        text = value
    elif value is MISSING:
        return None, "the match column is missing from this row"
    elif is_null(value):
        return None, "the user UID is null"
    elif t is bool or isinstance(value, bool):
        return None, f"the user UID is a boolean ({value!r})"
    elif isinstance(value, int):
        if int(value).bit_length() > 3500:  # over 1,000 digits: no header takes it
            return None, "the user UID is longer than 1024 characters"
        text = str(int(value))
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return None, f"the user UID {value!r} is not an integral number"
        if abs(value) > 2**53:
            return None, (
                f"the user UID {value!r} is a float above 2**53 and may have been rounded; "
                "load the column as integers or text (e.g. .astype('Int64') in pandas)"
            )
        text = str(int(value))
    elif isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            return None, f"the user UID {value} is not an integral number"
        if value.adjusted() >= 1024:
            return None, "the user UID is longer than 1024 characters"
        text = str(int(value))
    elif isinstance(value, enum.Enum):  # str(Plan.GOLD) is "Plan.GOLD": the UID is its value
        return uid_from_value(value.value)
    elif isinstance(value, str):
        text = str.__str__(value)
    elif isinstance(value, (bytes, bytearray)):
        try:
            text = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None, "the user UID is bytes that are not UTF-8 text"
    elif hasattr(value, "item") and type(value).__module__.startswith("numpy"):
        return uid_from_value(value.item())
    else:
        return None, f"the user UID is a {type(value).__name__}, not text or an integer"
    problem = user_uid_problem(text)
    if problem is not None:
        return None, problem
    return text, None


# ---------------------------------------------------------------------------------------------
# Tally: counts and issue details of one run or plan
# ---------------------------------------------------------------------------------------------


class _Tally:
    def __init__(self, max_details: int) -> None:
        self.read = self.invalid = self.unchanged = self.added = self.changed = 0
        self.rejected = self.not_sent = self.retried = self.requests = 0
        self.invalid_rows: list[RowIssue] = []
        self.rejected_rows: list[RowIssue] = []
        self.truncated = False
        self._max = max_details
        self.progress: Progress = NullProgress()

    def invalid_row(
        self, row: int, uid: str | None, reason: str, column: str | None = None
    ) -> None:
        self.invalid += 1
        self.progress.advance(1)
        if len(self.invalid_rows) < self._max:
            self.invalid_rows.append(
                RowIssue(kind="invalid", row=row, uid=uid, reason=reason, column=column)
            )
        else:
            self.truncated = True

    def rejected_row(self, row: int, uid: str, error: PersonalizeError | None, reason: str) -> None:
        self.rejected += 1
        self.progress.advance(1)
        self._failure("rejected", row, uid, error, reason)

    def not_sent_row(self, row: int, uid: str, reason: str) -> None:
        self.not_sent += 1
        self.progress.advance(1)
        self._failure("not_sent", row, uid, None, reason)

    def _failure(
        self,
        kind: Literal["rejected", "not_sent"],
        row: int,
        uid: str,
        error: PersonalizeError | None,
        reason: str,
    ) -> None:
        if len(self.rejected_rows) < self._max:
            status = error.status_code if isinstance(error, APIStatusError) else None
            code = error.code if isinstance(error, APIStatusError) else None
            self.rejected_rows.append(
                RowIssue(kind=kind, row=row, uid=uid, reason=reason, status=status, code=code)
            )
        else:
            self.truncated = True

    def counts(self) -> dict[str, int]:
        return {
            "read": self.read,
            "invalid": self.invalid,
            "unchanged": self.unchanged,
            "added": self.added,
            "changed": self.changed,
            "rejected": self.rejected,
            "not_sent": self.not_sent,
            "retried": self.retried,
        }


# ---------------------------------------------------------------------------------------------
# Spool: the mapped rows of one run, on disk
# ---------------------------------------------------------------------------------------------


@attrs.frozen
class _Work:
    row: int
    uid: str
    body: bytes
    changed: dict[str, str]
    new_state: dict[str, str | None]
    old_state: dict[str, str | None]
    first_time: bool
    retried: bool

    def pending_state(self) -> dict[str, str | None]:
        """The state written ahead of the send: the keys being sent become unknown."""
        return {**self.old_state, **dict.fromkeys(self.changed)}


@attrs.frozen
class _Preflight:
    warnings: list[str]
    expectations: dict[str, tuple[set[str], list[str]]]


class _Spool:
    """A private temporary SQLite database (on disk, deleted on close): in SQLite's temporary
    directory, or in ``directory`` when given."""

    def __init__(self, directory: str | None = None) -> None:
        self._path: str | None = None
        target = ""
        if directory is not None:
            fd, self._path = tempfile.mkstemp(prefix="personalize-spool-", dir=directory)
            os.close(fd)
            target = self._path
        self.db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("PRAGMA cache_size=-16000")  # 16 MB of page cache, then disk
        self.db.execute("BEGIN")
        self.db.execute(
            "CREATE TABLE rows (row INTEGER PRIMARY KEY, uid TEXT NOT NULL, payload TEXT NOT NULL)"
        )
        self.db.execute(
            "CREATE TABLE uids (uid TEXT PRIMARY KEY, n INTEGER NOT NULL, first INTEGER NOT NULL, "
            "last INTEGER NOT NULL) WITHOUT ROWID"
        )
        self.db.execute(
            "CREATE TABLE changes (seq INTEGER PRIMARY KEY, uid TEXT, key TEXT, old TEXT, "
            "new TEXT, first INTEGER)"
        )
        self.db.execute("COMMIT")

    def add(self, rows: list[tuple[int, str, str]], uids: list[tuple[str, int]]) -> None:
        db = self.db
        db.execute("BEGIN")
        if rows:
            db.executemany("INSERT INTO rows VALUES (?, ?, ?)", rows)
        if uids:
            db.executemany(
                "INSERT INTO uids VALUES (?, 1, ?, ?) ON CONFLICT (uid) DO UPDATE "
                "SET n = n + 1, last = excluded.last",
                [(uid, row, row) for uid, row in uids],
            )
        db.execute("COMMIT")

    def valid_rows(self) -> Iterator[list[tuple[int, str, str, int, int, int]]]:
        cursor = self.db.execute(
            "SELECT r.row, r.uid, r.payload, u.n, u.first, u.last FROM rows r "
            "JOIN uids u ON u.uid = r.uid ORDER BY r.row"
        )
        while True:
            batch = cursor.fetchmany(_DIFF_CHUNK)
            if not batch:
                return
            yield batch

    def close(self) -> None:
        self.db.close()
        if self._path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._path)


# ---------------------------------------------------------------------------------------------
# Running coroutines from blocking code, in scripts and in notebooks
# ---------------------------------------------------------------------------------------------


class _CallerThread:
    """Runs functions on the thread that called a blocking ``run()`` while its coroutine runs on
    a helper thread (notebooks): sources such as sqlite3 connections only work on the thread
    that created them, so reading the source happens there."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]]
        self._calls = queue.SimpleQueue()

    def submit(self, fn: Callable[[], _T]) -> concurrent.futures.Future[_T]:
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()
        self._calls.put((fn, future))
        return future

    def pump(self, timeout: float) -> None:
        """Run the next submitted call, waiting up to ``timeout`` for one."""
        try:
            fn, future = self._calls.get(timeout=timeout)
        except queue.Empty:
            return
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except KeyboardInterrupt:
            future.set_exception(asyncio.CancelledError())
            raise
        except BaseException as exc:
            future.set_exception(exc)


_CALLER: contextvars.ContextVar[_CallerThread | None] = contextvars.ContextVar(
    "contentstack_personalize_caller_thread", default=None
)
_RUN_CLIENT: contextvars.ContextVar[AsyncPersonalizeClient | None] = contextvars.ContextVar(
    "contentstack_personalize_run_client", default=None
)


def _run_blocking(make_coro: Callable[[], Awaitable[_T]]) -> _T:
    """Run a coroutine to completion from blocking code.

    Without a running event loop this is ``asyncio.run``. Inside one (Jupyter), the coroutine
    runs on a fresh loop in a helper thread while this thread serves the calls that must happen
    here (reading the source); Ctrl-C (a notebook's interrupt) cancels the coroutine and waits
    for it to stop cleanly, so no run goes on in the background.
    """

    async def main() -> _T:
        return await make_coro()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        in_loop = False
    else:
        in_loop = True
    if not in_loop:  # outside the except block, so errors are not chained to this one
        return asyncio.run(main())

    caller = _CallerThread()
    state: dict[str, Any] = {}
    ready = threading.Event()
    done = threading.Event()

    def target() -> None:
        _CALLER.set(caller)
        loop = asyncio.new_event_loop()
        try:
            task = loop.create_task(main())
            state["loop"], state["task"] = loop, task
            ready.set()
            state["result"] = loop.run_until_complete(task)
        except BaseException as exc:
            state["error"] = exc
        finally:
            ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                done.set()

    thread = threading.Thread(target=target, name="personalize-sync-runner", daemon=True)
    thread.start()
    try:
        while not done.is_set():
            caller.pump(0.05)
    except KeyboardInterrupt:
        ready.wait()
        loop = state.get("loop")
        task = state.get("task")
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)
        while not done.is_set():  # let it stop cleanly; a second Ctrl-C does not abandon it
            try:
                caller.pump(0.05)
            except KeyboardInterrupt:
                continue
        raise
    if "error" in state:
        raise state["error"]
    return state["result"]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------
# The sync
# ---------------------------------------------------------------------------------------------

AnyClient = PersonalizeClient | AsyncPersonalizeClient


class Sync:
    """A sync of rows into Personalize user attributes, declared once and run many times.

    Arguments:

    - ``client``: a :class:`PersonalizeClient` or :class:`AsyncPersonalizeClient`.
    - ``match_on``: the column holding each user's Personalize User UID.
    - ``mapping``: ``{column: attribute_key}``, values may also be :class:`Field` objects
      (types, transforms, static values, null policy), or a list of ``Field``.
    - ``state``: a file path or ``sqlite:///path`` (SQLite), a ``postgresql://`` URL
      (PostgreSQL, for workers whose disk does not outlive a run), ``MemoryState()``,
      ``SQLiteState(path)``, any :class:`StateStore`, or ``None`` (in memory: incremental only
      within this process).
    - ``name``: the sync's stable name in the state store (default ``"<project>/<match_on>"``);
      give each sync sharing a state file its own name.
    - ``on_duplicate``: a UID appearing more than once in one run: ``"reject_all"`` (default:
      every occurrence is invalid), ``"first"`` or ``"last"`` (that occurrence wins; the
      others are invalid).
    - ``concurrency``: requests in flight (default 32); ``requests_per_second``: optional cap.
    - ``check_attributes`` / ``create_missing_attributes``: with Management credentials, check
      before sending that every mapped key is a custom attribute, or create the missing ones.
    - ``max_rejection_ratio`` / ``min_sample``: stop the run when more than this share of the
      last ``min_sample`` requests failed (default: more than half of the last 100); a run also
      stops when 5 requests in a row cannot connect to the edge at all.
    - ``lock_timeout``: one run of a sync (its name in its state store) goes at a time; a second
      one waits this many seconds for the lock, then raises :class:`SyncInProgressError`
      (default 0: at once). A holder that died frees the lock (at once on the same machine).
    - ``stop_grace``: on SIGTERM or :meth:`stop`, seconds the requests in flight get to finish
      before they are cancelled (default 10).
    - ``spool_dir``: where a run keeps its rows on disk while it goes (default: SQLite's
      temporary directory, ``SQLITE_TMPDIR`` or ``TMPDIR``); about 190 MB per million rows.
    - ``raise_on_abort``: raise :class:`SyncAbortedError` (holding the result) when the run
      stops early (default); otherwise return the result with status ``"aborted"``.
    - ``type_check``: what to do when a value does not fit what its attribute is used as (the
      declared ``Field`` type, or the conditions of the audience rules that read it):
      ``"warn"`` (default: send and report), ``"coerce"`` (convert when lossless, else the row
      is invalid), ``"reject"`` (the row is invalid) or ``"off"``.
    - ``debugger``: ``True`` or a :class:`~contentstack_personalize.debugger.Debugger` records
      every API exchange of each run (``result.debugger``).
    - ``alerts``: an :class:`~contentstack_personalize.alerts.Alerts`, evaluated after every run
      (outcomes in ``result.extras["alerts"]``); a failing alert sink never fails the sync.
    - ``sender``: an :class:`EdgeSender` to use instead of the automatic choice.

    Example::

        sync = Sync(client, match_on="user_id",
                    mapping={"plan": "plan_tier", "ltv": "lifetime_value"},
                    state="users.db")
        print(sync.plan(rows).summary())   # sends nothing
        result = sync.run(rows)            # or: await sync.arun(rows)
        print(result.summary())
    """

    def __init__(
        self,
        client: AnyClient,
        *,
        match_on: str,
        mapping: Mapping[str, FieldSpec] | Sequence[Field],
        state: StateStore | str | Any = None,
        name: str | None = None,
        on_duplicate: OnDuplicate = "reject_all",
        concurrency: int = 32,
        requests_per_second: float | None = None,
        check_attributes: bool = True,
        create_missing_attributes: bool = False,
        max_rejection_ratio: float = 0.5,
        min_sample: int = 100,
        raise_on_abort: bool = True,
        commit_every: int = 500,
        commit_interval: float = 1.0,
        chunk_size: int = DEFAULT_CHUNK,
        max_issue_details: int = 10_000,
        sender: EdgeSender | None = None,
        type_check: TypeCheck = "warn",
        debugger: bool | Debugger | None = None,
        alerts: Alerts | None = None,
        lock_timeout: float = 0.0,
        stop_grace: float = 10.0,
        spool_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if not isinstance(client, (PersonalizeClient, AsyncPersonalizeClient)):
            raise ConfigurationError(
                "client must be a PersonalizeClient or AsyncPersonalizeClient, "
                f"not {type(client).__name__}"
            )
        if not isinstance(match_on, str) or not match_on:
            raise ConfigurationError(
                "match_on must name the column holding the Personalize User UID, "
                'e.g. match_on="user_id"'
            )
        if type_check not in ("warn", "coerce", "reject", "off"):
            raise ConfigurationError("type_check must be 'warn', 'coerce', 'reject' or 'off'")
        if on_duplicate not in ("reject_all", "first", "last"):
            raise ConfigurationError("on_duplicate must be 'reject_all', 'first' or 'last'")
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigurationError("concurrency must be a positive integer")
        if requests_per_second is not None and requests_per_second <= 0:
            raise ConfigurationError("requests_per_second must be positive (or None)")
        if not 0 < max_rejection_ratio <= 1:
            raise ConfigurationError("max_rejection_ratio must be in (0, 1]")
        if not isinstance(lock_timeout, (int, float)) or not lock_timeout >= 0:
            raise ConfigurationError(
                "lock_timeout must be a number of seconds >= 0 (0: fail at once when another "
                "run of this sync holds its lock)"
            )
        if not isinstance(stop_grace, (int, float)) or not stop_grace >= 0:
            raise ConfigurationError("stop_grace must be a number of seconds >= 0")
        if commit_every < 1 or commit_interval <= 0 or chunk_size < 1 or min_sample < 1:
            raise ConfigurationError(
                "commit_every, commit_interval, chunk_size and min_sample must be positive"
            )
        project = client.project_uid
        if not project:
            raise ConfigurationError(
                "the client has no project: pass project_uid=... (or set "
                "CONTENTSTACK_PERSONALIZE_PROJECT_UID)"
            )
        self.client = client
        self.match_on = match_on
        self.fields: list[CompiledField] = compile_mapping(mapping)
        self.name = name or f"{project}/{match_on}"
        self.on_duplicate: OnDuplicate = on_duplicate
        self.concurrency = concurrency
        self.requests_per_second = requests_per_second
        self.check_attributes = check_attributes
        self.create_missing_attributes = create_missing_attributes
        self.max_rejection_ratio = max_rejection_ratio
        self.min_sample = min_sample
        self.raise_on_abort = raise_on_abort
        self.commit_every = commit_every
        self.commit_interval = commit_interval
        self.chunk_size = chunk_size
        self.max_issue_details = max_issue_details
        self._sender = sender
        if debugger is not None and not isinstance(debugger, (bool, Debugger)):
            raise ConfigurationError("debugger must be None, True, False or a Debugger(...)")
        self.debugger = debugger
        self.alerts = alerts
        self.type_check: TypeCheck = type_check
        self.lock_timeout = float(lock_timeout)
        self.spool_dir = os.fspath(spool_dir) if spool_dir is not None else None
        if self.spool_dir is not None and not os.path.isdir(self.spool_dir):
            raise ConfigurationError(
                f"spool_dir {self.spool_dir!r} is not a directory; create it or point spool_dir= "
                "at a disk with room for the run's rows (about 190 MB per million)"
            )
        self.stop_grace = float(stop_grace)
        self.state, self._owns_state = open_state(state)
        self._state_given = os.fspath(state) if isinstance(state, (str, os.PathLike)) else None
        self._said_no_management = False
        self._controls: set[RunControl] = set()
        self._preflight_cache: tuple[float, _Preflight] | None = None

    def __repr__(self) -> str:
        keys = [f.key for f in self.fields]
        return (
            f"Sync(name={self.name!r}, match_on={self.match_on!r}, keys={keys}, "
            f"state={self.state!r})"
        )

    @property
    def keys(self) -> list[str]:
        """The attribute keys this sync writes."""
        return [f.key for f in self.fields]

    # -- public API ----------------------------------------------------------------------------

    def plan(self, rows: Any, *, full: bool = False) -> Plan:
        """What :meth:`run` would send, sending nothing (read-only API calls at most)."""
        return self._blocking(lambda: self.aplan(rows, full=full))

    async def aplan(self, rows: Any, *, full: bool = False) -> Plan:
        """The coroutine behind :meth:`plan`."""
        self._check_destination(bind=False)
        preflight = await self._preflight(create=False)
        spool = _Spool(self.spool_dir)
        try:
            tally = _Tally(self.max_issue_details)
            type_issues = await self._aload(rows, spool, tally, preflight)
            db = spool.db
            db.execute("BEGIN")
            buffer: list[tuple[str, str, str | None, str, int]] = []
            for works in self._diff(spool, tally, full, None):
                for work in works:
                    for key, new in work.changed.items():
                        buffer.append(
                            (work.uid, key, work.old_state.get(key), new, work.first_time)
                        )
                    if work.first_time:
                        tally.added += 1
                    else:
                        tally.changed += 1
                    if work.retried:
                        tally.retried += 1
                if len(buffer) >= 5000:
                    db.executemany(
                        "INSERT INTO changes (uid, key, old, new, first) VALUES (?, ?, ?, ?, ?)",
                        buffer,
                    )
                    buffer.clear()
            db.executemany(
                "INSERT INTO changes (uid, key, old, new, first) VALUES (?, ?, ?, ?, ?)", buffer
            )
            db.execute("COMMIT")
        except BaseException:
            spool.close()
            raise
        # The plan keeps the spool's changes table and reads it lazily.
        return Plan(
            sync_name=self.name,
            counts=tally.counts(),
            invalid_rows=tuple(tally.invalid_rows),
            issues_truncated=tally.truncated,
            warnings=(*preflight.warnings, *(i.describe() for i in type_issues)),
            changes_db=spool.db,
            extras={"type_issues": type_issues},
        )

    def run(
        self,
        rows: Any,
        *,
        full: bool = False,
        progress: ProgressArg = None,
        partition: Partition | None = None,
    ) -> SyncResult:
        """Sync ``rows`` and return the result; blocking, and safe to call in a notebook.

        ``full=True`` ignores the state and sends every mapped attribute of every valid row.
        Raises :class:`SyncAbortedError` (with ``.result``) when the run stops early: a
        systemic API failure, too many rejections, a state store failure, Ctrl-C or SIGTERM.
        What the edge acknowledged before that is committed either way. SIGTERM stops the run
        gracefully (see ``stop_grace``) when the program has no SIGTERM handler of its own.

        ``partition=`` runs one partition of a distributed run (see :meth:`begin_distributed`):
        rows whose UID belongs to another partition are invalid, the partition's own lock is
        taken instead of the sync's, and no run is recorded (the driver records one).
        """
        holder: dict[str, SyncResult] = {}
        control = RunControl(self.stop_grace, partition)
        try:
            with handle_sigterm(control):
                return self._blocking(
                    lambda: self._arun(
                        rows, full=full, holder=holder, progress=progress, control=control
                    )
                )
        except (KeyboardInterrupt, asyncio.CancelledError) as exc:
            raise SyncAbortedError(
                "the sync was interrupted; what the edge acknowledged is committed and the next "
                "run sends the rest",
                result=holder.get("result"),
                cause=exc,
            ) from exc

    async def arun(
        self,
        rows: Any,
        *,
        full: bool = False,
        progress: ProgressArg = None,
        partition: Partition | None = None,
    ) -> SyncResult:
        """The coroutine behind :meth:`run`, for async code."""
        control = RunControl(self.stop_grace, partition)
        with ahandle_sigterm(control, asyncio.get_running_loop()):
            return await self._arun(rows, full=full, holder={}, progress=progress, control=control)

    def _check_driver(self, partition: Partition) -> None:
        """A partition runs only while the driver of its distributed run holds the sync's
        lock: a straggler of a finished run, or a partition with no driver, would otherwise
        write beside a plain run of the same sync."""
        probe = LockKeeper(self.state, self.name, "probe", ttl=1.0, on_lost=lambda r: None)
        current = probe._attempt()
        if current is None:  # nobody held it: the probe now does; give it back
            self.state.release_lock(self.name, probe.holder)
            holder_run = None
        else:
            holder_run = current.describe().get("run_id")
        if partition.run_id is None or holder_run != partition.run_id:
            raise ConfigurationError(
                f"partition {partition.index} of run {partition.run_id!r} of sync {self.name!r} "
                "cannot run: that distributed run does not hold the sync's lock (it finished, "
                "failed, or was never begun); start partitions from sync.begin_distributed()"
            )

    @classmethod
    def from_spec(cls, spec: SyncSpec, *, state: StateStore | str | None = None) -> Sync:
        """The sync a worker of a distributed run rebuilds from ``run.spec`` (see
        :meth:`begin_distributed`); ``state=`` overrides the shipped state, e.g. with a URL that
        carries a password from the worker's secret store."""
        client = PersonalizeClient(
            spec.project_uid,
            edge_url=spec.edge_url,
            timeout=spec.timeout,
            retry=spec.retry,
            verify=spec.verify,
            headers=dict(spec.headers),
            read_env=False,
        )
        sync = cls(
            client,
            match_on=spec.match_on,
            mapping=list(spec.fields),
            state=state if state is not None else spec.state,
            name=spec.name,
            check_attributes=False,
            **spec.options,
        )
        # The driver's pre-flight (attributes checked, audience rules read) stands for the
        # workers', which have no Management credentials.
        sync._preflight_cache = (time.monotonic(), spec.preflight)
        return sync

    def begin_distributed(self, partitions: int) -> DistributedRun:
        """Start a run of this sync split into ``partitions`` partitions, run by workers
        elsewhere (Spark, Dask, Ray...). The driver holds the sync's lock until
        :meth:`DistributedRun.finish` (or ``fail``) and records one run; the pre-flight runs
        here once. Ship ``run.spec`` (picklable, no secret) and ``run.partition(i)`` to the
        workers; each calls ``Sync.from_spec(spec).run(rows, partition=...)`` on the rows whose
        ``partition_of(uid, partitions) == i``.
        """
        if not isinstance(partitions, int) or partitions < 1:
            raise ConfigurationError("partitions must be a positive integer")
        run_id = new_run_id()
        keeper = LockKeeper(
            self.state,
            self.name,
            run_id,
            ttl=_LOCK_TTL,
            on_lost=lambda reason: lost.append(reason),
        )
        lost: list[str] = []
        keeper.acquire(self.lock_timeout)
        try:
            self._check_destination(bind=True)
            preflight = self._blocking(lambda: self._preflight(create=True))
            run = DistributedRun(self, partitions, keeper, run_id, preflight, lost)
            run._record("running", {}, None)
        except BaseException:
            keeper.release()
            raise
        return run

    def stop(self, reason: str = "stopped by Sync.stop()") -> None:
        """Stop this sync's running runs gracefully, from any thread or a signal handler: no new
        request is sent, requests in flight get ``stop_grace`` seconds, acknowledgements are
        committed, and the run ends ``aborted`` (raising :class:`SyncAbortedError` unless
        ``raise_on_abort=False``).

        Example (a host application with its own SIGTERM handler)::

            signal.signal(signal.SIGTERM, lambda *_: sync.stop("SIGTERM"))
        """
        for control in list(self._controls):
            control.stop(reason)

    def history(self, limit: int = 50) -> list[RunRecord]:
        """This sync's latest runs, newest first."""
        return self.state.runs(self.name, limit)

    def reset(self) -> None:
        """Forget every user's state for this sync, and the destination it was written for:
        the next run sends everything again, to whatever destination the client points at.
        Raises :class:`SyncInProgressError` while a run of this sync holds its lock."""
        keeper = LockKeeper(
            self.state, self.name, "reset", ttl=_LOCK_TTL, on_lost=lambda reason: None
        )
        keeper.acquire(self.lock_timeout)
        try:
            self.state.forget(self.name)
            self.state.set_meta(self.name, _DESTINATION, None)
        finally:
            keeper.release()

    def rebind(self) -> None:
        """Record the client's project and Edge URL as this sync's destination, keeping the
        state: for the same destination reached at a new URL (a proxy, a renamed host). Only
        when the edge really holds what the state says; otherwise use :meth:`reset`."""
        self.state.set_meta(self.name, _DESTINATION, json.dumps(self._destination()))

    def close(self) -> None:
        """Close the state store if this sync opened it."""
        if self._owns_state:
            self.state.close()

    def __enter__(self) -> Sync:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- destination ---------------------------------------------------------------------------

    def _edge_url(self) -> str:
        return str(self.client.config.edge_url)

    def _destination(self) -> dict[str, str | None]:
        return {"project_uid": self.client.project_uid, "edge_url": self._edge_url()}

    def _check_destination(self, *, bind: bool) -> None:
        """Refuse a state written for another destination; record ours when none is recorded
        (``bind``: runs record it, plans only read)."""
        current = self._destination()
        text = self.state.get_meta(self.name, _DESTINATION)
        if text is None:
            if bind:
                self.state.set_meta(self.name, _DESTINATION, json.dumps(current))
            return
        try:
            stored = json.loads(text)
        except ValueError:
            stored = {}
        if stored == current:
            return
        raise DestinationMismatchError(
            f"the state of sync {self.name!r} was written for project "
            f"{stored.get('project_uid')!r} at {stored.get('edge_url')}, but the client points "
            f"at project {current['project_uid']!r} at {current['edge_url']}. A state describes "
            "what one destination holds, so only differences would be sent and the new "
            "destination would stay incomplete. To start fresh there, give this sync another "
            "name= (or call sync.reset(): the next run sends every user); if it is the same "
            "destination under a new URL, call sync.rebind()",
            stored=stored,
            current=current,
        )

    # -- stages --------------------------------------------------------------------------------

    def _client(self) -> AnyClient:
        """The client of the current run: the user's, or for a blocking run of an async client
        a twin made for that run's event loop."""
        return _RUN_CLIENT.get() or self.client

    def _blocking(self, make_coro: Callable[[], Awaitable[_T]]) -> _T:
        """Run a coroutine of this sync from blocking code (see :func:`_run_blocking`)."""
        client = self.client
        if not isinstance(client, AsyncPersonalizeClient):
            return _run_blocking(make_coro)
        if client._user_http_client:
            raise ConfigurationError(
                "this AsyncPersonalizeClient has its own httpx.AsyncClient, which belongs to one "
                "event loop: use `await sync.arun(rows)` / `await sync.aplan(rows)` with it"
            )

        async def with_twin() -> _T:
            # An async client's connections belong to the loop that made them, and every
            # blocking run has a loop of its own: use a twin with the same settings per run.
            twin = AsyncPersonalizeClient._twin_of(
                client, transport=client._transport, max_connections=self.concurrency
            )
            token = _RUN_CLIENT.set(twin)
            try:
                return await make_coro()
            finally:
                _RUN_CLIENT.reset(token)
                await twin.aclose()

        return _run_blocking(with_twin)

    async def _call_client(self, name: str, *args: Any) -> Any:
        """Call a resource method on either kind of client without blocking the loop."""
        resource_name, method_name = name.split(".")
        client = self._client()
        method = getattr(getattr(client, resource_name), method_name)
        if isinstance(client, AsyncPersonalizeClient):
            return await method(*args)
        return await asyncio.to_thread(method, *args)

    async def _preflight(self, *, create: bool) -> _Preflight:
        """Check (or create) the mapped attributes and read what audience rules expect of
        them. Returns warnings for the report and the type expectations per attribute key.

        A clean result (every key a custom attribute) is reused for ``_PREFLIGHT_TTL`` seconds
        by later runs and plans of this ``Sync``: a rerun a minute later needs no Management
        call (the Management API allows 10 requests per second per organization)."""
        cached = self._preflight_cache
        if cached is not None and time.monotonic() - cached[0] < _PREFLIGHT_TTL:
            return cached[1]
        preflight = await self._preflight_uncached(create=create)
        if not preflight.warnings and self.client.has_management_auth:
            self._preflight_cache = (time.monotonic(), preflight)
        return preflight

    async def _preflight_uncached(self, *, create: bool) -> _Preflight:
        checks = self.check_attributes or self.create_missing_attributes
        wants_types = self.type_check != "off"
        if not checks and not wants_types:
            return _Preflight([], {})
        if not self.client.has_management_auth:
            message = (
                "no Management API credentials: mapped keys were not checked against the "
                "project's custom attributes nor its audience rules (pass auth=... to check them)"
            )
            if not self._said_no_management:
                logger.warning(message)
                self._said_no_management = True
            return _Preflight([message], {})
        keys = self.keys
        warnings: list[str] = []
        attributes = await self._call_client("attributes.list")
        if checks:
            custom = {a.key for a in attributes if a.is_custom}
            presets = {a.key for a in attributes if not a.is_custom}
            missing = [k for k in keys if k not in custom]
            preset_hits = [k for k in missing if k in presets]
            if missing:
                verb = "is a preset" if len(preset_hits) == 1 else "are presets"
                detail = ""
                if preset_hits:
                    detail = f" ({', '.join(preset_hits)} {verb}, which a sync cannot write)"
                message = (
                    f"mapped keys {missing} are not custom attributes of project "
                    f"{self.client.project_uid}{detail}; create them in Personalize or pass "
                    "create_missing_attributes=True"
                )
                if self.create_missing_attributes and not preset_hits:
                    if create:
                        attributes = await self._call_client("attributes.ensure", keys)
                    else:
                        warnings.append(message.split(";")[0] + "; the run will create them")
                elif create:
                    raise ConfigurationError(message)
                else:
                    warnings.append(message)
        expectations: dict[str, tuple[set[str], list[str]]] = {}
        if wants_types:
            audiences = await self._call_client("audiences.list")
            expectations = expectations_from_audiences(attributes, audiences)
        return _Preflight(warnings, expectations)

    def _load(
        self,
        rows: Any,
        spool: _Spool,
        tally: _Tally,
        preflight: _Preflight,
        control: RunControl | None = None,
    ) -> list[TypeIssue]:
        """Stages 1-3 in one go (see :meth:`_load_steps`)."""
        steps = self._load_steps(rows, spool, tally, preflight, control)
        while True:
            try:
                next(steps)
            except StopIteration as stop:
                issues: list[TypeIssue] = stop.value
                return issues

    async def _aload(
        self,
        rows: Any,
        spool: _Spool,
        tally: _Tally,
        preflight: _Preflight,
        control: RunControl | None = None,
    ) -> list[TypeIssue]:
        """Stages 1-3 without holding the event loop: the loop gets a turn after every chunk
        (so Ctrl-C and cancellation land while a big source is read). Under a notebook's
        blocking ``run()``, the source is read on the caller's thread, where it was made."""
        caller = _CALLER.get()
        if caller is not None:
            return await asyncio.wrap_future(
                caller.submit(lambda: self._load(rows, spool, tally, preflight, control))
            )
        steps = self._load_steps(rows, spool, tally, preflight, control)
        while True:
            try:
                next(steps)
            except StopIteration as stop:
                issues: list[TypeIssue] = stop.value
                return issues
            await asyncio.sleep(0)

    def _load_steps(
        self,
        rows: Any,
        spool: _Spool,
        tally: _Tally,
        preflight: _Preflight,
        control: RunControl | None = None,
    ) -> Generator[None, None, list[TypeIssue]]:
        """Stages 1-3: read the source, match and map every row into the spool, pausing after
        each chunk (and stopping there when the run is asked to stop). Returns (as the
        generator's value) the type issues found in the columns."""
        source = open_source(rows, chunk_size=self.chunk_size)
        needed = [self.match_on] + [f.column for f in self.fields if f.column is not None]
        # Columns known up front are checked before reading; for plain iterables, whose rows
        # may each have other keys, a column is missing only if no row at all has it.
        unseen: set[str] = set()
        if source.columns is not None:
            missing = [c for c in dict.fromkeys(needed) if c not in source.columns]
            if missing:
                raise ConfigurationError(
                    f"column{'s' if len(missing) > 1 else ''} {missing} not found in the "
                    f"{source.description}{_did_you_mean(missing, source.columns)}; its columns "
                    f"are {list(source.columns)}"
                )
        else:
            unseen = set(needed)
        seen_keys: list[str] = []
        match_on = self.match_on
        partition = control.partition if control is not None else None
        owner = partition.owns if partition is not None else None
        owner_count = partition.count if partition is not None else 1
        # The key part of each spooled pair never changes: encode it once per run.
        converters = [(f.key, _encode_str(f.key) + ":", f.convert) for f in self.fields]
        checker = TypeChecker(self.fields, preflight.expectations, self.type_check)
        check = checker.check if checker.active else None
        good: list[tuple[int, str, str]] = []
        uids: list[tuple[str, int]] = []
        chunk = self.chunk_size
        row_number = 0
        clock = time.perf_counter
        slice_started = clock()
        for row in source.rows:
            row_number += 1
            if not row_number & 127 and clock() - slice_started > _LOAD_SLICE:
                # Let an async host's loop breathe between chunks too (a DataFrame chunk takes
                # far longer to map than a heartbeat's interval).
                tally.read = row_number - 1
                yield
                slice_started = clock()
                if control:
                    row_number -= 1  # this row was not read into the run
                    break
            if not isinstance(row, Mapping):
                tally.invalid_row(
                    row_number,
                    None,
                    row.reason
                    if isinstance(row, InvalidRow)
                    else f"row is a {type(row).__name__}, not a mapping of column -> value "
                    "(for tuples, pass a DB-API cursor or build dicts)",
                )
                continue
            if unseen:
                unseen.difference_update([c for c in unseen if c in row])
                if not seen_keys:
                    seen_keys = [str(k) for k in row]
            raw_uid = row.get(match_on, MISSING)
            uid = raw_uid if type(raw_uid) is str and user_uid_problem(raw_uid) is None else None
            if uid is None:
                uid, reason = uid_from_value(raw_uid)
                if uid is None:
                    tally.invalid_row(row_number, None, reason or "bad user UID", match_on)
                    continue
            if owner is not None and not owner(uid):
                tally.invalid_row(
                    row_number,
                    uid,
                    f"the user UID belongs to partition {partition_of(uid, owner_count)} of "
                    f"{owner_count}, not this one: split rows with partition_of(uid, "
                    f"{owner_count})",
                    match_on,
                )
                continue
            uids.append((uid, row_number))
            parts: list[str] = []
            problems: list[InvalidCell] | None = None
            for key, prefix, convert in converters:
                try:
                    value = convert(row)
                    if type(value) is str:
                        if check is not None:
                            value = check(row_number, key, value)
                        parts.append(prefix + _encode_str(value))
                except InvalidCell as cell:
                    # Every problem of the row, so one pass over the data finds them all.
                    if problems is None:
                        problems = []
                    problems.append(cell)
            if problems is None:
                good.append((row_number, uid, "{" + ",".join(parts) + "}"))
            else:
                tally.invalid_row(row_number, uid, *_row_problems(problems))
            if len(uids) >= chunk:
                spool.add(good, uids)
                good.clear()
                uids.clear()
                tally.read = row_number
                yield
                slice_started = clock()
                if control:
                    break
        spool.add(good, uids)
        tally.read = row_number
        if unseen and row_number and not control:
            missing = sorted(unseen)
            raise ConfigurationError(
                f"column{'s' if len(missing) > 1 else ''} {missing} not found in any row of the "
                f"{source.description}{_did_you_mean(missing, seen_keys)}; check the mapping and "
                f"match_on for typos (the first row has {seen_keys})"
            )
        issues = checker.issues()
        for issue in issues:
            logger.warning("sync %r: %s", self.name, issue.describe())
        return issues

    def _diff(
        self, spool: _Spool, tally: _Tally, full: bool, clear: list[str] | None
    ) -> Iterator[list[_Work]]:
        """Stage 4: compare with the state; yield, one spool batch at a time, the users that need
        a request. A key whose edge value is unknown (``None`` in the state: sent without an
        acknowledgement) always differs, so it is sent whatever the source says."""
        rule = self.on_duplicate
        store = self.state
        name = self.name
        loads = json.loads
        prefixes = {f.key: _encode_str(f.key) + ":" for f in self.fields}
        for batch in spool.valid_rows():
            states = store.load(name, [r[1] for r in batch])
            works: list[_Work] = []
            for row, uid, payload, n, first, last in batch:
                if n > 1:
                    if rule == "reject_all":
                        tally.invalid_row(
                            row, uid, f"user UID appears {n} times in the source", self.match_on
                        )
                        continue
                    if rule == "first" and row != first:
                        tally.invalid_row(row, uid, f"duplicate of row {first}", self.match_on)
                        continue
                    if rule == "last" and row != last:
                        tally.invalid_row(row, uid, f"superseded by row {last}", self.match_on)
                        continue
                desired: dict[str, str] = loads(payload)
                st: UserState | None = states.get(uid)
                old = st.attrs if st is not None else {}
                if full:
                    changed = desired
                else:
                    changed = {k: v for k, v in desired.items() if old.get(k) != v}
                failed_before = st is not None and st.failed_attempts > 0
                if not changed:
                    tally.unchanged += 1
                    tally.progress.advance(1)
                    if failed_before and clear is not None:  # a plan changes nothing
                        clear.append(uid)
                    continue
                body = "{" + ",".join(prefixes[k] + v for k, v in changed.items()) + "}"
                works.append(
                    _Work(
                        row=row,
                        uid=uid,
                        body=body.encode("utf-8"),
                        changed=changed,
                        new_state={**old, **changed},
                        old_state=old,
                        # "added": no acknowledged value on record (new, or all keys unknown)
                        first_time=all(v is None for v in old.values()),
                        retried=failed_before,
                    )
                )
            if works:
                yield works
            if clear is not None and len(clear) >= _DIFF_CHUNK:
                store.clear_failures(name, clear)
                clear.clear()

    # -- execution -----------------------------------------------------------------------------

    async def _arun(
        self,
        rows: Any,
        *,
        full: bool,
        holder: dict[str, SyncResult],
        progress: ProgressArg = None,
        control: RunControl,
    ) -> SyncResult:
        run_id = uuid.uuid4().hex[:12]
        lock_name = self.name
        partition = control.partition
        if partition is not None:
            run_id = f"{partition.run_id or run_id}-p{partition.index}"
            lock_name = partition.lock_name(self.name)
        store = self.state
        # One run per sync: taken before anything is read or recorded (a refused run leaves no
        # trace but its exception), held by a lease that a background thread renews.
        keeper = LockKeeper(
            store,
            lock_name,
            run_id,
            ttl=_LOCK_TTL,
            on_lost=lambda reason: control.stop(reason),
        )
        self._controls.add(control)  # a stop (SIGTERM, Sync.stop) also ends the wait for the lock
        try:
            await keeper.aacquire(self.lock_timeout, control)
        except BaseException:
            self._controls.discard(control)
            raise
        try:
            if partition is not None:
                await asyncio.to_thread(self._check_driver, partition)
            return await self._arun_locked(
                rows,
                full=full,
                holder=holder,
                progress=progress,
                control=control,
                run_id=run_id,
            )
        finally:
            self._controls.discard(control)
            keeper.release()

    async def _arun_locked(
        self,
        rows: Any,
        *,
        full: bool,
        holder: dict[str, SyncResult],
        progress: ProgressArg,
        control: RunControl,
        run_id: str,
    ) -> SyncResult:
        started = time.time()
        tally = _Tally(self.max_issue_details)
        store = self.state
        self._check_destination(bind=True)
        # A partition of a distributed run records nothing: the driver records the one run.
        record = control.partition is None
        if record:
            store.save_run(
                RunRecord(
                    run_id=run_id,
                    sync_name=self.name,
                    started_at=started,
                    finished_at=None,
                    status="running",
                    counts={},
                )
            )
        warnings: list[str] = []
        type_issues: list[TypeIssue] = []
        error: str | None = None
        cause: BaseException | None = None
        status: RunStatus = "failed"
        spool: _Spool | None = None
        interrupted = False
        debugger = self.debugger if isinstance(self.debugger, Debugger) else None
        if self.debugger is True:
            debugger = Debugger()
        observers = contextlib.ExitStack()
        try:
            # Inside the try: a bad progress= argument still ends the run record.
            if debugger is not None:
                observers.enter_context(
                    debugger.attach(self.client, sync_name=self.name, run_id=run_id, store=store)
                )
            tally.progress = make_progress(progress)
            observers.callback(tally.progress.close)
            tally.progress.start(None, f"sync {self.name}")
            try:
                preflight = await self._preflight(create=True)
            except (APIStatusError, TransportError) as exc:
                raise _PreflightFailed(exc) from exc
            warnings = list(preflight.warnings)
            spool = _Spool(self.spool_dir)
            type_issues = await self._aload(rows, spool, tally, preflight, control)
            tally.progress.start(tally.read, f"sync {self.name}")
            warnings += [issue.describe() for issue in type_issues]
            # Only the read count here: duplicates are judged while the changes are sent, so an
            # invalid count now would disagree with the result's.
            logger.info("sync %r run %s: read %d rows", self.name, run_id, tally.read)
            if not control:
                error = await self._execute(spool, tally, full, control)
            else:
                error = control.reason
            cause = control.cause
            if error is not None:
                status = "aborted"
            elif tally.rejected and not tally.added + tally.changed:
                status = "failed"
            elif tally.rejected:
                status = "partially_failed"
            else:
                status = "succeeded"
        except asyncio.CancelledError:
            status, error, interrupted = "aborted", "interrupted (cancelled or Ctrl-C)", True
            raise
        except KeyboardInterrupt:
            status, error, interrupted = "aborted", "interrupted (Ctrl-C)", True
            raise
        except StateStoreError as exc:
            # Not a crash of the run: it stops, with a result, like any other abort.
            status, error, cause = "aborted", f"the state store failed: {exc}", exc
        except _PreflightFailed as failed:
            # A Management outage before anything was read or sent: an abort with a result (so
            # raise_on_abort=False returns it and alerts can judge it), not a bare exception.
            status, cause = "aborted", failed.cause
            error = (
                "the pre-flight check against the Management API failed, nothing was sent: "
                f"{type(cause).__name__}: {cause}"
            )
        except BaseException as exc:
            status = "failed"
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            if spool is not None:
                spool.close()
            finished = time.time()
            accounted = (
                tally.invalid
                + tally.unchanged
                + tally.added
                + tally.changed
                + tally.rejected
                + tally.not_sent
            )
            if tally.read > accounted:  # stopped before these rows got an outcome
                tally.not_sent += tally.read - accounted
            result = SyncResult(
                run_id=run_id,
                sync_name=self.name,
                status=status,
                started_at=started,
                finished_at=finished,
                requests=tally.requests,
                invalid_rows=tuple(tally.invalid_rows),
                rejected_rows=tuple(tally.rejected_rows),
                issues_truncated=tally.truncated,
                error=error,
                warnings=tuple(warnings),
                read=tally.read,
                invalid=tally.invalid,
                unchanged=tally.unchanged,
                added=tally.added,
                changed=tally.changed,
                rejected=tally.rejected,
                not_sent=tally.not_sent,
                retried=tally.retried,
                extras={"type_issues": type_issues},
                debugger=debugger,
            )
            holder["result"] = result
            try:
                if not record:
                    raise _NotRecorded
                store.save_run(
                    RunRecord(
                        run_id=run_id,
                        sync_name=self.name,
                        started_at=started,
                        finished_at=finished,
                        status=status,
                        counts={**tally.counts(), "requests": tally.requests},
                        error=error,
                    )
                )
            except _NotRecorded:
                pass
            except Exception:  # the run's outcome matters more than its history line
                logger.exception("could not record run %s in the history", run_id)
            log = logger.warning if status != "succeeded" else logger.info
            log("sync %r run %s %s: %s", self.name, run_id, status, tally.counts())
            observers.close()
            # After save_run, so rules comparing with the previous run see the history; not
            # when an operator interrupted the run (nobody needs paging for their own Ctrl-C).
            if self.alerts is not None and not interrupted and record:
                result.extras["alerts"] = await self.alerts.aevaluate(result, store)
        if status == "aborted" and (self.raise_on_abort or control.signal is not None):
            # A signal always raises: the process was asked to stop and must exit non-zero.
            raise SyncAbortedError(
                f"sync {self.name!r} stopped early: {error}", result=result, cause=cause
            ) from cause
        return result

    async def _execute(
        self, spool: _Spool, tally: _Tally, full: bool, control: RunControl
    ) -> str | None:
        """Stages 5-6: send the changed users concurrently; commit what the edge accepted.

        Before a batch of users is sent, their state is written with the keys being sent marked
        unknown (write-ahead); an acknowledgement commits the new values; any other outcome (a
        rejection, a lost answer, a kill) leaves those keys unknown, so the next run sends them
        whatever the source says by then. Returns the reason the run stopped early, or ``None``.
        """
        sender = self._sender
        owns_sender = sender is None
        if sender is None:
            sender = make_sender(self._client(), concurrency=self.concurrency)
        limiter = (
            RateLimiter(self.requests_per_second, 1.0, margin=0.0)
            if self.requests_per_second
            else None
        )
        loop = asyncio.get_running_loop()
        control.bind(loop)
        store, name = self.state, self.name
        accepted: list[tuple[str, dict[str, str | None]]] = []
        failures: list[tuple[str, str]] = []
        clear: list[str] = []
        last_flush = time.monotonic()
        judge = _AbortRule(self.max_rejection_ratio, self.min_sample, self._edge_url())
        queue: asyncio.Queue[_Work | None] = asyncio.Queue(maxsize=self.concurrency * 2)

        # Store writes run on one background thread, in order, so that they do not hold the
        # event loop while answers wait: the write-ahead of each batch (awaited before the batch
        # is sent) and the acknowledgements (one batch of at most 2 x commit_every users written
        # while at most 2 x commit_every more are buffered; the rest in the ``finally`` below).
        committer = concurrent.futures.ThreadPoolExecutor(1, "personalize-commit")
        in_flight: list[concurrent.futures.Future[None]] = []

        def write(
            acks: list[tuple[str, dict[str, str | None]]],
            fails: list[tuple[str, str]],
            clears: list[str],
        ) -> None:
            if acks:
                store.commit(name, acks)
            if fails:
                store.record_failures(name, fails)
            if clears:
                store.clear_failures(name, clears)

        def take() -> tuple[
            list[tuple[str, dict[str, str | None]]], list[tuple[str, str]], list[str]
        ]:
            batch = (accepted[:], failures[:], clear[:])
            accepted.clear()
            failures.clear()
            clear.clear()
            return batch

        store_failed = False

        def check_written(future: concurrent.futures.Future[None]) -> None:
            nonlocal store_failed
            try:
                future.result()
            except StateStoreError as exc:
                # What this batch acknowledged stays pending (unknown) in the store, so the next
                # run sends it again; this run stops sending, since it can no longer record.
                store_failed = True
                control.stop(f"the state store failed: {exc}", cause=exc)

        def flush_in_background() -> None:
            nonlocal last_flush
            if in_flight:
                buffered = len(accepted) + len(failures)
                if not in_flight[0].done() and buffered < 2 * self.commit_every:
                    return  # keep buffering while the previous batch is written...
                check_written(in_flight.pop())  # ...but never more than two batches' worth
            if store_failed:
                return
            in_flight.append(committer.submit(write, *take()))
            last_flush = time.monotonic()

        def flush() -> None:
            """Write everything buffered, now, after any batch in flight."""
            while in_flight:
                check_written(in_flight.pop())
            if not store_failed:
                write(*take())

        def settle(work: _Work, outcome: SendOutcome) -> None:
            if outcome.ok:
                tally.progress.advance(1)
                if work.first_time:
                    tally.added += 1
                else:
                    tally.changed += 1
                if work.retried:
                    tally.retried += 1
                accepted.append((work.uid, work.new_state))
                judge.success()
            else:
                exc = outcome.error
                if _is_systemic(exc):
                    tally.not_sent_row(work.row, work.uid, f"not sent: {exc}")
                    control.stop(f"{type(exc).__name__}: {exc}")
                    return
                if work.retried:
                    tally.retried += 1
                reason = str(exc) if exc is not None else "failed"
                tally.rejected_row(work.row, work.uid, exc, reason)
                failures.append((work.uid, reason[:1000]))
                verdict = judge.failure(exc, reason)
                if verdict is not None:
                    control.stop(verdict)
            if (
                len(accepted) + len(failures) >= self.commit_every
                or time.monotonic() - last_flush >= self.commit_interval
            ):
                flush_in_background()

        def not_sent(work: _Work) -> None:
            tally.not_sent_row(work.row, work.uid, f"not sent: the run stopped ({control.reason})")

        async def worker() -> None:
            assert sender is not None
            while True:
                work = await queue.get()
                if work is None:
                    return
                if control:
                    not_sent(work)
                    continue
                if limiter is not None:
                    await limiter.aacquire()
                tally.requests += 1
                try:
                    outcome = await sender.send(work.uid, work.body)
                except asyncio.CancelledError:
                    if not control.grace_expired:
                        raise
                    # The stop's grace period ended with this request in flight: the edge may
                    # have applied it; its keys stay unknown and the next run sends them.
                    tally.not_sent_row(
                        work.row,
                        work.uid,
                        f"cancelled in flight: the run stopped ({control.reason}); the next "
                        "run sends it again",
                    )
                    return
                settle(work, outcome)

        async def produce() -> None:
            produced = 0
            for works in self._diff(spool, tally, full, clear):
                if not control:
                    # Write-ahead: these users' keys are pending before any of them is sent.
                    entries = [(w.uid, w.pending_state()) for w in works]
                    try:
                        await loop.run_in_executor(committer, store.mark_pending, name, entries)
                    except StateStoreError as exc:
                        control.stop(f"the state store failed: {exc}", cause=exc)
                for work in works:
                    if control:
                        not_sent(work)
                        continue
                    await queue.put(work)
                    produced += 1
                    if not produced % 64:
                        # put() on a queue with room never yields: give the answers waiting in
                        # the loop a turn, or a whole diff batch delays them (latency-bound runs).
                        await asyncio.sleep(0)
            for _ in range(self.concurrency):
                await queue.put(None)

        tasks = [asyncio.create_task(produce())]
        tasks += [asyncio.create_task(worker()) for _ in range(self.concurrency)]
        for task in tasks:
            control.track(task)
        try:
            # A worker that dies (a sender bug, an injected crash) must not leave the producer
            # waiting forever on a full queue: stop at the first exception.
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            control.disarm()
            for task in tasks:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            try:
                flush()
            except StateStoreError as exc:
                # The acknowledgements not written stay pending (unknown) in the store: the
                # next run sends those users again. The run itself is reported as stopped.
                control.stop(f"the state store failed: {exc}", cause=exc)
            finally:
                committer.shutdown(wait=True)
                if owns_sender:
                    await sender.aclose()
        return control.reason


class _AbortRule:
    """When a run should give up: more than ``ratio`` of the last ``window`` requests failed
    (judged on a recent window, so a late outage stops a long run quickly); the edge cannot be
    reached at all (connection refused, a host that does not resolve, a failed certificate
    check) before any request succeeded; or ``_CONNECT_FAILURES`` requests in a row could not
    connect after earlier ones did."""

    def __init__(self, ratio: float, window: int, url: str) -> None:
        self.ratio = ratio
        self.window = window
        self.url = url
        self.recent: collections.deque[bool] = collections.deque(maxlen=window)
        self.failed = 0
        self.unreachable = 0
        self.succeeded = False

    def _push(self, failed: bool) -> None:
        if len(self.recent) == self.window and self.recent[0]:
            self.failed -= 1
        self.recent.append(failed)
        self.failed += failed

    def success(self) -> None:
        self._push(False)
        self.unreachable = 0
        self.succeeded = True

    def failure(self, exc: PersonalizeError | None, reason: str) -> str | None:
        """Record a failed request; the reason to stop the run, if it should stop."""
        self._push(True)
        kind = connect_failure(exc) if isinstance(exc, APIConnectionError) else None
        if kind is not None:  # never connected (a drop after the work is not one of these)
            self.unreachable += 1
            if not self.succeeded:
                # Nothing ever got through and the sender already retried: the endpoint is
                # dead (or misnamed); failing every row one by one would only take longer.
                what = {
                    "refused": "refuses connections",
                    "dns": "does not resolve",
                    "tls": "fails the certificate check",
                }[kind]
                return f"cannot reach the Edge API at {self.url}: it {what}; last error: {reason}"
            if self.unreachable >= _CONNECT_FAILURES:
                return (
                    f"cannot reach the Edge API at {self.url}: {self.unreachable} requests in a "
                    f"row failed to connect; last error: {reason}"
                )
        else:
            self.unreachable = 0
        if len(self.recent) >= self.window and self.failed / len(self.recent) > self.ratio:
            return (
                f"{self.failed} of the last {len(self.recent)} requests failed, more than "
                f"{self.ratio:.0%}; last error: {reason}"
            )
        return None


class _NotRecorded(Exception):
    """A partition run keeps no history line of its own."""


class _PreflightFailed(Exception):
    """The Management API failed during the pre-flight; carries the API's error."""

    def __init__(self, cause: PersonalizeError) -> None:
        super().__init__(str(cause))
        self.cause = cause


#: At most this many problems of one row are spelled out (the rest are counted).
_MAX_ROW_PROBLEMS = 5


def _row_problems(problems: list[InvalidCell]) -> tuple[str, str]:
    """The reason and column of a row with one or more invalid cells."""
    first = problems[0]
    if len(problems) == 1:
        return first.reason, first.column
    shown = [f"column {p.column!r}: {p.reason}" for p in problems[:_MAX_ROW_PROBLEMS]]
    more = len(problems) - _MAX_ROW_PROBLEMS
    if more > 0:
        shown.append(f"and {more} more column{'s' if more > 1 else ''}")
    return f"{first.reason} (also {'; '.join(shown[1:])})", first.column


def _did_you_mean(missing: Sequence[str], columns: Sequence[str]) -> str:
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, [str(c) for c in columns], n=1, cutoff=0.6)
        if not close:
            folded = {str(c).lower().replace("-", "_").strip(): str(c) for c in columns}
            match = folded.get(name.lower().replace("-", "_").strip())
            close = [match] if match else []
        if close:
            hints.append(f"{name!r}: did you mean {close[0]!r}?")
    return f" ({'; '.join(hints)})" if hints else ""


def _is_systemic(exc: PersonalizeError | None) -> bool:
    """Failures that no other row can escape: bad credentials, no access, unknown project."""
    return isinstance(exc, (AuthenticationError, PermissionDeniedError, NotFoundError))
