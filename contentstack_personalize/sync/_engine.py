"""The sync engine: source -> match -> map -> spool -> diff -> execute -> commit -> report.

A run first streams the whole source through matching and mapping into a temporary on-disk
spool (constant memory, and it lets a duplicate UID anywhere in the source invalidate every
occurrence before anything is sent). It then walks the spool in source order, compares each
user's mapped attributes with the state store, and sends only the changed attributes of changed
users, many requests in flight. A user's new state is committed only after the edge accepted it.

Each stage is a module of its own with one job, and :class:`Sync` wires them:

- :mod:`._preflight`: check (or create) the mapped attributes, read what audience rules expect;
- :mod:`._load`: read the source, match, map and type-check every row into the :mod:`._spool`;
- :mod:`._diff`: compare the spool with the state (reads only);
- :mod:`._execute`: send the changed users concurrently;
- :mod:`._commit`: write ahead, commit acknowledgements, record failures, log changes;
- :mod:`._tally`: give every row exactly one outcome, and assert that the counts add up;
- :mod:`._abort`: decide when a run gives up;
- :mod:`._run_record`: the run's history line and result.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from ..client import AsyncPersonalizeClient, PersonalizeClient
from ..debugger import Debugger
from ..errors import (
    APIStatusError,
    ConfigurationError,
    DestinationMismatchError,
    StateStoreError,
    SyncAbortedError,
    TransportError,
)
from ..state import ChangeEntry, ChangeLogMode, ChangeLogStore, RunRecord, StateStore, open_state
from ._abort import AbortRule
from ._blocking import CALLER, run_blocking
from ._client_access import AnyClient, ClientCalls, async_twin, has_own_http_client
from ._commit import Committer
from ._control import LockKeeper, RunControl, ahandle_sigterm, handle_sigterm
from ._diff import diff
from ._distributed import DistributedRun, SyncSpec
from ._execute import Executor
from ._fields import CompiledField, Field, FieldSpec, compile_mapping
from ._load import Loader
from ._options import OnDuplicate, Option, SyncOptions
from ._partition import Partition, new_run_id
from ._preflight import NO_MANAGEMENT, Preflight, PreflightFailed, preflight
from ._progress import ProgressArg, make_progress
from ._result import AlertEvaluator, Plan, RunStatus, SyncResult
from ._run_record import RunRecorder, outcome_status
from ._sender import EdgeSender, make_sender
from ._sources import DEFAULT_CHUNK
from ._spool import Spool
from ._tally import CountMismatchError, Tally
from ._typecheck import TypeCheck, TypeIssue
from ._uids import uid_from_value

__all__ = ["OnDuplicate", "Sync", "uid_from_value"]

logger = logging.getLogger("contentstack_personalize.sync")

_T = TypeVar("_T")

#: Seconds a run's lock lasts unless renewed (every quarter of it) by the running process.
_LOCK_TTL = 60.0
#: Seconds a clean pre-flight (attributes checked, audience rules read) is reused.
_PREFLIGHT_TTL = 300.0
#: The sync_meta key holding the destination (project and Edge URL) a sync's state describes.
_DESTINATION = "destination"

#: The client of the current run: for a blocking run of an async client, a twin made for that
#: run's event loop.
_RUN_CLIENT: contextvars.ContextVar[AsyncPersonalizeClient | None] = contextvars.ContextVar(
    "contentstack_personalize_run_client", default=None
)


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
    - ``alerts``: an :class:`~contentstack_personalize.alerts.Alerts` (any
      :class:`AlertEvaluator`), evaluated after every run (outcomes in ``result.alerts``); a
      failing alert sink never fails the sync.
    - ``sender``: an :class:`EdgeSender` to use instead of the automatic choice.
    - ``change_log``: with a state store that keeps a change log, what each run logs per user
      it sent: the values sent and the values before (``"values"``, default), only digests of
      them (``"digests"``), or nothing (``"off"``); ``change_log_days``: how long entries are
      kept (default 30; older ones are pruned at the end of each run).

    Every option is also an attribute (``sync.concurrency``...) backed by ``sync.options``;
    assigning one validates it like the constructor does.

    Example::

        sync = Sync(client, match_on="user_id",
                    mapping={"plan": "plan_tier", "ltv": "lifetime_value"},
                    state="users.db")
        print(sync.plan(rows).summary())   # sends nothing
        result = sync.run(rows)            # or: await sync.arun(rows)
        print(result.summary())
    """

    match_on = Option[str]()
    on_duplicate = Option[OnDuplicate]()
    concurrency = Option[int]()
    requests_per_second = Option["float | None"]()
    check_attributes = Option[bool]()
    create_missing_attributes = Option[bool]()
    max_rejection_ratio = Option[float]()
    min_sample = Option[int]()
    raise_on_abort = Option[bool]()
    commit_every = Option[int]()
    commit_interval = Option[float]()
    chunk_size = Option[int]()
    max_issue_details = Option[int]()
    type_check = Option[TypeCheck]()
    debugger = Option["bool | Debugger | None"]()
    alerts = Option["AlertEvaluator | None"]()
    lock_timeout = Option[float]()
    stop_grace = Option[float]()
    spool_dir = Option["str | None"]()
    change_log = Option[ChangeLogMode]()
    change_log_days = Option[float]()

    def __init__(
        self,
        client: AnyClient,
        *,
        match_on: str,
        mapping: Mapping[str, FieldSpec] | Sequence[Field],
        state: str | os.PathLike[str] | StateStore | None = None,
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
        alerts: AlertEvaluator | None = None,
        lock_timeout: float = 0.0,
        stop_grace: float = 10.0,
        spool_dir: str | os.PathLike[str] | None = None,
        change_log: ChangeLogMode = "values",
        change_log_days: float = 30.0,
    ) -> None:
        if not isinstance(client, (PersonalizeClient, AsyncPersonalizeClient)):
            raise ConfigurationError(
                "client must be a PersonalizeClient or AsyncPersonalizeClient, "
                f"not {type(client).__name__}"
            )
        self.options = SyncOptions(
            match_on=match_on,
            on_duplicate=on_duplicate,
            concurrency=concurrency,
            requests_per_second=requests_per_second,
            check_attributes=check_attributes,
            create_missing_attributes=create_missing_attributes,
            max_rejection_ratio=max_rejection_ratio,
            min_sample=min_sample,
            raise_on_abort=raise_on_abort,
            commit_every=commit_every,
            commit_interval=commit_interval,
            chunk_size=chunk_size,
            max_issue_details=max_issue_details,
            type_check=type_check,
            debugger=debugger,
            alerts=alerts,
            lock_timeout=lock_timeout,
            stop_grace=stop_grace,
            spool_dir=spool_dir,
            change_log=change_log,
            change_log_days=change_log_days,
        )
        project = client.project_uid
        if not project:
            raise ConfigurationError(
                "the client has no project: pass project_uid=... (or set "
                "CONTENTSTACK_PERSONALIZE_PROJECT_UID)"
            )
        self.client = client
        self.fields: list[CompiledField] = compile_mapping(mapping)
        self.name = name or f"{project}/{match_on}"
        self._sender = sender
        self.state, self._owns_state = open_state(state)
        self._state_given = os.fspath(state) if isinstance(state, (str, os.PathLike)) else None
        self._said_no_management = False
        self._controls: set[RunControl] = set()
        self._preflight_cache: tuple[float, Preflight] | None = None

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
        spool = Spool(self.spool_dir)
        try:
            tally = Tally(self.max_issue_details)
            type_issues = await self._aload(rows, spool, tally, preflight)
            db = spool.db
            db.execute("BEGIN")
            buffer: list[tuple[str, str, str | None, str, int]] = []
            for batch in diff(
                spool, self.state, self.name, self.keys, on_duplicate=self.on_duplicate, full=full
            ):
                tally.diffed(batch, self.match_on)
                for work in batch.works:
                    for key, new in work.changed.items():
                        buffer.append(
                            (work.uid, key, work.old_state.get(key), new, work.first_time)
                        )
                    tally.accepted_row(work.row, first_time=work.first_time, retried=work.retried)
                if len(buffer) >= 5000:
                    spool.add_changes(buffer)
                    buffer.clear()
            spool.add_changes(buffer)
            db.execute("COMMIT")
            tally.check()
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
            type_issues=tuple(type_issues),
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
    def from_spec(
        cls, spec: SyncSpec, *, state: str | os.PathLike[str] | StateStore | None = None
    ) -> Sync:
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
        """This sync's latest runs, newest first (the store's ``runs`` table)."""
        return self.state.runs(self.name, limit)

    def changes(
        self, *, uid: str | None = None, run_id: str | None = None, limit: int = 1000
    ) -> list[ChangeEntry]:
        """This sync's changelog, newest first: per user sent in a run, the keys, the new and
        old values (or digests), the outcome and the API's answer (see ``change_log=``).

        Example: ``for e in sync.changes(uid="user-42", limit=5): print(e.run_id, e.outcome)``
        """
        store: Any = self.state
        if not isinstance(store, ChangeLogStore):
            raise ConfigurationError(
                f"the state store {type(store).__name__} keeps no changelog (it has no "
                "changes()); MemoryState, SQLiteState and PostgresState do"
            )
        return store.changes(self.name, run_id=run_id, uid=uid, limit=limit)

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

    # -- wiring --------------------------------------------------------------------------------

    def _client(self) -> AnyClient:
        """The client of the current run: the user's, or for a blocking run of an async client
        a twin made for that run's event loop."""
        return _RUN_CLIENT.get() or self.client

    def _blocking(self, make_coro: Callable[[], Awaitable[_T]]) -> _T:
        """Run a coroutine of this sync from blocking code (see :func:`run_blocking`)."""
        client = self.client
        if not isinstance(client, AsyncPersonalizeClient):
            return run_blocking(make_coro)
        if has_own_http_client(client):
            raise ConfigurationError(
                "this AsyncPersonalizeClient has its own httpx.AsyncClient, which belongs to one "
                "event loop: use `await sync.arun(rows)` / `await sync.aplan(rows)` with it"
            )

        async def with_twin() -> _T:
            # An async client's connections belong to the loop that made them, and every
            # blocking run has a loop of its own: use a twin with the same settings per run.
            twin = async_twin(client, max_connections=self.concurrency)
            token = _RUN_CLIENT.set(twin)
            try:
                return await make_coro()
            finally:
                _RUN_CLIENT.reset(token)
                await twin.aclose()

        return run_blocking(with_twin)

    async def _preflight(self, *, create: bool) -> Preflight:
        """Check (or create) the mapped attributes and read what audience rules expect of
        them (see :func:`preflight`).

        A clean result (every key a custom attribute) is reused for ``_PREFLIGHT_TTL`` seconds
        by later runs and plans of this ``Sync``: a rerun a minute later needs no Management
        call (the Management API allows 10 requests per second per organization)."""
        cached = self._preflight_cache
        if cached is not None and time.monotonic() - cached[0] < _PREFLIGHT_TTL:
            return cached[1]
        checks = self.check_attributes or self.create_missing_attributes
        types = self.type_check != "off"
        if (checks or types) and not self.client.has_management_auth:
            if not self._said_no_management:
                logger.warning(NO_MANAGEMENT)
                self._said_no_management = True
            return Preflight([NO_MANAGEMENT], {})
        result = await preflight(
            ClientCalls(self._client()),
            self.keys,
            project_uid=self.client.project_uid,
            check=self.check_attributes,
            create_missing=self.create_missing_attributes,
            types=types,
            create=create,
        )
        if not result.warnings and self.client.has_management_auth:
            self._preflight_cache = (time.monotonic(), result)
        return result

    def _loader(self) -> Loader:
        return Loader(
            name=self.name,
            match_on=self.match_on,
            fields=self.fields,
            chunk_size=self.chunk_size,
            type_check=self.type_check,
        )

    async def _aload(
        self,
        rows: Any,
        spool: Spool,
        tally: Tally,
        preflight: Preflight,
        control: RunControl | None = None,
    ) -> list[TypeIssue]:
        """Read the source into the spool without holding the event loop: the loop gets a turn
        after every chunk (so Ctrl-C and cancellation land while a big source is read). Under a
        notebook's blocking ``run()``, the source is read on the caller's thread, where it was
        made."""
        loader = self._loader()
        expectations = preflight.expectations
        caller = CALLER.get()
        if caller is not None:
            return await asyncio.wrap_future(
                caller.submit(lambda: loader.load(rows, spool, tally, expectations, control))
            )
        steps = loader.steps(rows, spool, tally, expectations, control)
        while True:
            try:
                next(steps)
            except StopIteration as stop:
                issues: list[TypeIssue] = stop.value
                return issues
            await asyncio.sleep(0)

    # -- a run -----------------------------------------------------------------------------------

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

    def _run_debugger(self) -> Debugger | None:
        if self.debugger is True:
            return Debugger()
        return self.debugger if isinstance(self.debugger, Debugger) else None

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
        tally = Tally(self.max_issue_details)
        store = self.state
        self._check_destination(bind=True)
        # A partition of a distributed run records nothing: the driver records the one run.
        record = control.partition is None
        recorder = RunRecorder(store, self.name, run_id, record=record)
        recorder.start()
        report = _Report()
        error: str | None = None
        cause: BaseException | None = None
        status: RunStatus = "failed"
        spool: Spool | None = None
        interrupted = raising = False
        mismatch: CountMismatchError | None = None
        debugger = self._run_debugger()
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
            spool = Spool(self.spool_dir)
            await self._stages(
                rows, spool, tally, report, full=full, control=control, run_id=run_id
            )
            error = control.reason
            cause = control.cause
            status = outcome_status(tally, error)
        except asyncio.CancelledError as exc:
            status, error, cause = "aborted", "interrupted (cancelled or Ctrl-C)", exc
            interrupted = raising = True
            raise
        except KeyboardInterrupt as exc:
            status, error, cause = "aborted", "interrupted (Ctrl-C)", exc
            interrupted = raising = True
            raise
        except StateStoreError as exc:
            # Not a crash of the run: it stops, with a result, like any other abort.
            status, error, cause = "aborted", f"the state store failed: {exc}", exc
        except PreflightFailed as failed:
            # A Management outage before anything was read or sent: an abort with a result (so
            # raise_on_abort=False returns it and alerts can judge it), not a bare exception.
            status, cause = "aborted", failed.cause
            error = (
                "the pre-flight check against the Management API failed, nothing was sent: "
                f"{type(cause).__name__}: {cause}"
            )
        except BaseException as exc:
            status, raising, cause = "failed", True, exc
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            if spool is not None:
                verb = "stopped" if control or status == "aborted" else "failed"
                self._settle_rest(spool, tally, f"{verb} ({control.reason or error})", run_id)
            try:
                tally.check()
            except CountMismatchError as exc:
                logger.error("sync %r run %s: %s", self.name, run_id, exc)
                if not raising:
                    mismatch = exc
                    status, error, cause = "failed", f"{type(exc).__name__}: {exc}", exc
            result = recorder.result(
                tally,
                status,
                error=error,
                warnings=report.warnings,
                type_issues=report.type_issues,
                exception=cause,
                debugger=debugger,
            )
            holder["result"] = result
            recorder.finish(result, tally)
            if self.change_log != "off":
                recorder.prune_changes(self.change_log_days)
            observers.close()
            # After save_run, so rules comparing with the previous run see the history; not
            # when an operator interrupted the run (nobody needs paging for their own Ctrl-C).
            if self.alerts is not None and not interrupted and record:
                result = result.with_alerts(await self.alerts.aevaluate(result, store))
                holder["result"] = result
        if mismatch is not None:
            raise mismatch
        if status == "aborted" and (self.raise_on_abort or control.signal is not None):
            # A signal always raises: the process was asked to stop and must exit non-zero.
            raise SyncAbortedError(
                f"sync {self.name!r} stopped early: {error}", result=result, cause=cause
            ) from cause
        return result

    async def _stages(
        self,
        rows: Any,
        spool: Spool,
        tally: Tally,
        report: _Report,
        *,
        full: bool,
        control: RunControl,
        run_id: str,
    ) -> None:
        """Pre-flight, load, then send and commit (unless the run was stopped meanwhile)."""
        try:
            found = await self._preflight(create=True)
        except (APIStatusError, TransportError) as exc:
            raise PreflightFailed(exc) from exc
        report.warnings = list(found.warnings)
        report.type_issues = await self._aload(rows, spool, tally, found, control)
        tally.progress.start(tally.read, f"sync {self.name}")
        report.warnings += [issue.describe() for issue in report.type_issues]
        # Only the read count here: duplicates are judged while the changes are sent, so an
        # invalid count now would disagree with the result's.
        logger.info("sync %r run %s: read %d rows", self.name, run_id, tally.read)
        if not control:
            await self._execute(spool, tally, full, control, run_id)

    def _settle_rest(self, spool: Spool, tally: Tally, why: str, run_id: str) -> None:
        """Give each row the run never got to its not_sent outcome and reason; close the
        spool."""
        try:
            tally.not_sent_rest(tally.unsettled(spool), f"not sent: the run {why}")
        except Exception:  # the spool itself failed: the count check says so
            logger.exception("sync %r run %s: could not read the spool", self.name, run_id)
        finally:
            spool.close()

    async def _execute(
        self, spool: Spool, tally: Tally, full: bool, control: RunControl, run_id: str
    ) -> None:
        """Send the changed users concurrently; commit what the edge accepted.

        Before a batch of users is sent, their state is written with the keys being sent marked
        unknown (write-ahead); an acknowledgement commits the new values; any other outcome (a
        rejection, a lost answer, a kill) leaves those keys unknown, so the next run sends them
        whatever the source says by then. A reason to stop early lands in ``control``.
        """
        sender = self._sender
        owns_sender = sender is None
        if sender is None:
            sender = make_sender(self._client(), concurrency=self.concurrency)
        committer = Committer(
            self.state,
            self.name,
            control,
            commit_every=self.commit_every,
            commit_interval=self.commit_interval,
            run_id=run_id,
            change_log=self.change_log,
        )
        executor = Executor(
            sender,
            tally=tally,
            committer=committer,
            judge=AbortRule(self.max_rejection_ratio, self.min_sample, self._edge_url()),
            control=control,
            concurrency=self.concurrency,
            match_on=self.match_on,
            requests_per_second=self.requests_per_second,
        )
        batches = diff(
            spool, self.state, self.name, self.keys, on_duplicate=self.on_duplicate, full=full
        )
        try:
            await executor.run(batches)
        finally:
            try:
                committer.close()
            finally:
                if owns_sender:
                    await sender.aclose()


@attrs.define
class _Report:
    """What a run found to report besides its counts."""

    warnings: list[str] = attrs.field(factory=list)
    type_issues: list[TypeIssue] = attrs.field(factory=list)
