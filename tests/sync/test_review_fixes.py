"""Behaviour a notebook user, a flaky network and messy data rely on (each test pins a defect
found in review)."""

from __future__ import annotations

import _thread
import contextlib
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contentstack_personalize import SyncAbortedError
from contentstack_personalize._http import RateLimiter
from contentstack_personalize.sync import Field, Sync, from_sql
from contentstack_personalize.testing import PersonalizeEmulator

from .conftest import make_async_client, patches, people


def counts_add_up(result: Any) -> bool:
    return bool(
        result.read
        == result.invalid
        + result.unchanged
        + result.added
        + result.changed
        + result.rejected
        + result.not_sent
    )


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
        assert counts_add_up(result) and result.not_sent > 0
        assert not [t for t in threading.enumerate() if t.name == "personalize-sync-runner"]
        sent = len(patches(emulator))
        time.sleep(0.2)  # noqa: ASYNC251 - blocking on purpose, like the notebook cell
        assert len(patches(emulator)) == sent  # nothing goes on in the background
        assert sync.history()[0].status == "aborted"

    async def test_ctrl_c_while_the_source_is_read(self, client: Any) -> None:
        def slow_rows() -> Iterator[dict[str, Any]]:
            for row in people(100_000):
                time.sleep(0.0001)
                yield row

        sync = Sync(client, match_on="user_id", mapping={"plan": "plan"}, chunk_size=100)
        started = time.monotonic()
        with plain_ctrl_c(), pytest.raises(SyncAbortedError):
            interrupt_after(0.3)
            sync.run(slow_rows())
        assert time.monotonic() - started < 5  # reading 100,000 rows would take longer

    async def test_sqlite_source_made_in_this_thread(
        self, emulator: PersonalizeEmulator, client: Any
    ) -> None:
        db = sqlite3.connect(":memory:")
        db.execute("CREATE TABLE u (user_id TEXT, plan TEXT)")
        db.executemany("INSERT INTO u VALUES (?, ?)", [("a", "x"), ("b", "y")])
        sync = Sync(client, match_on="user_id", mapping={"plan": "plan"})
        assert sync.run(from_sql(db, "SELECT * FROM u")).added == 2
        assert sync.plan(db.execute("SELECT * FROM u")).unchanged == 2


def test_blocking_runs_with_an_async_client(emulator: PersonalizeEmulator) -> None:
    client = make_async_client(emulator)
    sync = Sync(client, match_on="user_id", mapping={"plan": "plan"})
    assert sync.run(people(3)).added == 3
    assert sync.run(people(4)).added == 1  # a second blocking run, on another event loop
    assert sync.plan(people(4)).unchanged == 4


def test_float_uids_beyond_exact_range_are_refused(
    emulator: PersonalizeEmulator, client: Any
) -> None:
    rows = [{"user_id": 1234567890123456789.0, "plan": "x"}, {"user_id": 2.0**53, "plan": "y"}]
    result = Sync(client, match_on="user_id", mapping={"plan": "plan"}).run(rows)
    assert result.invalid == 1 and "rounded" in result.invalid_rows[0].reason
    assert list(emulator.users()) == ["9007199254740992"]


def test_transform_never_sees_nulls(emulator: PersonalizeEmulator, client: Any) -> None:
    mapping = {
        "plan": "plan",
        "email": Field("domain", transform=lambda e: e.split("@")[1]),
        "tier": Field("tier", default="free"),
    }
    rows = [
        {"user_id": "a", "plan": "x", "email": "a@example.com", "tier": "pro"},
        {"user_id": "b", "plan": "y", "email": None, "tier": None},
        {"user_id": "c", "plan": "z"},
    ]
    result = Sync(client, match_on="user_id", mapping=mapping).run(rows)
    assert result.invalid == 0
    assert emulator.user_attributes("b") == {"plan": "y", "tier": "free"}
    assert emulator.user_attributes("c") == {"plan": "z", "tier": "free"}


def test_plan_leaves_failure_counts_alone(emulator: PersonalizeEmulator, client: Any) -> None:
    # more failed users than one diff batch, so that a plan would have flushed a "clear"
    sync = Sync(client, match_on="user_id", mapping={"plan": "plan"}, min_sample=10_000)
    emulator.set_faults(outage=True)
    assert sync.run(people(1500)).rejected == 1500
    emulator.clear_faults()
    failed = [
        u
        for u, s in sync.state.load(sync.name, [str(i) for i in range(1, 1501)]).items()
        if s.failed_attempts
    ]
    assert len(failed) == 1500
    # the users come back unchanged in the source: a plan must not clear their failures
    with sync.plan([{"user_id": u, "plan": None} for u in failed]):
        pass
    after = sync.state.load(sync.name, failed)
    assert all(s.failed_attempts == 1 for s in after.values())


@pytest.mark.parametrize(
    ("rate", "n", "seconds"), [(0.5, 3, 4.0), (1.5, 4, 2.0), (2.5, 6, 1.6), (10, 25, 2.0)]
)
def test_fractional_rate_limits(rate: float, n: int, seconds: float) -> None:
    now = [0.0]
    limiter = RateLimiter(rate, 1.0, margin=0.0, clock=lambda: now[0])
    starts = [limiter.reserve() for _ in range(n)]
    # the long-run rate is exactly `rate`: the n-th start is no earlier than (n - burst) / rate
    assert starts[-1] == pytest.approx(seconds)


def test_csv_rows_with_extra_fields_are_invalid(
    emulator: PersonalizeEmulator, client: Any, tmp_path: Path
) -> None:
    path = tmp_path / "u.csv"
    path.write_text("user_id,plan\na,gold\nb,silver,extra\n")
    result = Sync(client, match_on="user_id", mapping={"plan": "plan"}).run(path)
    assert result.invalid == 1 and "more fields than the header" in result.invalid_rows[0].reason
    assert list(emulator.users()) == ["a"]


def test_csv_duplicate_header_is_a_configuration_error(client: Any, tmp_path: Path) -> None:
    from contentstack_personalize import ConfigurationError

    path = tmp_path / "u.csv"
    path.write_text("user_id,plan,plan\na,gold,silver\n")
    with pytest.raises(ConfigurationError, match="more than once"):
        Sync(client, match_on="user_id", mapping={"plan": "plan"}).run(path)


def test_csv_decoding_error_names_the_line(client: Any, tmp_path: Path) -> None:
    from contentstack_personalize import ConfigurationError

    path = tmp_path / "u.csv"
    path.write_bytes(b"user_id,plan\n" + b"a,gold\n" * 3000 + b"b,\xff\xfe\n")
    with pytest.raises(ConfigurationError, match="encoding"):
        Sync(client, match_on="user_id", mapping={"plan": "plan"}).run(path)


def test_pandas_integer_column_names(emulator: PersonalizeEmulator, client: Any) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame([["a", "gold"], ["b", "silver"]])  # columns 0 and 1
    Sync(client, match_on="0", mapping={"1": "plan"}).run(frame)
    assert emulator.user_attributes("b") == {"plan": "silver"}
