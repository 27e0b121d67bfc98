"""PySpark, end to end: a sync over a Spark DataFrame in local mode (``local[2,2]``: two cores,
a task may fail once), against the emulator served on loopback with faults; the Python workers
killed mid-partition included. Runs in its own environment (``nox -s spark``, needs Java)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyspark")

from pyspark.sql import SparkSession

from contentstack_personalize import ConfigurationError, SyncAbortedError
from contentstack_personalize.integrations.spark import sync_spark_dataframe
from contentstack_personalize.sync import partition_of
from tests.integrations._distributed import (
    FAIL_FAST,
    USERS,
    Killer,
    check_exact,
    expected_edge,
    pids_of,
    served,
    sigkill,
    users,
)

N = USERS
PARTS = 4


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2,2]")  # two cores; a task may fail once
        .appName("contentstack-personalize-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()


def frame(spark: SparkSession, rows: list[dict[str, Any]], partitions: int = 3) -> Any:
    return spark.createDataFrame(rows).repartition(partitions)


def python_workers() -> list[int]:
    """Spark's Python workers: the processes the ``pyspark.daemon`` forks for tasks."""
    daemons = set(pids_of("pyspark.daemon"))
    workers = []
    for pid in daemons:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if parent in daemons:
            workers.append(pid)
    return workers


def test_a_sync_over_a_spark_dataframe_adds_then_sends_nothing(
    spark: SparkSession, tmp_path: Path
) -> None:
    with served(tmp_path) as (emulator, sync):
        first = sync_spark_dataframe(sync, frame(spark, users(N)), partitions=PARTS)
        check_exact(first, N, added=N)
        expected = [0] * PARTS
        for i in range(N):
            expected[partition_of(f"u{i}", PARTS)] += 1
        assert sorted(p["read"] for p in first.extras["partitions"]) == sorted(expected)
        assert emulator.users() == expected_edge(N)

        again = sync_spark_dataframe(sync, frame(spark, users(N)), partitions=PARTS)
        check_exact(again, N, added=0)
        assert again.unchanged == N and again.requests == 0

        changed = sync_spark_dataframe(sync, frame(spark, users(N, 1)), partitions=PARTS)
        check_exact(changed, N, added=0)
        assert changed.changed == sum(
            1 for a, b in zip(users(N), users(N, 1), strict=True) if a != b
        )
        assert emulator.users() == expected_edge(N, version=1)
        history = sync.history()
        assert [r.status for r in history] == ["succeeded"] * 3  # one record per run
        assert history[0].counts["read"] == N


def test_python_workers_killed_mid_partition_are_rerun_and_the_edge_ends_exact(
    spark: SparkSession, tmp_path: Path
) -> None:
    with served(tmp_path) as (emulator, sync):
        with Killer(emulator, N // 3, lambda: sigkill(python_workers())) as killer:
            result = sync_spark_dataframe(
                sync, frame(spark, users(N)), partitions=PARTS, max_concurrency=8
            )
        assert killer.killed_at is not None and killer.killed_at < N  # killed mid-run
        assert killer.victims >= 1
        check_exact(result, N)
        assert result.added >= N - killer.killed_at  # the lost attempts' users, never twice
        assert emulator.users() == expected_edge(N)
        assert [r.status for r in sync.history()] == ["succeeded"]
        again = sync_spark_dataframe(sync, frame(spark, users(N)), partitions=PARTS)
        check_exact(again, N, added=0)
        assert again.requests == 0


def test_more_partitions_than_users_and_rows_the_engine_refuses(
    spark: SparkSession, tmp_path: Path
) -> None:
    rows = [
        {"user_id": "a", "plan": "x", "score": 1},
        {"user_id": None, "plan": "y", "score": 2},
        {"user_id": "b", "plan": "z", "score": 3},
        {"user_id": "b", "plan": "w", "score": 4},
    ]
    with served(tmp_path, faults=None) as (emulator, sync):
        result = sync_spark_dataframe(sync, frame(spark, rows, 2), partitions=16)
        assert len(result.extras["partitions"]) == 16  # empty partitions report too
        assert result.read == 4 and result.invalid == 3  # a null UID, a duplicated UID twice
        assert result.added == 1 and emulator.users() == {"a": {"plan": "x", "score": 1}}
        with pytest.raises(ConfigurationError, match="no column 'user_id'"):
            sync_spark_dataframe(sync, frame(spark, rows).drop("user_id"))
        assert len(sync.history()) == 1  # the refused run left no record


def test_an_outage_aborts_with_one_result_and_a_failed_job_is_recorded(
    spark: SparkSession, tmp_path: Path
) -> None:
    from contentstack_personalize.testing import Faults

    with served(tmp_path, faults=None, **FAIL_FAST) as (emulator, sync):
        emulator.faults = Faults(outage=True, apply_to={"edge"})
        with pytest.raises(SyncAbortedError) as caught:
            sync_spark_dataframe(sync, frame(spark, users(200)), partitions=2)
        assert caught.value.result.status == "aborted"
        assert caught.value.result.read == 200 and caught.value.result.added == 0
        emulator.faults = None
        bad = frame(spark, users(20)).selectExpr("user_id", "plan", "assert_true(score < 0) AS x")
        with pytest.raises(Exception, match=r"assert_true|score < 0"):
            sync_spark_dataframe(sync, bad, partitions=2)
        statuses = [r.status for r in sync.history()]
        assert statuses == ["failed", "aborted"]  # newest first, one record each
        check_exact(sync_spark_dataframe(sync, frame(spark, users(20)), partitions=2), 20)
