"""Run a sync over a Ray Dataset, written through a Ray Data ``Datasink`` on the Ray cluster that
already holds the data (needs the ``[ray]`` extra: ``ray[data]``).

Example::

    import ray
    from contentstack_personalize.integrations.ray import sync_ray_dataset

    users = ray.data.read_parquet("s3://bucket/users/")
    sync = Sync(PersonalizeClient(), match_on="user_id", mapping={...},
                state="postgresql://sync@db/syncs")        # state every worker can reach
    result = sync_ray_dataset(sync, users, partitions=32)

or, with the sink itself (what ``sync_ray_dataset`` does)::

    sink = PersonalizeDatasink(sync, partitions=32)
    sink.prepare(users).write_datasink(sink, concurrency=sink.slots)
    result = sink.result

The driver opens one distributed run (``sync.begin_distributed``: the sync's lock, the
pre-flight, one run record); the rows are grouped by their
:func:`~contentstack_personalize.sync.partition_of` bucket (``groupby().map_groups()``), each
bucket packed whole into one record so that Ray can never split it between write tasks; each
write task runs the buckets it is given and returns their results; ``on_write_complete``
combines them into one :class:`~contentstack_personalize.sync.SyncResult` (buckets without any
user report an empty run). ``write_datasink(concurrency=...)`` caps the write tasks running at
once, so the requests in flight stay within the budget. A task Ray re-executes (a worker lost
mid-partition) is safe: each bucket waits for the lock of the attempt it replaces and sees what
was committed as unchanged; Ray keeps one attempt's return value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa
from ray.data import Dataset
from ray.data.datasource import Datasink

from ..errors import ConfigurationError
from ..sync import DistributedRun, Sync, SyncResult, SyncSpec
from ._partitioned import (
    DEFAULT_LOCK_WAIT,
    PARTITION_COLUMN,
    bucket_of,
    check_partitions,
    concurrency_share,
    raise_if_aborted,
    run_partition,
    worker_spec,
)

__all__ = ["PersonalizeDatasink", "sync_ray_dataset"]

_PACKED = "__personalize_rows__"


def _tag(batch: pa.Table, match_on: str, count: int) -> pa.Table:
    values = batch.column(match_on).to_pylist()
    buckets = pa.array([bucket_of(v, count) for v in values], type=pa.int64())
    return batch.append_column(PARTITION_COLUMN, buckets)


def _pack(group: pa.Table) -> pa.Table:
    """One bucket's rows as one record (Arrow IPC), which no later step can split."""
    bucket = group.column(PARTITION_COLUMN)[0].as_py()
    rows = group.drop_columns([PARTITION_COLUMN])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, rows.schema) as writer:
        writer.write_table(rows)
    return pa.table(
        {
            PARTITION_COLUMN: pa.array([bucket], type=pa.int64()),
            _PACKED: pa.array([sink.getvalue().to_pybytes()], type=pa.large_binary()),
        }
    )


def _unpack(data: bytes) -> Any:
    return pa.ipc.open_stream(pa.py_buffer(data))


