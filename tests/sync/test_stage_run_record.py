"""The run-record stage alone, against a MemoryState: the running line, the final line with the
counts, a history failure that never fails the run, partitions that record nothing, the status
of a finished run, and the change log's retention."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest

from contentstack_personalize.errors import StateStoreError
from contentstack_personalize.state import ChangeEntry, MemoryState, RunRecord
from contentstack_personalize.sync._run_record import RunRecorder, outcome_status
from contentstack_personalize.sync._tally import Tally


def finished_tally() -> Tally:
    tally = Tally(max_details=10)
    tally.read = 3
    tally.invalid_row(1, None, "bad")
    tally.accepted_row(2, first_time=True, retried=False)
    tally.accepted_row(3, first_time=False, retried=False)
    tally.requests = 2
    return tally


def test_a_run_is_recorded_running_then_finished() -> None:
    store = MemoryState()
    recorder = RunRecorder(store, "s", "run-1", started=100.0)
    recorder.start()
    (running,) = store.runs("s")
    assert (running.status, running.finished_at, running.started_at) == ("running", None, 100.0)
    tally = finished_tally()
    result = recorder.result(
        tally, "succeeded", error=None, warnings=["w"], type_issues=[], finished=105.0
    )
    assert (result.read, result.invalid, result.added, result.changed) == (3, 1, 1, 1)
    assert (result.requests, result.warnings, result.duration) == (2, ("w",), 5.0)
    recorder.finish(result, tally)
    (final,) = store.runs("s")
    assert (final.run_id, final.status, final.finished_at) == ("run-1", "succeeded", 105.0)
    assert final.counts == {**tally.counts(), "requests": 2}


def test_a_partition_records_nothing() -> None:
    store = MemoryState()
    recorder = RunRecorder(store, "s", "run-1-p0", record=False)
    recorder.start()
    tally = finished_tally()
    recorder.finish(
        recorder.result(tally, "succeeded", error=None, warnings=[], type_issues=[]), tally
    )
    assert store.runs("s") == []


def test_a_history_failure_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    class Failing(MemoryState):
        def save_run(self, record: RunRecord) -> None:
            if record.status != "running":
                raise StateStoreError("disk full")
            super().save_run(record)

    recorder = RunRecorder(Failing(), "s", "run-1")
    recorder.start()
    tally = finished_tally()
    result = recorder.result(tally, "aborted", error="stopped", warnings=[], type_issues=[])
    with caplog.at_level(logging.ERROR, "contentstack_personalize.sync"):
        recorder.finish(result, tally)
    assert "could not record run run-1 in the history" in caplog.text


@pytest.mark.parametrize(
    ("added", "rejected", "error", "status"),
    [
        (1, 0, None, "succeeded"),
        (1, 1, None, "partially_failed"),
        (0, 1, None, "failed"),
        (0, 0, None, "succeeded"),
        (1, 0, "SIGTERM", "aborted"),
    ],
)
def test_outcome_status(added: int, rejected: int, error: str | None, status: str) -> None:
    tally = Tally(max_details=1)
    tally.added, tally.rejected = added, rejected
    assert outcome_status(tally, error) == status


class LogStore(MemoryState):
    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.pruned: list[float] = []
        self.fail = fail

    def log_changes(self, sync_name: str, run_id: str, entries: Sequence[ChangeEntry]) -> None:
        pass

    def changes(self, sync_name: str, **kwargs: Any) -> list[ChangeEntry]:
        return []

    def prune_changes(self, older_than: float) -> int:
        if self.fail:
            raise StateStoreError("locked")
        self.pruned.append(older_than)
        return 0


def test_the_change_log_is_pruned_to_its_retention() -> None:
    store = LogStore()
    RunRecorder(store, "s", "r").prune_changes(30.0, now=10_000_000.0)
    assert store.pruned == [10_000_000.0 - 30 * 86400]


def test_a_failed_prune_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, "contentstack_personalize.sync"):
        RunRecorder(LogStore(fail=True), "s", "r").prune_changes(1.0)
    assert "could not prune the change log of sync 's'" in caplog.text
