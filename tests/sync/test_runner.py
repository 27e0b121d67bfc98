"""The blocking runner of ``Sync.run``/``Sync.plan`` (``_run_blocking`` and the caller thread in
``sync/_engine.py``): a running event loop in the calling thread, as in Jupyter, Ctrl-C, objects
bound to the calling thread, and async clients driven from blocking code."""

from __future__ import annotations

import _thread
import contextlib
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from contentstack_personalize import SyncAbortedError
from contentstack_personalize.sync import Sync, from_sql
from contentstack_personalize.testing import PersonalizeEmulator
from tests._invariants import assert_accounted

from .conftest import make_async_client, patches, people


def interrupt_after(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, _thread.interrupt_main)
    timer.start()
    return timer


@contextlib.contextmanager
def plain_ctrl_c() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt, as in a notebook kernel (the test's own event loop
    runner would otherwise turn it into a task cancellation). Used inside the test body,
    after the runner installed its handler."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class TestNotebook:
    """A running event loop in the calling thread, as in Jupyter."""

    async def test_ctrl_c_stops_the_run_before_returning(
        self, emulator: PersonalizeEmulator, client: Any
    ) -> None:
        emulator.set_faults(latency=0.02)
        sync = Sync(client, match_on="user_id", mapping={"plan": "plan"}, concurrency=4)
        with plain_ctrl_c(), pytest.raises(SyncAbortedError) as info:
            interrupt_after(0.5)
            sync.run(people(2000))
        result = info.value.result
        assert result is not None and result.status == "aborted"
        assert_accounted(result)  # read may stop short of 2000 on a slow machine
        assert result.not_sent > 0
        assert not [t for t in threading.enumerate() if t.name == "personalize-sync-runner"]
        sent = len(patches(emulator))
        time.sleep(0.2)  # noqa: ASYNC251 - blocking on purpose, like the notebook cell
        assert len(patches(emulator)) == sent  # nothing goes on in the background
        assert sync.history()[0].status == "aborted"

    async def test_ctrl_c_while_the_source_is_read(self, client: Any) -> None:
        total = 100_000
        consumed = [0]

        def slow_rows() -> Iterator[dict[str, Any]]:
            for row in people(total):
                time.sleep(0.0001)
                consumed[0] += 1
                yield row

        sync = Sync(client, match_on="user_id", mapping={"plan": "plan"}, chunk_size=100)
        with plain_ctrl_c(), pytest.raises(SyncAbortedError) as info:
            interrupt_after(0.3)
            sync.run(slow_rows())
        # The run stopped reading when interrupted, instead of draining the source first.
        assert consumed[0] < total
        result = info.value.result
        assert result is not None and result.status == "aborted"
        assert_accounted(result)
        assert result.read <= consumed[0]
        assert result.added + result.changed < total

    async def test_sqlite_source_made_in_this_thread(
        self, emulator: PersonalizeEmulator, client: Any
    ) -> None:
        db = sqlite3.connect(":memory:")
        db.execute("CREATE TABLE u (user_id TEXT, plan TEXT)")
        db.executemany("INSERT INTO u VALUES (?, ?)", [("a", "x"), ("b", "y")])
        sync = Sync(client, match_on="user_id", mapping={"plan": "plan"})
        assert sync.run(from_sql(db, "SELECT * FROM u")).added == 2
        assert sync.plan(db.execute("SELECT * FROM u")).unchanged == 2
        assert emulator.users() == {"a": {"plan": "x"}, "b": {"plan": "y"}}


def test_blocking_runs_with_an_async_client(emulator: PersonalizeEmulator) -> None:
    client = make_async_client(emulator)
    sync = Sync(client, match_on="user_id", mapping={"plan": "plan"})
    assert sync.run(people(3)).added == 3
    assert sync.run(people(4)).added == 1  # a second blocking run, on another event loop
    assert sync.plan(people(4)).unchanged == 4
    assert set(emulator.users()) == {"1", "2", "3", "4"}
