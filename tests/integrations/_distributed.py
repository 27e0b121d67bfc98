"""What the Dask, Spark and Ray runners' tests share: the emulator served in this process with
faults, a sync whose state is an SQLite file every local worker reaches, the users, and a
watcher that kills worker processes once the edge holds some of the users (mid-partition)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from contentstack_personalize import AuthToken, PersonalizeClient, RetryPolicy
from contentstack_personalize.sync import Sync, SyncResult
from contentstack_personalize.testing import Faults, PersonalizeEmulator
from tests._invariants import assert_accounted

#: Users per run in the runners' tests; PERSONALIZE_TEST_USERS=100000 runs them at scale.
USERS = int(os.environ.get("PERSONALIZE_TEST_USERS", "3000"))


def users(n: int, version: int = 0) -> list[dict[str, Any]]:
    """``n`` users; ``version`` changes the plan of every other one (half of them change)."""
    return [
        {"user_id": f"u{i}", "plan": f"p{(i + version * (i % 2)) % 5}", "score": i % 1000}
        for i in range(n)
    ]


def expected_edge(n: int, version: int = 0) -> dict[str, dict[str, Any]]:
    return {r["user_id"]: {"plan": r["plan"], "score": r["score"]} for r in users(n, version)}


#: Faults on every Edge request: latency (so partitions overlap and a kill lands mid-partition),
#: 5xx answers, and dropped connections whose change was sometimes applied.
FAULTS = Faults(latency=0.004, server_error=0.03, drop=0.01, apply_to={"edge"}, seed=11)


#: Retries enough to ride out FAULTS, quickly.
RETRY = RetryPolicy(max_attempts=8, initial_delay=0.05, max_delay=0.5)


@contextmanager
def served(
    tmp_path: Path,
    faults: Faults | None = FAULTS,
    retry: RetryPolicy = RETRY,
    **options: Any,
) -> Iterator[tuple[Any, Sync]]:
    """The emulator served on loopback and a sync of ``users`` into it, state in ``tmp_path``."""
    emulator = PersonalizeEmulator(seed=3)
    with (
        emulator.serve() as server,
        PersonalizeClient(
            emulator.project_uid,
            edge_url=server.edge_url,
            management_url=server.management_url,
            auth=AuthToken(emulator.authtoken),
            retry=retry,
            read_env=False,
        ) as client,
        Sync(
            client,
            match_on="user_id",
            mapping={"plan": "plan", "score": "score"},
            state=str(tmp_path / "state.db"),
            create_missing_attributes=True,
            **{"concurrency": 8, **options},
        ) as sync,
    ):
        emulator.faults = faults
        yield emulator, sync


#: For runs meant to fail: few retries, an abort decided after a few requests.
FAIL_FAST: dict[str, Any] = {
    "retry": RetryPolicy(max_attempts=2, initial_delay=0.01, max_delay=0.02),
    "min_sample": 10,
}


def check_exact(result: SyncResult, n: int, *, added: int | None = None) -> None:
    """One whole result: every user read once, none lost, none counted twice."""
    assert result.status == "succeeded", (result.error, result.rejected_rows[:3])
    assert_accounted(result, read=n)
    assert result.invalid == 0
    assert result.rejected == 0 and result.not_sent == 0
    assert result.added + result.changed + result.unchanged == n
    if added is not None:
        assert result.added == added


def pids_of(marker: str) -> list[int]:
    """Processes of this user whose command line contains ``marker`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(entry))
    return found


class Killer(threading.Thread):
    """Once the edge holds ``after`` users (the run is mid-way), ``kill()`` is called once;
    ``killed_at`` is how many users the edge held then."""

    def __init__(self, emulator: PersonalizeEmulator, after: int, kill: Callable[[], int]) -> None:
        super().__init__(daemon=True)
        self.emulator = emulator
        self.after = after
        self.kill = kill
        self.killed_at: int | None = None
        self.victims = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.05):
            # How many users the edge holds, without copying them all (users() deep-copies
            # under the emulator's lock, which would slow a big run down).
            held = len(self.emulator._project(None).users)
            if held >= self.after:
                self.victims = self.kill()
                self.killed_at = held
                return

    def __enter__(self) -> Killer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._halt.set()
        self.join(timeout=10)


def sigkill(pids: list[int]) -> int:
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)
