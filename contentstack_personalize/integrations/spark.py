"""Run a sync over a PySpark DataFrame, on the Spark cluster that already holds the data (needs
the ``[spark]`` extra: ``pyspark``, ``pyarrow`` and ``pandas``; and a Java runtime, as Spark
always does). Works on classic Spark and on Spark Connect (Databricks shared clusters): it uses
``mapInArrow``, never the RDD API.

Example::

    from contentstack_personalize.integrations.spark import sync_spark_dataframe

    users = spark.read.table("crm.users")
    sync = Sync(PersonalizeClient(), match_on="user_id", mapping={...},
                state="postgresql://sync@db/syncs")        # state every executor can reach
    result = sync_spark_dataframe(sync, users, partitions=64)

The driver opens one distributed run (``sync.begin_distributed``: the sync's lock, the
pre-flight, one run record). Each row gets its :func:`~contentstack_personalize.sync.partition_of`
bucket; ``repartition(n, bucket)`` puts every bucket in exactly one Spark partition (one row
per bucket is added, so that a bucket with no users reports too); each task runs the buckets it
holds, in order, streaming their rows as Arrow batches, and yields one small result per bucket,
which the driver collects and combines into one
:class:`~contentstack_personalize.sync.SyncResult`. A task Spark re-executes (a lost executor,
a retry, speculative execution) is safe: each bucket waits for the lock of the attempt it
replaces and sees what was committed as unchanged; Spark keeps one attempt's output.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
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

__all__ = ["sync_spark_dataframe"]

#: Marks the one placeholder row added per bucket (dropped before the rows are read).
_MARKER_COLUMN = "__personalize_marker__"
_RESULT_SCHEMA = "partition INT, result BINARY"


def _tag_batches(batches: Iterator[Any], match_on: str, count: int) -> Iterator[Any]:
    """``mapInArrow``: each row's bucket, read from the value the engine will read."""
    import pyarrow as pa

    for batch in batches:
        values = batch.column(batch.schema.get_field_index(match_on)).to_pylist()
        buckets = pa.array([bucket_of(v, count) for v in values], type=pa.int32())
        markers = pa.array([False] * batch.num_rows, type=pa.bool_())
        yield pa.RecordBatch.from_arrays(
            [*batch.columns, buckets, markers],
            names=[*batch.schema.names, PARTITION_COLUMN, _MARKER_COLUMN],
        )


class _Buckets:
    """Consecutive runs of one bucket in a stream of batches sorted by bucket: yields
    ``(bucket, batches of its rows)``; each group must be read before the next one starts."""

    def __init__(self, batches: Iterator[Any]) -> None:
        self._batches = batches
        self._pending: Any = None

    def _next(self) -> Any:
        if self._pending is not None:
            batch, self._pending = self._pending, None
            return batch
        for batch in self._batches:
            if batch.num_rows:
                return batch
        return None

    def _rows_of(self, bucket: int) -> Iterator[Any]:
        import pyarrow.compute as pc

        while True:
            batch = self._next()
            if batch is None:
                return
            column = batch.column(batch.schema.get_field_index(PARTITION_COLUMN))
            same = pc.sum(pc.equal(column, bucket)).as_py() or 0  # sorted: a prefix
            if same == batch.num_rows:
                yield batch
                continue
            if same:
                yield batch.slice(0, same)
            self._pending = batch.slice(same)
            return

    def __iter__(self) -> Iterator[tuple[int, Iterator[Any]]]:
        while True:
            batch = self._next()
            if batch is None:
                return
            self._pending = batch
            bucket = batch.column(batch.schema.get_field_index(PARTITION_COLUMN))[0].as_py()
            group = self._rows_of(bucket)
            yield bucket, group
            for _ in group:  # whatever the caller left unread
                pass


