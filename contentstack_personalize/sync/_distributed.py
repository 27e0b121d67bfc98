"""Running one sync as many partitions at once (Spark, Dask, Ray, or plain processes).

Users are split by a stable hash of their UID (:func:`partition_of`), so every user belongs to
exactly one partition: duplicate detection stays exact and partitions write disjoint state. The
driver opens a :class:`DistributedRun` (it holds the sync's lock, records one run, and evaluates
alerts once); each worker rebuilds the sync from a picklable :class:`SyncSpec` (no connection,
no secret) with ``Sync.from_spec(spec)`` and runs its rows with
``sync.run(rows, partition=run.partition(i))``, which takes a
lock of its own per partition, so an engine that re-executes a partition (a task retry,
speculative execution) never runs it twice at once.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import attrs

from ..errors import ConfigurationError
from ..state import RunRecord, StateStore
from ._control import LockKeeper
from ._partition import Partition, partition_of
from ._result import COUNT_NAMES, AlertEvaluator, RowIssue, RunStatus, SyncResult

__all__ = ["DistributedRun", "Partition", "SyncSpec", "combine_results", "partition_of"]

#: Header names never shipped to workers (credentials travel through the worker's environment).
_SECRET_HEADERS = frozenset(
    {"authorization", "authtoken", "proxy-authorization", "cookie", "x-api-key", "api_key"}
)


_STATUS_ORDER: dict[str, int] = {
    "succeeded": 0,
    "partially_failed": 1,
    "failed": 2,
    "aborted": 3,
}


def combine_results(
    results: Sequence[SyncResult],
    *,
    run_id: str,
    sync_name: str,
    started_at: float,
    max_issue_details: int = 10_000,
) -> SyncResult:
    """One result for a distributed run: counts summed, issues kept up to
    ``max_issue_details``, the worst status, every partition's result in ``partitions``."""
    counts = {name: sum(getattr(r, name) for r in results) for name in COUNT_NAMES}
    invalid: list[RowIssue] = []
    rejected: list[RowIssue] = []
    for r in results:
        invalid.extend(r.invalid_rows[: max(0, max_issue_details - len(invalid))])
        rejected.extend(r.rejected_rows[: max(0, max_issue_details - len(rejected))])
    truncated = any(r.issues_truncated for r in results) or (
        sum(len(r.invalid_rows) for r in results) > len(invalid)
        or sum(len(r.rejected_rows) for r in results) > len(rejected)
    )
    status: RunStatus = "succeeded"
    for r in results:
        if _STATUS_ORDER[r.status] > _STATUS_ORDER[status]:
            status = r.status
    if status == "failed" and counts["added"] + counts["changed"]:
        status = "partially_failed"
    errors = [f"{r.run_id}: {r.error}" for r in results if r.error]
    warnings = tuple(dict.fromkeys(w for r in results for w in r.warnings))
    return SyncResult(
        run_id=run_id,
        sync_name=sync_name,
        status=status,
        started_at=started_at,
        finished_at=max([r.finished_at for r in results], default=time.time()),
        requests=sum(r.requests for r in results),
        invalid_rows=tuple(invalid),
        rejected_rows=tuple(rejected),
        issues_truncated=truncated,
        error="; ".join(errors) if errors else None,
        warnings=warnings,
        partitions=tuple(results),
        **counts,
    )


@attrs.frozen(kw_only=True)
class SyncSpec:
    """Everything a worker needs to rebuild a :class:`Sync`, and nothing it must not carry:
    no connection, no credential (a worker needs none: it only talks to the Edge API, which
    takes no authentication), no password in the state URL (a worker reads it from its
    environment, e.g. ``PGPASSWORD``). Picklable with ``cloudpickle`` (what Spark, Dask and Ray
    use); transforms in the mapping must be picklable too. ``Sync.from_spec(spec)`` rebuilds
    the sync on a worker.
    """

    project_uid: str
    edge_url: str
    timeout: Any
    retry: Any
    verify: Any
    headers: Mapping[str, str]
    match_on: str
    fields: tuple[Any, ...]
    name: str
    state: str
    options: Mapping[str, Any]
    preflight: Any


def _state_text(given: Any, state: Any) -> str:
    text = given if isinstance(given, str) else getattr(state, "path", None)
    if not isinstance(text, str) or not text or text == ":memory:":
        raise ConfigurationError(
            "a distributed run needs state every worker can reach: a postgresql:// URL (or a "
            f"path on a shared disk), not {type(state).__name__}"
        )
    parsed = urllib.parse.urlsplit(text)
    if parsed.password:  # never ship a password: workers read it from their environment
        netloc = parsed.netloc.rsplit("@", 1)
        user = netloc[0].split(":", 1)[0]
        text = urllib.parse.urlunsplit(parsed._replace(netloc=f"{user}@{netloc[1]}"))
    return text


