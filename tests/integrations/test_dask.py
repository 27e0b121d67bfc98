"""Dask, end to end: a sync over a Dask DataFrame on a ``distributed.LocalCluster`` of two
worker processes, against the emulator served on loopback with faults; a worker killed
mid-partition included. Runs in its own environment (``nox -s dask``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

dask = pytest.importorskip("dask")
pytest.importorskip("distributed")

import dask.dataframe as dd  # noqa: E402
import pandas as pd  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

from contentstack_personalize import ConfigurationError  # noqa: E402
from contentstack_personalize.integrations.dask import sync_dask_dataframe  # noqa: E402
from contentstack_personalize.sync import partition_of  # noqa: E402
from tests.integrations._distributed import (  # noqa: E402
    USERS,
    Killer,
    check_exact,
    expected_edge,
    served,
    sigkill,
    users,
)

N = USERS
PARTS = 4


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    # A lost worker's semaphore lease is given back within seconds, not the default 30 s.
    with (
        dask.config.set(
            {
                "distributed.scheduler.locks.lease-timeout": "3s",
                "distributed.scheduler.locks.lease-validation-interval": "0.5s",
            }
        ),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as running,
    ):
        yield running


def frame(n: int, version: int = 0, npartitions: int = 3) -> dd.DataFrame:
    return dd.from_pandas(pd.DataFrame(users(n, version)), npartitions=npartitions)


def test_a_sync_over_a_dask_dataframe_adds_then_sends_nothing(
    client: Client, tmp_path: Path
) -> None:
    with served(tmp_path) as (emulator, sync):
        first = sync_dask_dataframe(sync, frame(N), partitions=PARTS, max_concurrency=8)
        check_exact(first, N, added=N)
        assert len(first.extras["partitions"]) == PARTS
        # Each partition ran its own users only: the counts split as partition_of splits.
        sizes = sorted(p["read"] for p in first.extras["partitions"])
        expected = [0] * PARTS
        for i in range(N):
            expected[partition_of(f"u{i}", PARTS)] += 1
        assert sizes == sorted(expected)
        assert emulator.users() == expected_edge(N)

        again = sync_dask_dataframe(sync, frame(N), partitions=PARTS)
        check_exact(again, N, added=0)
        assert again.unchanged == N and again.requests == 0

        changed = sync_dask_dataframe(sync, frame(N, version=1), partitions=PARTS)
        check_exact(changed, N, added=0)
        assert changed.changed == sum(
            1 for a, b in zip(users(N), users(N, 1), strict=True) if a != b
        )
        assert emulator.users() == expected_edge(N, version=1)
        history = sync.history()
        assert [r.status for r in history] == ["succeeded"] * 3  # one record per run
        assert history[0].counts["read"] == N


def test_a_worker_killed_mid_partition_is_rerun_and_the_edge_ends_exact(
    client: Client, tmp_path: Path
) -> None:
    workers = client.run(os.getpid)
    with served(tmp_path) as (emulator, sync):
        with Killer(emulator, N // 3, lambda: sigkill([next(iter(workers.values()))])) as killer:
            result = sync_dask_dataframe(sync, frame(N), partitions=PARTS, max_concurrency=8)
        assert killer.killed_at is not None and killer.killed_at < N  # killed mid-run
        check_exact(result, N)
        # What the lost attempt had committed counts as unchanged, never twice.
        assert result.added >= N - killer.killed_at
        assert emulator.users() == expected_edge(N)
        assert [r.status for r in sync.history()] == ["succeeded"]
        again = sync_dask_dataframe(sync, frame(N), partitions=PARTS)
        check_exact(again, N, added=0)
        assert again.requests == 0
    client.wait_for_workers(2, timeout=60)  # the nanny restarted the lost worker


def test_a_partition_count_of_its_own_and_empty_partitions(client: Client, tmp_path: Path) -> None:
    # More partitions than users: some partitions hold nobody and still report.
    with served(tmp_path, faults=None) as (emulator, sync):
        result = sync_dask_dataframe(sync, frame(5, npartitions=2), partitions=16)
        check_exact(result, 5, added=5)
        assert len(result.extras["partitions"]) == 16
        assert emulator.users() == expected_edge(5)


def test_rows_the_engine_refuses_and_a_missing_match_column(client: Client, tmp_path: Path) -> None:
    rows = pd.DataFrame(
        {"user_id": ["a", None, "b", "b"], "plan": ["x", "y", "z", "w"], "score": [1, 2, 3, 4]}
    )
    with served(tmp_path, faults=None) as (emulator, sync):
        result = sync_dask_dataframe(
            sync, dd.from_pandas(rows, npartitions=2), partitions=3, max_concurrency=2
        )
        assert result.read == 4 and result.invalid == 3  # a null UID, a duplicated UID twice
        assert result.added == 1 and emulator.users() == {"a": {"plan": "x", "score": 1}}
        with pytest.raises(ConfigurationError, match="no column 'user_id'"):
            sync_dask_dataframe(sync, dd.from_pandas(rows.drop(columns="user_id"), npartitions=1))
        assert len(sync.history()) == 1  # the refused run left no record


def test_the_run_is_recorded_failed_when_dask_fails(client: Client, tmp_path: Path) -> None:
    with served(tmp_path, faults=None) as (_, sync):
        broken = frame(10).map_partitions(_explode, meta=frame(10)._meta)
        with pytest.raises(RuntimeError, match="the source broke"):
            sync_dask_dataframe(sync, broken, partitions=2)
        (record,) = sync.history()
        assert record.status == "failed" and "the source broke" in (record.error or "")
        # The lock was released: the next run goes ahead.
        check_exact(sync_dask_dataframe(sync, frame(10), partitions=2), 10, added=10)


def _explode(part: pd.DataFrame) -> pd.DataFrame:
    raise RuntimeError("the source broke")
