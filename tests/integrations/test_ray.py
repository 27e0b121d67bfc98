"""Ray Data, end to end: a sync written through the ``PersonalizeDatasink`` with Ray in local
mode (two CPUs), against the emulator served on loopback with faults; the worker running a
write killed mid-partition included. Runs in its own environment (``nox -s ray``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from contentstack_personalize import SyncAbortedError  # noqa: E402
from contentstack_personalize.integrations.ray import (  # noqa: E402
    PersonalizeDatasink,
    sync_ray_dataset,
)
from contentstack_personalize.sync import partition_of  # noqa: E402
from contentstack_personalize.testing import Faults  # noqa: E402
from tests.integrations._distributed import (  # noqa: E402
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


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    # On a loaded two-core machine the local node now and then misses its start-up deadline
    # (its metrics agent starts too late); that is Ray starting, not what is tested: try again.
    for attempt in range(3):
        try:
            ray.init(
                num_cpus=2,
                include_dashboard=False,
                log_to_driver=False,
                object_store_memory=200 * 1024 * 1024,
                configure_logging=False,
            )
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield
    finally:
        ray.shutdown()


def dataset(n: int, version: int = 0) -> ray.data.Dataset:
    return ray.data.from_items(users(n, version), override_num_blocks=3)


def write_workers() -> list[int]:
    """Ray worker processes busy with a write (their title names the task)."""
    return [pid for pid in pids_of("ray::") if "Write" in _title(pid)]


def _title(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def test_a_sync_through_the_datasink_adds_then_sends_nothing(tmp_path: Path) -> None:
    with served(tmp_path) as (emulator, sync):
        first = sync_ray_dataset(sync, dataset(N), partitions=PARTS, max_concurrency=8)
        check_exact(first, N, added=N)
        expected = [0] * PARTS
        for i in range(N):
            expected[partition_of(f"u{i}", PARTS)] += 1
        assert sorted(p["read"] for p in first.extras["partitions"]) == sorted(expected)
        assert emulator.users() == expected_edge(N)

        again = sync_ray_dataset(sync, dataset(N), partitions=PARTS)
        check_exact(again, N, added=0)
        assert again.unchanged == N and again.requests == 0

        # The sink used directly, as Ray Data's own write API does.
        sink = PersonalizeDatasink(sync, partitions=PARTS, max_concurrency=8)
        sink.prepare(dataset(N, 1)).write_datasink(sink, concurrency=sink.slots)
        assert sink.result is not None
        check_exact(sink.result, N, added=0)
        assert sink.result.changed == sum(
            1 for a, b in zip(users(N), users(N, 1), strict=True) if a != b
        )
        assert emulator.users() == expected_edge(N, version=1)
        history = sync.history()
        assert [r.status for r in history] == ["succeeded"] * 3  # one record per run
        assert history[0].counts["read"] == N


def test_a_worker_killed_mid_write_is_rerun_and_the_edge_ends_exact(tmp_path: Path) -> None:
    with served(tmp_path) as (emulator, sync):
        with Killer(emulator, N // 3, lambda: sigkill(write_workers())) as killer:
            result = sync_ray_dataset(sync, dataset(N), partitions=PARTS, max_concurrency=8)
        assert killer.killed_at is not None and killer.killed_at < N  # killed mid-run
        assert killer.victims >= 1
        check_exact(result, N)
        assert result.added >= N - killer.killed_at  # the lost attempt's users, never twice
        assert emulator.users() == expected_edge(N)
        assert [r.status for r in sync.history()] == ["succeeded"]
        again = sync_ray_dataset(sync, dataset(N), partitions=PARTS)
        check_exact(again, N, added=0)
        assert again.requests == 0


def test_more_partitions_than_users_and_rows_the_engine_refuses(tmp_path: Path) -> None:
    rows = [
        {"user_id": "a", "plan": "x", "score": 1},
        {"user_id": None, "plan": "y", "score": 2},
        {"user_id": "b", "plan": "z", "score": 3},
        {"user_id": "b", "plan": "w", "score": 4},
    ]
    with served(tmp_path, faults=None) as (emulator, sync):
        result = sync_ray_dataset(sync, ray.data.from_items(rows), partitions=16)
        assert len(result.extras["partitions"]) == 16  # empty partitions report too
        assert result.read == 4 and result.invalid == 3  # a null UID, a duplicated UID twice
        assert result.added == 1 and emulator.users() == {"a": {"plan": "x", "score": 1}}
        assert len(sync.history()) == 1


def test_an_outage_aborts_with_one_result_and_a_failed_job_is_recorded(tmp_path: Path) -> None:
    with served(tmp_path, faults=None, **FAIL_FAST) as (emulator, sync):
        emulator.faults = Faults(outage=True, apply_to={"edge"})
        with pytest.raises(SyncAbortedError) as caught:
            sync_ray_dataset(sync, dataset(200), partitions=2)
        assert caught.value.result.status == "aborted"
        assert caught.value.result.read == 200 and caught.value.result.added == 0
        emulator.faults = None
        broken = dataset(20).map(_explode)
        with pytest.raises(Exception, match="the source broke"):
            sync_ray_dataset(sync, broken, partitions=2)
        statuses = [r.status for r in sync.history()]
        assert statuses == ["failed", "aborted"]  # newest first, one record each
        check_exact(sync_ray_dataset(sync, dataset(20), partitions=2), 20)


def _explode(row: dict[str, object]) -> dict[str, object]:
    raise RuntimeError("the source broke")