class _SpecSource(Protocol):
    """What a spec is made from (a :class:`Sync`: its client, mapping and options)."""

    client: Any
    match_on: str
    name: str
    _state_given: Any
    state: Any
    on_duplicate: Any
    concurrency: int
    type_check: Any
    max_rejection_ratio: float
    min_sample: int
    commit_every: int
    stop_grace: float
    change_log: Any
    change_log_days: float

    @property
    def fields(self) -> Sequence[Any]: ...


def make_spec(sync: _SpecSource, preflight: Any) -> SyncSpec:
    config = sync.client.config
    if not sync.client.project_uid:
        raise ConfigurationError("the client has no project uid")
    headers = {k: v for k, v in config.headers.items() if k.lower() not in _SECRET_HEADERS}
    return SyncSpec(
        project_uid=sync.client.project_uid,
        edge_url=str(config.edge_url),
        timeout=config.timeout,
        retry=config.retry,
        verify=config.verify,
        headers=headers,
        match_on=sync.match_on,
        fields=tuple(f.field for f in sync.fields),
        name=sync.name,
        state=_state_text(sync._state_given, sync.state),
        options={
            "on_duplicate": sync.on_duplicate,
            "concurrency": sync.concurrency,
            "type_check": sync.type_check,
            "max_rejection_ratio": sync.max_rejection_ratio,
            "min_sample": sync.min_sample,
            "raise_on_abort": False,
            "commit_every": sync.commit_every,
            "lock_timeout": 0.0,
            "stop_grace": sync.stop_grace,
            "change_log": sync.change_log,
            "change_log_days": sync.change_log_days,
        },
        preflight=preflight,
    )


class _RunOwner(_SpecSource, Protocol):
    """What a distributed run needs of its sync besides the spec: its limits, alerts and
    state."""

    max_issue_details: int
    alerts: AlertEvaluator | None
    state: StateStore


class DistributedRun:
    """The driver's side of one distributed run (see the module docstring): holds the sync's
    lock, records one run, and turns the partitions' results into one result.

    Example::

        with sync.begin_distributed(partitions=8) as run:
            spec = run.spec                      # ship this to the workers, where
            # Sync.from_spec(spec).run(rows_of_partition_i, partition=run.partition(i))
            results = [...]                      # one SyncResult per partition
            result = run.finish(results)
    """

    def __init__(
        self,
        sync: _RunOwner,
        count: int,
        keeper: LockKeeper,
        run_id: str,
        preflight: Any,
        lost: list[str] | None = None,
    ) -> None:
        self._lost = lost if lost is not None else []
        self.sync = sync
        self.count = count
        self.run_id = run_id
        self.started_at = time.time()
        self._preflight = preflight
        self._keeper = keeper
        self._done = False

    @property
    def spec(self) -> SyncSpec:
        """What to ship to the workers (needs state they can all reach: a ``postgresql://``
        URL or a file on a shared disk; in-process workers can use the sync itself)."""
        return make_spec(self.sync, self._preflight)

    def partition(self, index: int) -> Partition:
        return Partition(index=index, count=self.count, run_id=self.run_id)

    def partitions(self) -> list[Partition]:
        return [self.partition(i) for i in range(self.count)]

    def finish(self, results: Iterable[SyncResult]) -> SyncResult:
        """Combine the partitions' results (one per partition: the last successful attempt
        of each), record the run, evaluate the alerts once, release the lock."""
        # One result per partition: an engine that re-ran one hands its last attempt last.
        by_partition = {r.run_id: r for r in results}
        collected = list(by_partition.values())
        result = combine_results(
            collected,
            run_id=self.run_id,
            sync_name=self.sync.name,
            started_at=self.started_at,
            max_issue_details=self.sync.max_issue_details,
        )
        missing = self.count - len(collected)
        if self._lost:
            result = attrs.evolve(
                result,
                status="aborted",
                error=(result.error + "; " if result.error else "") + self._lost[0],
            )
        if missing > 0:
            result = attrs.evolve(
                result,
                status="aborted",
                error=(result.error + "; " if result.error else "")
                + f"{missing} of {self.count} partitions returned no result",
            )
        self._record(result.status, result.counts() | {"requests": result.requests}, result.error)
        if self.sync.alerts is not None:
            result = result.with_alerts(self.sync.alerts.evaluate(result, self.sync.state))
        self._release()
        return result

    def fail(self, error: BaseException | str) -> None:
        """Record the run as failed (the engine lost it) and release the lock."""
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self._record("failed", {}, text)
        self._release()

    def _record(self, status: str, counts: dict[str, int], error: str | None) -> None:
        self.sync.state.save_run(
            RunRecord(
                run_id=self.run_id,
                sync_name=self.sync.name,
                started_at=self.started_at,
                finished_at=time.time(),
                status=status,
                counts=counts,
                error=error,
            )
        )

    def _release(self) -> None:
        if not self._done:
            self._done = True
            self._keeper.release()

    def __enter__(self) -> DistributedRun:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if not self._done:
            self.fail(exc if exc is not None else "the distributed run ended without finish()")
