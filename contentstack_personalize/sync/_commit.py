"""Stage: commit. Every write a run makes to its state store, on one background thread.

The protocol (docs/guarantees.md): before a batch of users is sent, their state is written with
the keys being sent marked unknown (:meth:`Committer.write_ahead`, awaited before the batch is
sent); an acknowledgement commits the new values (:meth:`Committer.acknowledged`); a failure is
recorded against the user (:meth:`Committer.failed`), its keys staying unknown, so the next run
sends them whatever the source says by then.

Acknowledgements and failures are buffered and written in batches of ``commit_every`` users or
every ``commit_interval`` seconds, whichever comes first, in order, off the event loop: one
batch is written while at most two batches' worth more are buffered. With a change log
(``change_log`` not ``"off"`` and a store that keeps one), each batch's
:class:`~contentstack_personalize.state.ChangeEntry` list is logged right after the batch.

A store failure stops the run (what was not written stays pending, hence sent again next run).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Sequence

import attrs

from ..errors import APIStatusError, PersonalizeError, StateStoreError
from ..state import ChangeEntry, ChangeLogMode, ChangeLogStore, StateStore
from ._control import RunControl
from ._diff import Work

__all__ = ["CLEAR_BATCH", "Committer", "change_entry"]

#: Unchanged users whose failures are forgotten in one write.
CLEAR_BATCH = 500

_Ack = tuple[str, dict[str, str | None]]
_Settled = tuple[Work, PersonalizeError | None, str | None]


@attrs.define
class _Batch:
    acks: list[_Ack] = attrs.field(factory=list)
    failures: list[tuple[str, str]] = attrs.field(factory=list)
    clears: list[str] = attrs.field(factory=list)
    #: The settled users to log: ``(work, error, reason)``, ``reason`` None when acknowledged.
    changes: list[_Settled] = attrs.field(factory=list)

    def settled(self) -> int:
        return len(self.acks) + len(self.failures)


def change_entry(
    work: Work, *, ok: bool, error: PersonalizeError | None = None, reason: str | None = None
) -> ChangeEntry:
    """The change-log entry of one settled user: what was sent, and of the same keys what the
    state held before (the keys whose value was known: a new user has none)."""
    before = work.old_state
    old = {k: before[k] for k in work.changed if k in before}  # unknown (None) values: dropped
    if ok:
        return ChangeEntry(
            uid=work.uid,
            outcome="added" if work.first_time else "changed",
            new=work.changed,
            old=old,
        )
    return ChangeEntry(
        uid=work.uid,
        outcome="rejected",
        new=work.changed,
        old=old,
        status=error.status_code if isinstance(error, APIStatusError) else None,
        error=reason,
    )


class Committer:
    """The state writes of one run (see the module's description).

    ``clock`` (``time.monotonic``) measures ``commit_interval``. Use as a context manager, or
    call :meth:`close`, which writes what is still buffered."""

    def __init__(
        self,
        store: StateStore,
        name: str,
        control: RunControl,
        *,
        commit_every: int = 500,
        commit_interval: float = 1.0,
        run_id: str = "",
        change_log: ChangeLogMode = "off",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.name = name
        self.control = control
        self.commit_every = commit_every
        self.commit_interval = commit_interval
        self.run_id = run_id
        self.change_log: ChangeLogStore | None = None
        if change_log != "off" and isinstance(store, ChangeLogStore):
            self.change_log = store
        self._digests = change_log == "digests"
        self._clock = clock
        self._thread = concurrent.futures.ThreadPoolExecutor(1, "personalize-commit")
        self._buffer = _Batch()
        self._in_flight: list[concurrent.futures.Future[None]] = []
        self._last_flush = clock()
        #: Set once a write failed: nothing more is written by this run.
        self.store_failed = False

    # -- the protocol ---------------------------------------------------------------------------

    async def write_ahead(self, pending: Sequence[_Ack]) -> bool:
        """Mark these users' keys pending before any of them is sent, on the commit thread
        (after the batches written before). False (and the run stopped) if the store failed."""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(
                self._thread, self.store.mark_pending, self.name, list(pending)
            )
        except StateStoreError as exc:
            self._stop(exc)
            return False
        return True

    def acknowledged(self, work: Work) -> None:
        """The edge accepted ``work``: commit its new state (buffered)."""
        buffer = self._buffer
        buffer.acks.append((work.uid, work.new_state))
        if self.change_log is not None:
            buffer.changes.append((work, None, None))
        self._maybe_flush()

    def failed(self, work: Work, error: PersonalizeError | None, reason: str) -> None:
        """The API refused ``work`` (or it failed after retries): record the failure."""
        buffer = self._buffer
        buffer.failures.append((work.uid, reason[:1000]))
        if self.change_log is not None:
            buffer.changes.append((work, error, reason[:1000]))
        self._maybe_flush()

    def clear(self, uids: Sequence[str]) -> None:
        """Forget the failures of users that turned out unchanged (buffered)."""
        if uids:
            self._buffer.clears.extend(uids)
            if len(self._buffer.clears) >= CLEAR_BATCH:
                self._flush_in_background(force=True)

    # -- writing --------------------------------------------------------------------------------

    def _write(self, batch: _Batch) -> None:
        store, name = self.store, self.name
        if batch.acks:
            store.commit(name, batch.acks)
        if batch.failures:
            store.record_failures(name, batch.failures)
        if batch.clears:
            store.clear_failures(name, batch.clears)
        if batch.changes and self.change_log is not None:
            # Built here, on the commit thread, not on the event loop as each answer settles.
            entries = [
                change_entry(work, ok=reason is None, error=error, reason=reason)
                for work, error, reason in batch.changes
            ]
            if self._digests:
                entries = [entry.digested() for entry in entries]
            self.change_log.log_changes(name, self.run_id, entries)

    def _take(self) -> _Batch:
        batch, self._buffer = self._buffer, _Batch()
        return batch

    def _stop(self, exc: StateStoreError) -> None:
        # What was not written stays pending (unknown) in the store, so the next run sends it
        # again; this run stops sending, since it can no longer record.
        self.store_failed = True
        self.control.stop(f"the state store failed: {exc}", cause=exc)

    def _check(self, future: concurrent.futures.Future[None]) -> None:
        try:
            future.result()
        except StateStoreError as exc:
            self._stop(exc)

    def _maybe_flush(self) -> None:
        if (
            self._buffer.settled() >= self.commit_every
            or self._clock() - self._last_flush >= self.commit_interval
        ):
            self._flush_in_background()

    def _flush_in_background(self, *, force: bool = False) -> None:
        if self._in_flight:
            previous = self._in_flight[0]
            if not force and not previous.done() and self._buffer.settled() < 2 * self.commit_every:
                return  # keep buffering while the previous batch is written...
            self._check(self._in_flight.pop())  # ...but never more than two batches' worth
        if self.store_failed:
            return
        self._in_flight.append(self._thread.submit(self._write, self._take()))
        self._last_flush = self._clock()

    def wait(self) -> None:
        """Wait for the batches being written in the background."""
        while self._in_flight:
            self._check(self._in_flight.pop())

    def flush(self) -> None:
        """Write everything buffered, now, after any batch in flight. A store failure stops
        the run (``control``) rather than raising."""
        self.wait()
        if not self.store_failed:
            try:
                self._write(self._take())
            except StateStoreError as exc:
                self._stop(exc)

    def close(self) -> None:
        """Write what is buffered and stop the commit thread."""
        try:
            self.flush()
        finally:
            self._thread.shutdown(wait=True)

    def __enter__(self) -> Committer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
