"""Controlling one run from outside its coroutine: stop requests (SIGTERM, ``Sync.stop()``, a
lost lock), the grace period for requests in flight, and the lock that keeps one run per sync.

A stop is cooperative: the run stops producing requests at once, lets the requests in flight
finish for up to ``grace`` seconds, then cancels them; what the edge acknowledged is committed,
and keys sent without an answer stay *unknown* in the state, so the next run sends them again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import StateStoreError, SyncAbortedError, SyncInProgressError
from ..state import LockInfo, StateStore
from ._partition import Partition

__all__ = ["LockKeeper", "RunControl", "handle_sigterm", "ahandle_sigterm"]

logger = logging.getLogger("contentstack_personalize.sync")


class RunControl:
    """The stop switch of one run, safe to flip from any thread or a signal handler."""

    def __init__(self, grace: float, partition: Partition | None = None) -> None:
        self.grace = grace
        self.partition = partition
        self.reason: str | None = None
        self.signal: str | None = None
        self.cause: BaseException | None = None
        self.grace_expired = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._cancel_handle: asyncio.TimerHandle | None = None

    def __bool__(self) -> bool:
        return self.reason is not None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop whose tasks a stop cancels after the grace period."""
        self._loop = loop
        if self.reason is not None:
            loop.call_soon_threadsafe(self._arm)

    def stop(
        self,
        reason: str,
        *,
        signal_name: str | None = None,
        cause: BaseException | None = None,
    ) -> None:
        """Ask the run to stop (first reason wins). Thread-safe; callable from a signal handler."""
        if self.reason is not None:
            return
        self.cause = cause
        self.reason = reason
        self.signal = signal_name
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._arm)

    def track(self, task: asyncio.Task[Any]) -> None:
        """A task of the run (producer, workers): cancelled if still running ``grace`` seconds
        after a stop (a worker cancelled in the middle of a request accounts for it and ends)."""
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    def _arm(self) -> None:
        if self._cancel_handle is None and self._loop is not None:
            self._cancel_handle = self._loop.call_later(self.grace, self._cancel_in_flight)

    def _cancel_in_flight(self) -> None:
        self.grace_expired = True
        for task in list(self._in_flight):
            task.cancel()

    def disarm(self) -> None:
        if self._cancel_handle is not None:
            self._cancel_handle.cancel()
            self._cancel_handle = None


class _SigtermHub:
    """One SIGTERM handler for every run going in this process (several syncs may run at once,
    in threads of a blocking program or as tasks of one event loop): a SIGTERM stops them all.

    The handler is installed when the first run registers, only from the main thread and only
    while SIGTERM still has its default action, and the default is put back when the last run
    ends. An application that installed its own handler keeps it (it can call ``Sync.stop()``).
    """

    def __init__(self) -> None:
        # Re-entrant: the handler runs on the main thread between two bytecodes, possibly while
        # that same thread is inside register() or unregister().
        self._lock = threading.RLock()
        self._controls: set[RunControl] = set()
        self._uninstall: Callable[[], None] | None = None

    def _on_signal(self, signum: int, frame: object) -> None:
        self._stop_all()

    def _stop_all(self) -> None:
        with self._lock:
            controls = list(self._controls)
            if not controls:
                # Left installed by a run that ended off the main thread: act as the default
                # (terminate), never swallow the signal.
                uninstall, self._uninstall = self._uninstall, None
        if not controls:
            if uninstall is not None:
                uninstall()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        for control in controls:
            control.stop("stopped by SIGTERM", signal_name="SIGTERM")

    def register(self, control: RunControl, loop: asyncio.AbstractEventLoop | None) -> None:
        with self._lock:
            on_main = threading.current_thread() is threading.main_thread()
            if not self._controls and self._uninstall is not None and on_main:
                # The last run ended off the main thread: put the default back now.
                uninstall, self._uninstall = self._uninstall, None
                uninstall()
            self._controls.add(control)
            if self._uninstall is not None or not _sigterm_is_default():
                return
            if loop is not None:
                try:
                    loop.add_signal_handler(signal.SIGTERM, self._stop_all)
                except (NotImplementedError, RuntimeError, ValueError):
                    return  # no signals on this loop (Windows)

                def uninstall_loop() -> None:
                    # Only while the loop's SIGTERM callback is still ours: a host that added
                    # its own meanwhile keeps it.
                    handles = getattr(loop, "_signal_handlers", None)
                    handle = handles.get(signal.SIGTERM) if isinstance(handles, dict) else None
                    callback = getattr(handle, "_callback", self._stop_all)
                    if callback == self._stop_all:
                        with contextlib.suppress(Exception):
                            loop.remove_signal_handler(signal.SIGTERM)

                self._uninstall = uninstall_loop
            else:
                ours = self._on_signal
                signal.signal(signal.SIGTERM, ours)

                def uninstall_signal() -> None:
                    if signal.getsignal(signal.SIGTERM) is ours:  # a host's handler stays
                        signal.signal(signal.SIGTERM, signal.SIG_DFL)

                self._uninstall = uninstall_signal

    def unregister(self, control: RunControl) -> None:
        with self._lock:
            self._controls.discard(control)
            if self._controls or self._uninstall is None:
                return
            if threading.current_thread() is threading.main_thread():
                uninstall, self._uninstall = self._uninstall, None
                uninstall()
            # Off the main thread a handler cannot be changed: it stays until the next run
            # registers on the main thread, and meanwhile acts as the default (_stop_all).


