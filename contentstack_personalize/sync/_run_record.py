"""Stage: the run record. A run's line in the history (``running`` when it starts, its outcome
when it ends), its result, the log line that sums it up, and the change log's retention."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from ..state import ChangeLogStore, RunRecord, StateStore
from ._result import RunStatus, SyncResult
from ._tally import Tally
from ._typecheck import TypeIssue

__all__ = ["RunRecorder", "outcome_status"]

logger = logging.getLogger("contentstack_personalize.sync")


def outcome_status(tally: Tally, error: str | None) -> RunStatus:
    """The status of a run that ended without an exception: ``aborted`` when it stopped early
    (``error`` says why), else judged by its rejections."""
    if error is not None:
        return "aborted"
    if tally.rejected and not tally.added + tally.changed:
        return "failed"
    if tally.rejected:
        return "partially_failed"
    return "succeeded"


class RunRecorder:
    """Records one run of sync ``sync_name`` in ``store``'s history (unless ``record`` is
    false: a partition of a distributed run, whose driver records the one run)."""

    def __init__(
        self,
        store: StateStore,
        sync_name: str,
        run_id: str,
        *,
        record: bool = True,
        started: float | None = None,
    ) -> None:
        self.store = store
        self.sync_name = sync_name
        self.run_id = run_id
        self.record = record
        self.started = time.time() if started is None else started

    def start(self) -> None:
        """The ``running`` line; a store failure here raises (nothing was done yet)."""
        if self.record:
            self.store.save_run(
                RunRecord(
                    run_id=self.run_id,
                    sync_name=self.sync_name,
                    started_at=self.started,
                    finished_at=None,
                    status="running",
                    counts={},
                )
            )

    def result(
        self,
        tally: Tally,
        status: RunStatus,
        *,
        error: str | None,
        warnings: Sequence[str],
        type_issues: list[TypeIssue],
        exception: BaseException | None = None,
        debugger: Any = None,
        finished: float | None = None,
    ) -> SyncResult:
        """The run's result from its tally."""
        return SyncResult(
            run_id=self.run_id,
            sync_name=self.sync_name,
            status=status,
            started_at=self.started,
            finished_at=time.time() if finished is None else finished,
            requests=tally.requests,
            invalid_rows=tuple(tally.invalid_rows),
            rejected_rows=tuple(tally.rejected_rows),
            issues_truncated=tally.truncated,
            error=error,
            warnings=tuple(warnings),
            read=tally.read,
            invalid=tally.invalid,
            unchanged=tally.unchanged,
            added=tally.added,
            changed=tally.changed,
            rejected=tally.rejected,
            not_sent=tally.not_sent,
            retried=tally.retried,
            type_issues=tuple(type_issues),
            exception=exception,
            debugger=debugger,
        )

    def finish(self, result: SyncResult, tally: Tally) -> None:
        """The run's final line and its log line. Never raises: the run's outcome matters more
        than its history line."""
        if self.record:
            try:
                self.store.save_run(
                    RunRecord(
                        run_id=self.run_id,
                        sync_name=self.sync_name,
                        started_at=self.started,
                        finished_at=result.finished_at,
                        status=result.status,
                        counts={**tally.counts(), "requests": tally.requests},
                        error=result.error,
                    )
                )
            except Exception:
                logger.exception("could not record run %s in the history", self.run_id)
        log = logger.warning if result.status != "succeeded" else logger.info
        log("sync %r run %s %s: %s", self.sync_name, self.run_id, result.status, tally.counts())

    def prune_changes(self, days: float, *, now: float | None = None) -> None:
        """Drop change-log entries older than ``days`` (when the store keeps a change log).
        Never raises: a failed clean-up is retried by the next run."""
        store = self.store
        if not isinstance(store, ChangeLogStore):
            return
        cutoff = (time.time() if now is None else now) - days * 86400
        try:
            store.prune_changes(cutoff)
        except Exception:
            logger.exception("could not prune the change log of sync %r", self.sync_name)
