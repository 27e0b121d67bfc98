"""What the Dask, Spark and Ray runners share: the partition a row belongs to, the spec each
worker runs with (its share of the concurrency budget, a lock wait that outlasts a lost
worker's lease), one partition's run on a worker, and the driver's last step.

The engine side lives in :mod:`contentstack_personalize.sync` (``Sync.begin_distributed``,
``Sync.from_spec``, ``partition_of``); nothing here re-implements any sync logic.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from ..errors import ConfigurationError, SyncAbortedError
from ..sync import DistributedRun, Partition, Sync, SyncResult, SyncSpec, partition_of_value

__all__ = [
    "PARTITION_COLUMN",
    "bucket_of",
    "check_partitions",
    "concurrency_share",
    "finish",
    "raise_if_aborted",
    "run_partition",
    "worker_spec",
]

#: The column the runners add to carry each row's partition (dropped before the rows are read).
PARTITION_COLUMN = "__personalize_partition__"

#: Seconds a re-executed partition waits for the lock of the attempt it replaces: longer than a
#: lost worker's lease (60 s), so a retry on another machine runs instead of failing busy.
DEFAULT_LOCK_WAIT = 90.0


def bucket_of(value: Any, count: int) -> int:
    """The partition of a row from its match value (see :func:`partition_of_value`)."""
    return partition_of_value(value, count)


def check_partitions(partitions: Any) -> int:
    if not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1:
        raise ConfigurationError(f"partitions must be a positive integer, not {partitions!r}")
    return partitions


def concurrency_share(budget: int, slots: int) -> int:
    """Requests in flight per partition so that ``slots`` partitions running at once stay within
    ``budget`` (at least one each)."""
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise ConfigurationError(f"max_concurrency must be a positive integer, not {budget!r}")
    return max(1, budget // max(1, slots))


def worker_spec(
    spec: SyncSpec, *, concurrency: int, lock_wait: float = DEFAULT_LOCK_WAIT
) -> SyncSpec:
    """The spec shipped to the workers: this share of the concurrency budget each, and a lock
    wait so that a re-executed partition outlives the lease of the attempt it replaces."""
    options = {**spec.options, "concurrency": concurrency, "lock_timeout": float(lock_wait)}
    return attrs.evolve(spec, options=options)


def run_partition(
    spec: SyncSpec,
    index: int,
    count: int,
    run_id: str,
    rows: Any,
    *,
    state: Any = None,
) -> SyncResult:
    """On a worker: rebuild the sync and run one partition's rows (``state=`` overrides the
    shipped state, e.g. a URL carrying a password the worker holds)."""
    partition = Partition(index=index, count=count, run_id=run_id)
    with Sync.from_spec(spec, state=state) as sync:
        return sync.run(rows, partition=partition)


def finish(sync: Sync, run: DistributedRun, results: Iterable[SyncResult]) -> SyncResult:
    """On the driver: one result and one run record; an aborted run raises like ``Sync.run``
    does (``SyncAbortedError`` holding the result) unless ``raise_on_abort=False``."""
    return raise_if_aborted(sync, run.finish(results))


def raise_if_aborted(sync: Sync, result: SyncResult) -> SyncResult:
    if result.status == "aborted" and sync.raise_on_abort:
        raise SyncAbortedError(f"sync {sync.name!r} stopped early: {result.error}", result=result)
    return result
