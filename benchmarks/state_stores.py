"""Where state lives, at scale: ``Sync.run`` of 1,000,000 rows (first run) and a rerun with 1%
of the rows changed, with SQLite state and with PostgreSQL state, side by side in one run.

The sender accepts everything at once, so the figures are the engine and its store: reading,
mapping, spooling, loading state, diffing, write-ahead of pending keys and commits. PostgreSQL
is a throwaway server started for the benchmark on loopback (PostgreSQL 15, durable settings:
``fsync`` and ``synchronous_commit`` on); SQLite is a file in a temporary directory (WAL,
``synchronous=NORMAL``). Each case runs in its own process so its peak RSS is its own.

    .venv/bin/python benchmarks/state_stores.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, NullSender, rows, table

COLUMNS = 10


def case(n: int, state: str, changed_every: int, change_log: str = "values") -> dict[str, float]:
    """One run in this process; returns its figures."""
    from contentstack_personalize import PersonalizeClient
    from contentstack_personalize.sync import Sync

    logging.basicConfig(level=logging.ERROR)
    # BENCH_EDGE_URL: send for real over HTTP (the built-in sender) to a server there.
    edge_url = os.environ.get("BENCH_EDGE_URL")
    client = PersonalizeClient(
        os.environ.get("BENCH_PROJECT_UID", "000000000000000000000000"),
        edge_url=edge_url or "http://127.0.0.1:9/edge",
        read_env=False,
    )
    sender = None if edge_url else NullSender()
    sync = Sync(
        client,
        match_on="user_id",
        mapping={f"c{i}": f"c{i}" for i in range(COLUMNS)},
        state=state,
        name="bench",
        check_attributes=False,
        sender=sender,
        change_log=change_log,
    )
    t0 = time.perf_counter()
    result = sync.run(rows(n, columns=COLUMNS, changed_every=changed_every))
    elapsed = time.perf_counter() - t0
    sync.close()
    return {
        "rows": n,
        "seconds": elapsed,
        "requests": result.requests,
        "unchanged": result.unchanged,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def postgres_bytes(url: str) -> int:
    import psycopg

    base, _, schema = url.partition("?schema=")
    with psycopg.connect(base) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r'",
            (schema,),
        ).fetchone()
    return int(row[0]) if row else 0


def sqlite_bytes(path: str) -> int:
    return sum(
        os.path.getsize(path + suffix)
        for suffix in ("", "-wal", "-shm")
        if os.path.exists(path + suffix)
    )


def run_case(n: int, state: str, every: int, change_log: str = "values") -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--case", str(n), state, str(every), change_log],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="1000000")
    parser.add_argument("--case", nargs=4, metavar=("N", "STATE", "CHANGED_EVERY", "CHANGE_LOG"))
    args = parser.parse_args()
    if args.case:
        n, state, every, change_log = args.case
        print(json.dumps(case(int(n), state, int(every), change_log)))
        return

    from tests.state._pgserver import postgres_server

    lines = [
        ("rows", "run", "SQLite s", "PostgreSQL s", "PG / SQLite", "RSS MB (SQLite, PG)", "sent")
    ]
    disk: list[tuple[str, ...]] = [("rows", "SQLite state", "PostgreSQL state")]
    with tempfile.TemporaryDirectory() as tmp, postgres_server(durable=True) as server:
        for n in (int(x) for x in args.rows.split(",")):
            sqlite_state = str(Path(tmp) / f"state-{n}.db")
            pg_state = f"{server.url}?schema=bench_{n}"
            for label, every in (("first", 0), ("rerun, 1% changed", 100)):
                lite = run_case(n, sqlite_state, every)
                pg = run_case(n, pg_state, every)
                assert lite["requests"] == pg["requests"], (lite, pg)
                lines.append(
                    (
                        f"{n:,}",
                        label,
                        f"{lite['seconds']:.2f}",
                        f"{pg['seconds']:.2f}",
                        f"{pg['seconds'] / lite['seconds']:.2f}x",
                        f"{lite['rss_mb']:.0f}, {pg['rss_mb']:.0f}",
                        f"{int(pg['requests']):,}",
                    )
                )
            disk.append(
                (
                    f"{n:,}",
                    f"{sqlite_bytes(sqlite_state) / 1e6:.0f} MB",
                    f"{postgres_bytes(pg_state) / 1e6:.0f} MB",
                )
            )
    print(f"\nState stores: {COLUMNS} mapped columns, instant sender, loopback PostgreSQL 15\n")
    print(table(lines))
    print("\nDisk used by the state after both runs\n")
    print(table(disk))
    print("\ntarget: PostgreSQL <= 1.5x SQLite time, flat memory")


if __name__ == "__main__":
    main()