def _run_tasks(
    batches: Iterator[Any],
    spec: SyncSpec,
    count: int,
    run_id: str,
    state: Any,
    columns: list[str],
) -> Iterator[Any]:
    """``mapInArrow``: run every bucket this task holds; one result row per bucket."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for bucket, group in _Buckets(batches):
        real = (
            b.filter(pc.invert(b.column(b.schema.get_field_index(_MARKER_COLUMN)))).select(columns)
            for b in group
        )
        rows = (b for b in real if b.num_rows)
        result = run_partition(spec, bucket, count, run_id, _reader(rows), state=state)
        yield pa.RecordBatch.from_pydict(
            {"partition": [bucket], "result": [pickle.dumps(result)]},
            schema=pa.schema([("partition", pa.int32()), ("result", pa.binary())]),
        )


def _reader(batches: Iterator[Any]) -> Any:
    """The rows of one bucket as a stream the engine reads (an empty list when none)."""
    import pyarrow as pa

    first = next(batches, None)
    if first is None:
        return []

    def chain() -> Iterator[Any]:
        yield first
        yield from batches

    return pa.RecordBatchReader.from_batches(first.schema, chain())


def sync_spark_dataframe(
    sync: Sync,
    df: Any,
    *,
    partitions: int | None = None,
    max_concurrency: int | None = None,
    state: Any = None,
    lock_wait: float = DEFAULT_LOCK_WAIT,
) -> SyncResult:
    """Run ``sync`` over the PySpark DataFrame ``df`` on the cluster's executors and return one
    result for the whole run, on the driver.

    - ``partitions``: how many partitions the users are split into (default: the session's
      default parallelism, the executors' cores); one Spark task runs each.
    - ``max_concurrency``: requests in flight across the whole cluster (default
      ``sync.concurrency``), split evenly among the tasks that may run at once (the
      cluster's cores, at most ``partitions``). With dynamic allocation, size it for the
      most executors the cluster may grow to.
    - ``state``: what the executors open instead of ``sync``'s state (e.g. a
      ``postgresql://`` URL with a password from a secret scope); by default the shipped URL,
      without password, which the executors complete from their environment (``PGPASSWORD``).
    - ``lock_wait``: seconds a re-executed bucket waits for the lock of the attempt it replaces.

    Raises ``SyncAbortedError`` for an aborted run unless the sync has ``raise_on_abort=False``;
    the run is recorded as failed when the Spark job fails.
    """
    session = df.sparkSession
    parallelism = _parallelism(session)
    count = check_partitions(partitions if partitions is not None else parallelism or 1)
    budget = max_concurrency if max_concurrency is not None else sync.concurrency
    match_on = sync.match_on
    columns = list(df.columns)
    if match_on not in columns:
        raise ConfigurationError(
            f"the DataFrame has no column {match_on!r} (match_on); it has {columns}"
        )
    slots = max(1, min(count, budget, parallelism or count))
    share = concurrency_share(budget, slots)

    with sync.begin_distributed(partitions=count) as run:
        spec = worker_spec(run.spec, concurrency=share, lock_wait=lock_wait)
        collected = _collect(df, session, match_on, count, spec, run.run_id, state, columns)
        results: dict[int, SyncResult] = {}
        for row in collected:
            results[int(row["partition"])] = pickle.loads(bytes(row["result"]))
        return finish(sync, run, [results[i] for i in sorted(results)])


def _parallelism(session: Any) -> int | None:
    try:
        return int(session.sparkContext.defaultParallelism)
    except Exception:  # Spark Connect has no SparkContext
        value = session.conf.get("spark.default.parallelism", None)
        return int(value) if value else None


def _collect(
    df: Any,
    session: Any,
    match_on: str,
    count: int,
    spec: SyncSpec,
    run_id: str,
    state: Any,
    columns: list[str],
) -> list[Any]:
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    tagged_schema = T.StructType(
        [
            *df.schema.fields,
            T.StructField(PARTITION_COLUMN, T.IntegerType(), False),
            T.StructField(_MARKER_COLUMN, T.BooleanType(), False),
        ]
    )
    tagged = df.mapInArrow(lambda batches: _tag_batches(batches, match_on, count), tagged_schema)
    # One placeholder row per bucket: every bucket lands in some task and reports a result.
    markers = session.range(count).select(
        F.col("id").cast("int").alias(PARTITION_COLUMN), F.lit(True).alias(_MARKER_COLUMN)
    )
    for field in df.schema.fields:
        markers = markers.withColumn(field.name, F.lit(None).cast(field.dataType))
    markers = markers.select(*[F.col(f"`{c}`") for c in tagged.columns])
    split = (
        tagged.unionByName(markers)
        .repartition(count, F.col(PARTITION_COLUMN))
        .sortWithinPartitions(PARTITION_COLUMN)
    )
    outcome = split.mapInArrow(
        lambda batches: _run_tasks(batches, spec, count, run_id, state, columns),
        _RESULT_SCHEMA,
    )
    return list(outcome.collect())
