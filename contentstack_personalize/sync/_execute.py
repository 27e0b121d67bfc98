"""Stage: send. Takes the diff's batches, has the commit stage write each batch ahead, and sends
its users concurrently through an :class:`~contentstack_personalize.sync.EdgeSender` (which does
the retries); settles every outcome with the tally, the commit stage and the abort policy.

Each user the diff hands over gets exactly one outcome: acknowledged (``added``/``changed``),
``rejected``, or ``not_sent`` (the run stopped first, a systemic failure, or a request still in
flight when the stop's grace period ended). The tally tracks the users handed over without an
outcome yet, so that a run that ended abnormally (a crash, a cancellation) can still give them
one (:meth:`~contentstack_personalize.sync._tally.Tally.unsettled`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from .._http import RateLimiter
from ._abort import AbortRule, is_systemic
from ._commit import Committer
from ._control import RunControl
from ._diff import DiffBatch, Work
from ._sender import EdgeSender, SendOutcome
from ._tally import Tally

__all__ = ["Executor"]


class Executor:
    """Sends the users of one run (see the module's description)."""

    def __init__(
        self,
        sender: EdgeSender,
        *,
        tally: Tally,
        committer: Committer,
        judge: AbortRule,
        control: RunControl,
        concurrency: int,
        match_on: str,
        requests_per_second: float | None = None,
    ) -> None:
        self.sender = sender
        self.tally = tally
        self.committer = committer
        self.judge = judge
        self.control = control
        self.concurrency = concurrency
        self.match_on = match_on
        self.limiter = (
            RateLimiter(requests_per_second, 1.0, margin=0.0) if requests_per_second else None
        )
        self._queue: asyncio.Queue[Work | None] = asyncio.Queue(maxsize=concurrency * 2)

    # -- outcomes -------------------------------------------------------------------------------

    def _take(self, batch: DiffBatch) -> None:
        """Account for what the diff judged; forget the failures of unchanged users."""
        self.tally.diffed(batch, self.match_on)
        self.committer.clear(batch.clear)

    def settle(self, work: Work, outcome: SendOutcome) -> None:
        """Account for one answer and hand it to the commit stage and the abort policy."""
        tally, control = self.tally, self.control
        if outcome.ok:
            tally.accepted_row(work.row, first_time=work.first_time, retried=work.retried)
            self.committer.acknowledged(work)
            self.judge.success()
            return
        exc = outcome.error
        if is_systemic(exc):
            tally.not_sent_row(work.row, work.uid, f"not sent: {exc}")
            control.stop(f"{type(exc).__name__}: {exc}")
            return
        if work.retried:
            tally.retried += 1
        reason = str(exc) if exc is not None else "failed"
        tally.rejected_row(work.row, work.uid, exc, reason)
        self.committer.failed(work, exc, reason)
        verdict = self.judge.failure(exc, reason)
        if verdict is not None:
            control.stop(verdict)

    def not_sent(self, work: Work, reason: str | None = None) -> None:
        self.tally.not_sent_row(
            work.row, work.uid, reason or f"not sent: the run stopped ({self.control.reason})"
        )

    # -- the tasks ------------------------------------------------------------------------------

    async def _worker(self) -> None:
        queue, control, sender, limiter = self._queue, self.control, self.sender, self.limiter
        while True:
            work = await queue.get()
            if work is None:
                return
            if control:
                self.not_sent(work)
                continue
            if limiter is not None:
                await limiter.aacquire()
            self.tally.requests += 1
            try:
                outcome = await sender.send(work.uid, work.body)
            except asyncio.CancelledError:
                if not control.grace_expired:
                    raise
                # The stop's grace period ended with this request in flight: the edge may have
                # applied it; its keys stay unknown and the next run sends them.
                self.not_sent(
                    work,
                    f"cancelled in flight: the run stopped ({control.reason}); the next run "
                    "sends it again",
                )
                return
            self.settle(work, outcome)

    async def _produce(self, batches: Iterable[DiffBatch]) -> None:
        control, queue = self.control, self._queue
        produced = 0
        for batch in batches:
            self._take(batch)
            if batch.works and not control:
                # Write-ahead: these users' keys are pending before any of them is sent.
                await self.committer.write_ahead(batch.pending)
            for work in batch.works:
                if control:
                    self.not_sent(work)
                    continue
                await queue.put(work)
                produced += 1
                if not produced % 64:
                    # put() on a queue with room never yields: give the answers waiting in the
                    # loop a turn, or a whole diff batch delays them (latency-bound runs).
                    await asyncio.sleep(0)
        for _ in range(self.concurrency):
            await queue.put(None)

    async def run(self, batches: Iterable[DiffBatch]) -> None:
        """Send every user of ``batches``; returns when all are settled (or the run stopped).
        Re-raises the first exception of a task (a sender bug, an injected crash)."""
        control = self.control
        control.bind(asyncio.get_running_loop())
        tasks = [asyncio.create_task(self._produce(batches))]
        tasks += [asyncio.create_task(self._worker()) for _ in range(self.concurrency)]
        for task in tasks:
            control.track(task)
        try:
            # A worker that dies must not leave the producer waiting forever on a full queue:
            # stop at the first exception.
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            control.disarm()
            for task in tasks:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
