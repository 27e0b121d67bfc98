"""Running a sync's coroutines from blocking code, in scripts and in notebooks."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["CALLER", "CallerThread", "run_blocking"]

_T = TypeVar("_T")


class CallerThread:
    """Runs functions on the thread that called a blocking ``run()`` while its coroutine runs on
    a helper thread (notebooks): sources such as sqlite3 connections only work on the thread
    that created them, so reading the source happens there."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]]
        self._calls = queue.SimpleQueue()

    def submit(self, fn: Callable[[], _T]) -> concurrent.futures.Future[_T]:
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()
        self._calls.put((fn, future))
        return future

    def pump(self, timeout: float) -> None:
        """Run the next submitted call, waiting up to ``timeout`` for one."""
        try:
            fn, future = self._calls.get(timeout=timeout)
        except queue.Empty:
            return
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except KeyboardInterrupt:
            future.set_exception(asyncio.CancelledError())
            raise
        except BaseException as exc:
            future.set_exception(exc)


CALLER: contextvars.ContextVar[CallerThread | None] = contextvars.ContextVar(
    "contentstack_personalize_caller_thread", default=None
)


def run_blocking(make_coro: Callable[[], Awaitable[_T]]) -> _T:
    """Run a coroutine to completion from blocking code.

    Without a running event loop this is ``asyncio.run``. Inside one (Jupyter), the coroutine
    runs on a fresh loop in a helper thread while this thread serves the calls that must happen
    here (reading the source); Ctrl-C (a notebook's interrupt) cancels the coroutine and waits
    for it to stop cleanly, so no run goes on in the background.
    """

    async def main() -> _T:
        return await make_coro()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        in_loop = False
    else:
        in_loop = True
    if not in_loop:  # outside the except block, so errors are not chained to this one
        return asyncio.run(main())

    caller = CallerThread()
    state: dict[str, Any] = {}
    ready = threading.Event()
    done = threading.Event()

    def target() -> None:
        CALLER.set(caller)
        loop = asyncio.new_event_loop()
        try:
            task = loop.create_task(main())
            state["loop"], state["task"] = loop, task
            ready.set()
            state["result"] = loop.run_until_complete(task)
        except BaseException as exc:
            state["error"] = exc
        finally:
            ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                done.set()

    thread = threading.Thread(target=target, name="personalize-sync-runner", daemon=True)
    thread.start()
    try:
        while not done.is_set():
            caller.pump(0.05)
    except KeyboardInterrupt:
        ready.wait()
        loop = state.get("loop")
        task = state.get("task")
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)
        while not done.is_set():  # let it stop cleanly; a second Ctrl-C does not abandon it
            try:
                caller.pump(0.05)
            except KeyboardInterrupt:
                continue
        raise
    if "error" in state:
        raise state["error"]
    return state["result"]  # type: ignore[no-any-return]
