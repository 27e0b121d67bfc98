"""The sync engine's own cost per user, without the network: a sender that acknowledges every
request at once, so what is measured is reading, mapping, the diff, the write-ahead of pending
keys, the acknowledgements' commits and the accounting.

    python benchmarks/engine_overhead.py [USERS] [--state memory|sqlite|both]

Prints CPU seconds (this process, all threads) and users per CPU second for a first run (every
user added) and a rerun where half the users changed. Compare two checkouts by running this
script from each, alternating, on the same machine: the figures are noisy on a shared machine,
ratios of alternating runs are not.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from typing import Any

from contentstack_personalize import PersonalizeClient
from contentstack_personalize.sync import Sync
from contentstack_personalize.sync._sender import SendOutcome


class InstantSender:
    """Acknowledges every request at once (one loop turn, as a real answer would take)."""

    async def send(self, uid: str, body: bytes) -> SendOutcome:
        await asyncio.sleep(0)
        return SendOutcome(ok=True, attempts=1)

    async def aclose(self) -> None:
        return None


def measure(users: int, state_kind: str) -> tuple[float, float]:
    client = PersonalizeClient(
        "0123456789abcdef01234567", edge_url="http://127.0.0.1:9", read_env=False
    )
    folder = tempfile.mkdtemp()
    state: Any = os.path.join(folder, "state.db") if state_kind == "sqlite" else None
    sync = Sync(
        client,
        match_on="user_id",
        mapping={"plan": "plan", "ltv": "ltv"},
        state=state,
        sender=InstantSender(),
    )
    first = [{"user_id": f"u{i}", "plan": "gold", "ltv": i} for i in range(users)]
    started = time.process_time()
    result = sync.run(first)
    first_cpu = time.process_time() - started
    assert result.added == users
    half = [{"user_id": f"u{i}", "plan": "gold", "ltv": i + (i % 2)} for i in range(users)]
    started = time.process_time()
    result = sync.run(half)
    rerun_cpu = time.process_time() - started
    assert result.changed == users // 2
    sync.close()
    client.close()
    return first_cpu, rerun_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("users", nargs="?", type=int, default=30_000)
    parser.add_argument("--state", choices=("memory", "sqlite", "both"), default="both")
    args = parser.parse_args()
    kinds = ["memory", "sqlite"] if args.state == "both" else [args.state]
    for kind in kinds:
        first, rerun = measure(args.users, kind)
        print(
            f"{kind:>6}: first run {first:6.2f} s CPU ({args.users / first:9,.0f} users/s), "
            f"half changed {rerun:6.2f} s CPU ({args.users / rerun:9,.0f} users/s)"
        )


if __name__ == "__main__":
    main()
