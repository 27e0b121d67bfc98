"""Run a sync over a Dask DataFrame, on the Dask cluster that already holds the data (needs the
``[dask]`` extra: ``dask[dataframe]`` and ``distributed``).

Example::

    from dask.distributed import Client
    import dask.dataframe as dd
    from contentstack_personalize.integrations.dask import sync_dask_dataframe

    client = Client("tcp://scheduler:8786")
    users = dd.read_parquet("s3://bucket/users/")
    sync = Sync(PersonalizeClient(), match_on="user_id", mapping={...},
                state="postgresql://sync@db/syncs")        # state every worker can reach
    result = sync_dask_dataframe(sync, users, partitions=32)

The driver (this process) opens one distributed run (``sync.begin_distributed``: the sync's
lock, the pre-flight, one run record); the rows are shuffled so that each Dask partition holds
exactly the users of one :func:`~contentstack_personalize.sync.partition_of` bucket; each
partition runs on a worker with ``map_partitions`` and returns its result; the driver combines
them into one :class:`~contentstack_personalize.sync.SyncResult`. A ``distributed.Semaphore``
caps how many partitions run at once, so the requests in flight across the cluster stay within
``max_concurrency``. A partition Dask re-executes (a worker lost mid-partition) is safe: it
waits for the lost attempt's partition lock, sees what was committed as unchanged, and only its
last attempt's result is counted.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError
from ..sync import Sync, SyncResult, SyncSpec
from ._partitioned import (
    DEFAULT_LOCK_WAIT,
    PARTITION_COLUMN,
    bucket_of,
    check_partitions,
    concurrency_share,
    finish,
    run_partition,
    worker_spec,
)

__all__ = ["sync_dask_dataframe"]

_RESULT_COLUMN = "result"


def _add_bucket(frame: Any, match_on: str, count: int) -> Any:
    buckets = [bucket_of(value, count) for value in frame[match_on].tolist()]
    return frame.assign(**{PARTITION_COLUMN: buckets}).astype({PARTITION_COLUMN: "int64"})


def _run_dask_partition(
    frame: Any,
    spec: SyncSpec,
    count: int,
    run_id: str,
    state: Any,
    semaphore: Any,
    partition_info: dict[str, Any] | None = None,
) -> Any:
    import pandas as pd

    if partition_info is None:  # only while Dask infers the output's type: nothing to run
        return pd.DataFrame({_RESULT_COLUMN: pd.Series([], dtype=object)})
    index = int(partition_info["number"])
    rows = frame.reset_index(drop=True)
    if PARTITION_COLUMN in rows.columns:
        rows = rows.drop(columns=[PARTITION_COLUMN])
    if semaphore is not None:
        with semaphore:
            result = run_partition(spec, index, count, run_id, rows, state=state)
    else:
        result = run_partition(spec, index, count, run_id, rows, state=state)
    return pd.DataFrame({_RESULT_COLUMN: pd.Series([result], dtype=object)})


def _distributed_client() -> Any:
    try:
        from distributed import get_client
    except ImportError:  # the local schedulers: no cluster, no semaphore
        return None
    try:
        return get_client()
    except ValueError:  # no client was created in this process
        return None


def sync_dask_dataframe(
    sync: Sync,
    ddf: Any,
    *,
    partitions: int | None = None,
    max_concurrency: int | None = None,
    state: Any = None,
    shuffle_method: str = "tasks",
    lock_wait: float = DEFAULT_LOCK_WAIT,
) -> SyncResult:
    """Run ``sync`` over the Dask DataFrame ``ddf`` on the current Dask client's workers and
    return one result for the whole run.

    - ``partitions``: how many partitions the users are split into (default: ``ddf``'s own
      partition count); one Dask task runs each.
    - ``max_concurrency``: requests in flight across the whole cluster (default
      ``sync.concurrency``). It is split among the partitions that may run at once: the
      cluster's worker threads, capped with a ``distributed.Semaphore``.
    - ``state``: what the workers open instead of ``sync``'s state (e.g. a ``postgresql://``
      URL with a password the workers hold); by default the shipped URL, without password,
      which the workers complete from their environment (``PGPASSWORD``, ``~/.pgpass``).
    - ``shuffle_method``: ``"tasks"`` (default) survives a lost worker by recomputing what it
      held; ``"p2p"`` is faster on large frames.
    - ``lock_wait``: seconds a re-executed partition waits for the lock of the attempt it
      replaces (longer than a lease, 60 s, so a retry on another machine runs).

    The state must be one every worker reaches (``postgresql://``, or an SQLite file on a
    shared disk). Raises ``SyncAbortedError`` for an aborted run unless the sync has
    ``raise_on_abort=False``; the run is recorded as failed if Dask itself fails.
    """
    count = check_partitions(partitions if partitions is not None else ddf.npartitions)
    budget = max_concurrency if max_concurrency is not None else sync.concurrency
    match_on = sync.match_on
    if match_on not in ddf.columns:
        raise ConfigurationError(
            f"the DataFrame has no column {match_on!r} (match_on); it has {list(ddf.columns)}"
        )
    client = _distributed_client()
    if client is not None:
        threads = sum(client.nthreads().values()) or 1
        slots = max(1, min(count, threads, budget))
    else:
        slots = max(1, min(count, budget))
    share = concurrency_share(budget, slots)

    with sync.begin_distributed(partitions=count) as run:
        spec = worker_spec(run.spec, concurrency=share, lock_wait=lock_wait)
        semaphore = None
        if client is not None:
            from distributed import Semaphore

            semaphore = Semaphore(max_leases=slots, name=f"contentstack-personalize-{run.run_id}")
        try:
            results = _compute(
                ddf, match_on, count, spec, run.run_id, state, semaphore, shuffle_method
            )
        finally:
            if semaphore is not None:
                semaphore.close()
        return finish(sync, run, results)


def _compute(
    ddf: Any,
    match_on: str,
    count: int,
    spec: SyncSpec,
    run_id: str,
    state: Any,
    semaphore: Any,
    shuffle_method: str,
) -> list[SyncResult]:
    import pandas as pd

    meta = ddf._meta.assign(**{PARTITION_COLUMN: pd.Series([], dtype="int64")})
    tagged = ddf.map_partitions(_add_bucket, match_on, count, meta=meta)
    # Explicit divisions [0, 1, ..., count - 1, count - 1]: output partition i holds exactly the
    # rows whose partition is i (possibly none), so every partition runs and reports.
    divisions = (*range(count), count - 1)
    split = tagged.set_index(
        PARTITION_COLUMN, divisions=divisions, sorted=False, shuffle_method=shuffle_method
    )
    if split.npartitions != count:
        raise ConfigurationError(  # pragma: no cover - Dask's contract
            f"Dask split the rows into {split.npartitions} partitions, not {count}"
        )
    meta_out = pd.DataFrame({_RESULT_COLUMN: pd.Series([], dtype=object)})
    outcome = split.map_partitions(
        _run_dask_partition,
        spec,
        count,
        run_id,
        state,
        semaphore,
        meta=meta_out,
        enforce_metadata=False,
    ).compute()
    # One per partition: the last successful attempt of each (finish() reports any missing).
    return [r for r in outcome[_RESULT_COLUMN] if isinstance(r, SyncResult)]
