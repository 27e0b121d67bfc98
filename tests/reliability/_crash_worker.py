"""A sync run in its own process, for the crash tests to kill.

``python -m tests.reliability._crash_worker sync EDGE_URL PROJECT STATE N VERSION``
syncs the deterministic rows ``rows(N, VERSION)`` into the emulator at ``EDGE_URL`` with the
state file ``STATE``, then prints the result as JSON on stdout. Exit codes: 0 finished,
3 stopped early (``SyncAbortedError`` after Ctrl-C, SIGTERM or an abort; the partial result is
printed too), 4 another run of the sync held its lock. The environment variable
``CRASH_ATTEMPTS`` sets the retry policy's attempts (default 8; 1 leaves every fault final).

``python -m tests.reliability._crash_worker torn STATE BATCHES KILL_AT`` commits ``BATCHES``
transactions of 50 users each to an ``SQLiteState`` and kills itself with SIGKILL in the
middle of transaction number ``KILL_AT`` (while SQLite is writing its rows).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import Any, overload

from contentstack_personalize import (
    PersonalizeClient,
    RetryPolicy,
    SyncAbortedError,
    SyncInProgressError,
)
from contentstack_personalize.sync import SQLiteState, Sync

MAPPING = {"plan": "plan", "ltv": "ltv", "tags": "tags"}
SYNC_NAME = "crash-test"


def rows(n: int, version: int) -> list[dict[str, Any]]:
    """The source of version ``version``: each version changes about a third of the users."""
    return [
        {
            "user_id": f"user-{i}",
            "plan": ["free", "silver", "gold"][(i + version) % 3],
            "ltv": i + (1000 * version if i % 3 == 0 else 0),
            "tags": [f"v{version if i % 2 else 0}"],
        }
        for i in range(n)
    ]


def expected(n: int, version: int) -> dict[str, dict[str, Any]]:
    return {
        r["user_id"]: {"plan": r["plan"], "ltv": r["ltv"], "tags": r["tags"]}
        for r in rows(n, version)
    }


def sync_main(edge_url: str, project: str, state: str, n: int, version: int) -> int:
    client = PersonalizeClient(
        project,
        edge_url=edge_url,
        management_url=edge_url.rsplit("/", 1)[0] + "/management",
        retry=RetryPolicy(
            max_attempts=int(os.environ.get("CRASH_ATTEMPTS", "8")),
            initial_delay=0.001,
            max_delay=0.01,
        ),
        read_env=False,
        timeout=float(os.environ.get("CRASH_TIMEOUT", "10")),
    )
    with (
        client,
        Sync(
            client,
            match_on="user_id",
            mapping=MAPPING,
            state=state,
            name=SYNC_NAME,
            concurrency=8,
            commit_every=7,
            commit_interval=0.01,
        ) as sync,
    ):
        try:
            result = sync.run(rows(n, version))
        except SyncInProgressError as exc:
            print(json.dumps({"locked": True, "holder": exc.holder}, default=str), flush=True)
            return 4
        except SyncAbortedError as exc:
            partial = exc.result.to_dict() if exc.result is not None else None
            print(json.dumps({"aborted": True, "result": partial}, default=str), flush=True)
            return 3
        print(json.dumps({"aborted": False, "result": result.to_dict()}, default=str), flush=True)
        return 0


class _KillingBatch(Sequence[tuple[str, dict[str, str]]]):
    """The rows of one commit; reading row ``kill_at`` kills the process (a torn write)."""

    def __init__(self, items: list[tuple[str, dict[str, str]]], kill_at: int | None) -> None:
        self._items = items
        self._kill_at = kill_at

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> tuple[str, dict[str, str]]: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[tuple[str, dict[str, str]]]: ...
    def __getitem__(self, index: Any) -> Any:
        return self._items[index]

    def __iter__(self) -> Iterator[tuple[str, dict[str, str]]]:
        for i, item in enumerate(self._items):
            if i == self._kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            yield item


def torn_main(state: str, batches: int, kill_at: int) -> int:
    store = SQLiteState(state)
    for b in range(batches):
        items = [(f"b{b}-u{i}", {"batch": str(b), "i": str(i)}) for i in range(50)]
        store.commit(SYNC_NAME, _KillingBatch(items, 25 if b == kill_at else None))
    store.close()
    return 0


def main(argv: list[str]) -> int:
    if argv[0] == "sync":
        return sync_main(argv[1], argv[2], argv[3], int(argv[4]), int(argv[5]))
    if argv[0] == "torn":
        return torn_main(argv[1], int(argv[2]), int(argv[3]))
    raise SystemExit(f"unknown mode {argv[0]!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
