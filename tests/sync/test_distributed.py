"""One sync split into partitions run by separate worker processes: users split by a stable hash,
one lock per partition, one run record and one result for the whole run, no secret shipped."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import pickle
from pathlib import Path
from typing import Any

import pytest

from contentstack_personalize import (
    AuthToken,
    ConfigurationError,
    PersonalizeClient,
    SyncInProgressError,
)
from contentstack_personalize.sync import (
    MemoryState,
    Partition,
    Sync,
    SyncResult,
    SyncSpec,
    partition_of,
)
from contentstack_personalize.testing import PersonalizeEmulator
from tests._invariants import assert_accounted

N = 600
PARTS = 3


def rows(version: int = 0) -> list[dict[str, Any]]:
    return [{"user_id": f"u{i}", "plan": f"p{(i + version) % 4}"} for i in range(N)]


def work(spec: SyncSpec, partition: Partition, version: int) -> SyncResult:
    """A worker: rebuild the sync, run the rows of its partition."""
    mine = [
        r for r in rows(version) if partition_of(r["user_id"], partition.count) == partition.index
    ]
    with Sync.from_spec(spec) as sync:
        return sync.run(mine, partition=partition)


def test_partition_of_is_stable_and_spreads_users() -> None:
    assert partition_of("user-42", 8) == partition_of("user-42", 8)
    assert partition_of("user-42", 1) == 0
    counts = [0] * 4
    for i in range(4000):
        counts[partition_of(f"u{i}", 4)] += 1
    assert all(800 < c < 1200 for c in counts)
    # The same everywhere: a fixed value, not Python's per-process hash().
    assert [partition_of(f"u{i}", 7) for i in range(5)] == [
        partition_of(f"u{i}", 7) for i in range(5)
    ]
    with pytest.raises(ConfigurationError):
        partition_of("u", 0)
    with pytest.raises(ConfigurationError):
        Partition(index=3, count=3)


def test_a_distributed_run_over_worker_processes(tmp_path: Path) -> None:
    emulator = PersonalizeEmulator(seed=5)
    state = tmp_path / "state.db"
    context = multiprocessing.get_context("spawn")
    with (
        emulator.serve() as server,
        PersonalizeClient(
            emulator.project_uid,
            edge_url=server.edge_url,
            management_url=server.management_url,
            auth=AuthToken(emulator.authtoken),
            read_env=False,
        ) as client,
    ):
        sync = Sync(
            client,
            match_on="user_id",
            mapping={"plan": "plan"},
            state=state,
            create_missing_attributes=True,
        )
        with concurrent.futures.ProcessPoolExecutor(PARTS, mp_context=context) as pool:
            for version, expect_added in ((0, N), (1, 0)):
                run = sync.begin_distributed(partitions=PARTS)
                blob = pickle.dumps(run.spec)
                assert emulator.authtoken.encode() not in blob  # no secret travels
                # While the driver holds the sync's lock, a plain run is refused.
                with pytest.raises(SyncInProgressError):
                    sync.run(rows(version))
                futures = [
                    pool.submit(work, run.spec, run.partition(i), version) for i in range(PARTS)
                ]
                result = run.finish(f.result() for f in futures)
                assert result.status == "succeeded", result.error
                assert result.read == N and result.invalid == 0
                assert result.added == expect_added
                assert result.added + result.changed + result.unchanged == N
                assert len(result.extras["partitions"]) == PARTS
        history = sync.history()
        assert [r.status for r in history] == ["succeeded", "succeeded"]  # one record per run
        assert history[0].counts["read"] == N
    assert emulator.users() == {r["user_id"]: {"plan": r["plan"]} for r in rows(1)}


def test_a_reexecuted_partition_neither_loses_nor_double_counts(
    emulator: PersonalizeEmulator,
) -> None:
    store = MemoryState()
    with PersonalizeClient(
        emulator.project_uid, transport=emulator.transport(), read_env=False
    ) as client:
        sync = Sync(client, match_on="user_id", mapping={"plan": "plan"}, state=store)
        run = sync.begin_distributed(partitions=2)
        part = run.partition(0)
        mine = [r for r in rows() if part.owns(r["user_id"])]
        first = sync.run(mine, partition=part)  # an attempt the engine then re-executes
        again = sync.run(mine, partition=part)
        other = sync.run(
            [r for r in rows() if run.partition(1).owns(r["user_id"])], partition=run.partition(1)
        )
        result = run.finish([again, other])  # the engine keeps the last attempt's result
    assert first.added == len(mine) and again.unchanged == len(mine)
    assert result.read == N and result.added + result.unchanged == N
    assert_accounted(result)
    assert len(emulator.users()) == N


def test_rows_of_another_partition_are_invalid_not_sent(emulator: PersonalizeEmulator) -> None:
    with PersonalizeClient(
        emulator.project_uid, transport=emulator.transport(), read_env=False
    ) as client:
        sync = Sync(client, match_on="user_id", mapping={"plan": "plan"})
        run = sync.begin_distributed(partitions=2)
        result = sync.run(rows()[:50], partition=run.partition(1))
        run.finish([result])
    strangers = [r for r in rows()[:50] if partition_of(r["user_id"], 2) == 0]
    assert result.invalid == len(strangers) > 0
    assert "belongs to partition 0 of 2" in result.invalid_rows[0].reason
    assert len(emulator.users()) == 50 - len(strangers)
    assert sync.history()[0].status == "aborted"  # one of two partitions never reported


def test_a_distributed_run_needs_shared_state(emulator: PersonalizeEmulator) -> None:
    with PersonalizeClient(
        emulator.project_uid, transport=emulator.transport(), read_env=False
    ) as client:
        sync = Sync(client, match_on="user_id", mapping={"plan": "plan"})
        run = sync.begin_distributed(partitions=2)
        with run, pytest.raises(ConfigurationError, match="every worker can reach"):
            run.spec  # noqa: B018
        assert sync.history()[0].status == "failed"  # left without finish()
        sync.run(rows()[:1])  # the lock was released


def test_the_spec_never_carries_a_state_password() -> None:
    from contentstack_personalize.sync._distributed import _state_text

    text = _state_text("postgresql://app:s3cret@db:5432/syncs?schema=cp", None)
    assert "s3cret" not in text and text == "postgresql://app@db:5432/syncs?schema=cp"


def test_a_partition_without_its_driver_is_refused(emulator: PersonalizeEmulator) -> None:
    with PersonalizeClient(
        emulator.project_uid, transport=emulator.transport(), read_env=False
    ) as client:
        sync = Sync(client, match_on="user_id", mapping={"plan": "plan"})
        run = sync.begin_distributed(partitions=2)
        part = run.partition(0)
        run.finish([])  # the run is over; a straggler must not write beside later runs
        with pytest.raises(ConfigurationError, match="does not hold the sync's lock"):
            sync.run(rows()[:10], partition=part)
        with pytest.raises(ConfigurationError, match="does not hold"):
            sync.run(rows()[:10], partition=Partition(index=0, count=2))
    assert not emulator.users()


def test_finish_keeps_one_result_per_partition(emulator: PersonalizeEmulator) -> None:
    with PersonalizeClient(
        emulator.project_uid, transport=emulator.transport(), read_env=False
    ) as client:
        sync = Sync(client, match_on="user_id", mapping={"plan": "plan"})
        run = sync.begin_distributed(partitions=1)
        first = sync.run(rows()[:100], partition=run.partition(0))
        again = sync.run(rows()[:100], partition=run.partition(0))
        result = run.finish([first, again])  # both attempts handed over, the last one last
    assert result.read == 100 and result.unchanged == 100
    assert_accounted(result)