class PersonalizeDatasink(Datasink):  # type: ignore[misc]
    """A Ray Data ``Datasink`` that runs one distributed run of ``sync``: give it a dataset
    prepared by :meth:`prepare`, write with ``concurrency=sink.slots``, read ``sink.result``.

    Arguments as for :func:`sync_ray_dataset`. The run starts in ``on_write_start`` (on the
    driver) and ends in ``on_write_complete`` (one result and one run record) or
    ``on_write_failed`` (the run recorded as failed); an aborted run is a result here, not an
    exception.
    """

    def __init__(
        self,
        sync: Sync,
        *,
        partitions: int,
        max_concurrency: int | None = None,
        state: Any = None,
        lock_wait: float = DEFAULT_LOCK_WAIT,
        slots: int | None = None,
    ) -> None:
        self.count = check_partitions(partitions)
        budget = max_concurrency if max_concurrency is not None else sync.concurrency
        self.slots = max(1, min(self.count, budget, slots or self.count))
        self.share = concurrency_share(budget, self.slots)
        self.state = state
        self.lock_wait = lock_wait
        self.result: SyncResult | None = None
        # Driver-side only: never shipped to the workers (see __getstate__).
        self._sync: Sync | None = sync
        self._run: DistributedRun | None = None
        self.spec: SyncSpec | None = None
        self.run_id: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_sync"] = state["_run"] = None  # a live client and state store stay home
        return state

    def prepare(self, ds: Dataset) -> Dataset:
        """``ds`` grouped into this run's partitions, each packed into one record."""
        sync = self._driver_sync()
        match_on, count = sync.match_on, self.count
        return (
            ds.map_batches(
                _tag, batch_format="pyarrow", fn_args=(match_on, count), zero_copy_batch=True
            )
            .groupby(PARTITION_COLUMN)
            .map_groups(_pack, batch_format="pyarrow")
        )

    def _driver_sync(self) -> Sync:
        if self._sync is None:
            raise ConfigurationError("this PersonalizeDatasink was copied off its driver")
        return self._sync

    def on_write_start(self, schema: Any = None) -> None:
        if self._run is None:
            self.begin()

    def begin(self) -> None:
        """Open the run (``on_write_start`` does it when not done yet)."""
        run = self._driver_sync().begin_distributed(partitions=self.count)
        self._run = run
        self.run_id = run.run_id
        try:
            self.spec = worker_spec(run.spec, concurrency=self.share, lock_wait=self.lock_wait)
        except BaseException as exc:
            self._run = None
            run.fail(exc)
            raise

    def write(self, blocks: Iterable[Any], ctx: Any) -> list[SyncResult]:
        """On a worker: run every bucket in ``blocks`` (each one record, a whole bucket)."""
        if self.spec is None or self.run_id is None:
            raise ConfigurationError("the run was not started: on_write_start never ran")
        results = []
        for block in blocks:
            table = block if isinstance(block, pa.Table) else pa.Table.from_pandas(block)
            buckets = table.column(PARTITION_COLUMN).to_pylist()
            packed = table.column(_PACKED)
            for i, bucket in enumerate(buckets):
                rows = _unpack(packed[i].as_py())
                results.append(
                    run_partition(
                        self.spec, int(bucket), self.count, self.run_id, rows, state=self.state
                    )
                )
        return results

    def on_write_complete(self, write_result: Any) -> None:
        run = self._run
        if run is None or self.spec is None:
            return
        returns: Iterator[list[SyncResult]] = iter(write_result.write_returns)
        by_index: dict[int, SyncResult] = {}
        for results in returns:
            for result in results:
                by_index[int(result.run_id.rsplit("-p", 1)[1])] = result
        # Buckets no user fell into never reached a write task: they report an empty run.
        sync = self._driver_sync()
        for index in range(self.count):
            if index not in by_index:
                by_index[index] = sync.run([], partition=run.partition(index))
        self._run = None
        self.result = run.finish(by_index[i] for i in sorted(by_index))

    def on_write_failed(self, error: Exception) -> None:
        run, self._run = self._run, None
        if run is not None:
            run.fail(error)


def _cluster_cpus() -> int | None:
    import ray

    try:
        return int(ray.cluster_resources().get("CPU", 0)) or None
    except Exception:  # not connected yet: the write will connect
        return None


def sync_ray_dataset(
    sync: Sync,
    ds: Dataset,
    *,
    partitions: int | None = None,
    max_concurrency: int | None = None,
    state: Any = None,
    lock_wait: float = DEFAULT_LOCK_WAIT,
) -> SyncResult:
    """Run ``sync`` over the Ray Dataset ``ds`` through a :class:`PersonalizeDatasink` and
    return one result for the whole run.

    - ``partitions``: how many partitions the users are split into (default: the cluster's
      CPUs); each is packed whole and run by one write task.
    - ``max_concurrency``: requests in flight across the cluster (default
      ``sync.concurrency``), split among the write tasks allowed at once
      (``write_datasink(concurrency=)``: the cluster's CPUs, at most ``partitions``).
    - ``state``: what the workers open instead of ``sync``'s state (e.g. a ``postgresql://``
      URL with a password the workers hold); by default the shipped URL, without password,
      which the workers complete from their environment (``PGPASSWORD``).
    - ``lock_wait``: seconds a re-executed partition waits for the lock of the attempt it
      replaces.

    Raises ``SyncAbortedError`` for an aborted run unless the sync has ``raise_on_abort=False``;
    the run is recorded as failed when the Ray job fails.
    """
    cpus = _cluster_cpus()
    count = check_partitions(partitions if partitions is not None else cpus or 1)
    names = ds.columns(fetch_if_missing=False)
    if names is not None and sync.match_on not in names:
        raise ConfigurationError(
            f"the dataset has no column {sync.match_on!r} (match_on); it has {names}"
        )
    sink = PersonalizeDatasink(
        sync,
        partitions=count,
        max_concurrency=max_concurrency,
        state=state,
        lock_wait=lock_wait,
        slots=cpus,
    )
    sink.begin()
    try:
        sink.prepare(ds).write_datasink(sink, concurrency=sink.slots)
    except BaseException as exc:
        sink.on_write_failed(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
        raise
    if sink.result is None:  # pragma: no cover - Ray called neither callback
        sink.on_write_failed(RuntimeError("the write ended without completing"))
        raise ConfigurationError("the Ray write ended without a result")
    return raise_if_aborted(sync, sink.result)