_HUB = _SigtermHub()


def _sigterm_is_default() -> bool:
    return (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    )


@contextlib.contextmanager
def handle_sigterm(control: RunControl) -> Iterator[None]:
    """For a blocking run: turn SIGTERM into a graceful stop while the run goes (see
    :class:`_SigtermHub` for whose signal it is)."""
    _HUB.register(control, None)
    try:
        yield
    finally:
        _HUB.unregister(control)


@contextlib.contextmanager
def ahandle_sigterm(control: RunControl, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """For ``arun``: the same rule as :func:`handle_sigterm`, through the loop's own signal
    handling (which works on uvloop too)."""
    _HUB.register(control, loop)
    try:
        yield
    finally:
        _HUB.unregister(control)


# ---------------------------------------------------------------------------------------------
# The lock: one run per sync name at a time
# ---------------------------------------------------------------------------------------------


def _namespace() -> str:
    """What tells two processes with the same host name apart (containers): the boot id and
    the PID namespace on Linux, empty elsewhere."""
    parts = []
    with contextlib.suppress(OSError), open("/proc/sys/kernel/random/boot_id") as f:
        parts.append(f.read().strip())
    with contextlib.suppress(OSError):
        parts.append(os.readlink("/proc/self/ns/pid"))
    return "/".join(parts)


_HOST = socket.gethostname()
#: Lock attempts run here (a store call may block): a thread pool of our own, so that an
#: attempt outlives a cancelled wait and its lock can still be released.
_ATTEMPTS = concurrent.futures.ThreadPoolExecutor(4, "personalize-lock")
_NAMESPACE = _namespace()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _holder_is_dead(info: LockInfo) -> bool:
    """Whether the holder was a process on this machine that no longer exists."""
    data = info.describe()
    pid = data.get("pid")
    return (
        data.get("host") == _HOST
        and data.get("ns") == _NAMESPACE
        and isinstance(pid, int)
        and pid != os.getpid()
        and not _pid_alive(pid)
    )


class LockKeeper:
    """Takes a sync's lock, keeps it alive from a background thread, and releases it.

    The lock is a lease: ``ttl`` seconds, renewed every ``ttl / 4``. A holder that dies stops
    renewing and its lease expires; a holder that was a process on this machine is recognised
    as dead at once (its PID is gone). If the lease is lost anyway (the process was suspended
    past ``ttl`` and another run took over), ``on_lost`` is called so the run stops.
    """

    def __init__(
        self,
        store: StateStore,
        name: str,
        run_id: str,
        *,
        ttl: float,
        on_lost: Callable[[str], None],
    ) -> None:
        self.store = store
        self.name = name
        self.ttl = ttl
        self.on_lost = on_lost
        self.holder = json.dumps(
            {"host": _HOST, "pid": os.getpid(), "run_id": run_id, "ns": _NAMESPACE},
            separators=(",", ":"),
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _attempt(self) -> LockInfo | None:
        """One try: ``None`` when the lock is ours, else its live holder."""
        current = self.store.acquire_lock(self.name, self.holder, self.ttl)
        if current is not None and _holder_is_dead(current):
            logger.warning(
                "sync %r: the lock was held by process %s, which is gone; taking it over",
                self.name,
                current.describe().get("pid"),
            )
            self.store.release_lock(self.name, current.holder)
            current = self.store.acquire_lock(self.name, self.holder, self.ttl)
        return current

    def _refuse(self, current: LockInfo) -> SyncInProgressError:
        info = current.describe()
        return SyncInProgressError(
            f"sync {self.name!r} is already running (run {info.get('run_id')} of process "
            f"{info.get('pid')} on {info.get('host')}, since "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(current.acquired_at))}); "
            "two runs at once would overwrite each other's state. Wait for it, or pass "
            "Sync(lock_timeout=seconds) to wait for the lock; a holder that died frees it "
            f"within {self.ttl:g} s",
            holder=info,
        )

    def acquire(self, timeout: float) -> None:
        """Take the lock, waiting up to ``timeout`` seconds; else raise
        :class:`SyncInProgressError` naming the holder."""
        deadline = time.monotonic() + timeout
        while True:
            current = self._attempt()
            if current is None:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._refuse(current)
            time.sleep(min(0.5, left))
        self._start_renewing()

    async def aacquire(self, timeout: float, control: RunControl | None = None) -> None:
        """:meth:`acquire` without holding the event loop. A stop of ``control`` (SIGTERM,
        ``Sync.stop``) ends the wait with :class:`SyncAbortedError`; cancelling it never leaves
        the lock taken (an attempt that succeeds after the cancellation is released)."""
        deadline = time.monotonic() + timeout
        while True:
            attempt = _ATTEMPTS.submit(self._attempt)
            try:
                current = await asyncio.shield(asyncio.wrap_future(attempt))
            except asyncio.CancelledError:
                # On the executor's future, not the loop's: it runs even if the loop is gone.
                attempt.add_done_callback(self._release_if_taken)
                raise
            if current is None:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._refuse(current)
            for _ in range(int(min(0.5, left) / 0.05) or 1):
                if control:
                    raise SyncAbortedError(
                        f"sync {self.name!r} stopped while waiting for its lock: {control.reason}"
                    )
                await asyncio.sleep(0.05)
        self._start_renewing()

    def _release_if_taken(self, attempt: concurrent.futures.Future[LockInfo | None]) -> None:
        if not attempt.cancelled() and attempt.exception() is None and attempt.result() is None:
            with contextlib.suppress(Exception):
                self.store.release_lock(self.name, self.holder)

    def _start_renewing(self) -> None:
        self._thread = threading.Thread(
            target=self._renew, name=f"personalize-lock-{self.name}", daemon=True
        )
        self._thread.start()

    def _renew(self) -> None:
        every = self.ttl / 4
        renewed = time.monotonic()
        while not self._stop.wait(every):
            try:
                kept = self.store.renew_lock(self.name, self.holder, self.ttl)
            except StateStoreError as exc:
                logger.warning("sync %r: could not renew the run's lock: %s", self.name, exc)
                if time.monotonic() - renewed > 0.75 * self.ttl:
                    # The lease may expire before the next try: another run could take it.
                    self.on_lost(
                        f"could not renew the sync's lock for {0.75 * self.ttl:g} s ({exc}); "
                        "stopping before another run can take it over"
                    )
                    return
                continue  # the lease is still ours; try again
            except Exception:  # a closed store at the very end of a run
                if self._stop.is_set():
                    return
                logger.exception("sync %r: could not renew the run's lock", self.name)
                continue
            renewed = time.monotonic()
            if not kept:
                self.on_lost(
                    f"lost the sync's lock (this process was paused for more than {self.ttl:g} s "
                    "and another run took over); stopping so the two do not overwrite each other"
                )
                return

    def release(self) -> None:
        """Stop renewing and release the lock (errors are logged: the lease expires anyway)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.store.release_lock(self.name, self.holder)
        except Exception:
            logger.warning(
                "sync %r: could not release the run's lock; it expires within %g s",
                self.name,
                self.ttl,
                exc_info=True,
            )
