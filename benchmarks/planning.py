"""Planning at scale: ``Sync.run`` of 100,000 and 1,000,000 rows with 10 mapped columns against
a sender that accepts everything at once (the engine alone: source, match, map, spool, diff,
commit), then a rerun with 1% of the rows changed. Each case runs in its own process so that
its peak RSS (``ru_maxrss``) is its own.

    .venv/bin/python benchmarks/planning.py [--rows 100000,1000000]
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, NullSender, rows, table

COLUMNS = 10


def case(n: int, state: str, changed_every: int) -> dict[str, float]:
    """One run in this process; prints its figures as JSON."""
    from contentstack_personalize import PersonalizeClient
    from contentstack_personalize.sync import Sync

    logging.basicConfig(level=logging.ERROR)
    client = PersonalizeClient(
        "000000000000000000000000", edge_url="http://127.0.0.1:9/edge", read_env=False
    )
    sender = NullSender()
    sync = Sync(
        client,
        match_on="user_id",
        mapping={f"c{i}": f"c{i}" for i in range(COLUMNS)},
        state=state,
        check_attributes=False,
        sender=sender,
    )
    t0 = time.perf_counter()
    result = sync.run(rows(n, columns=COLUMNS, changed_every=changed_every))
    elapsed = time.perf_counter() - t0
    sync.close()
    return {
        "rows": n,
        "seconds": elapsed,
        "requests": result.requests,
        "sent": sender.sent,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="100000,1000000")
    parser.add_argument("--case", nargs=3, metavar=("N", "STATE", "CHANGED_EVERY"))
    args = parser.parse_args()
    if args.case:
        n, state, every = args.case
        print(json.dumps(case(int(n), state, int(every))))
        return
    lines = [("rows", "run", "seconds", "rows/s", "peak RSS MB", "requests")]
    first_seconds: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.rows.split(",")):
            state = str(Path(tmp) / f"state-{n}.db")
            for label, every in (("first", 0), ("rerun 1% changed", 100)):
                out = subprocess.run(
                    [sys.executable, __file__, "--case", str(n), state, str(every)],
                    check=True,
                    capture_output=True,
                    text=True,
                    cwd=ROOT,
                )
                fig = json.loads(out.stdout.strip().splitlines()[-1])
                if label == "first":
                    first_seconds[n] = fig["seconds"]
                lines.append(
                    (
                        f"{n:,}",
                        label,
                        f"{fig['seconds']:.2f}",
                        f"{n / fig['seconds']:,.0f}",
                        f"{fig['rss_mb']:.0f}",
                        f"{fig['requests']:,} ({fig['requests'] / n:.2%})",
                    )
                )
    print(f"\nPlanning at scale: {COLUMNS} mapped columns, SQLite state, instant sender\n")
    print(table(lines))
    sizes = sorted(first_seconds)
    if len(sizes) >= 2:
        small, big = sizes[0], sizes[-1]
        print(
            f"\nfirst run, {big:,} rows / {small:,} rows: "
            f"{first_seconds[big] / first_seconds[small]:.1f}x the time for "
            f"{big / small:.0f}x the rows (target <= 11x for 10x); peak RSS target < 300 MB"
        )


if __name__ == "__main__":
    main()
