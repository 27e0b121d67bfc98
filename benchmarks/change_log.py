"""What the changelog (sync logs, per user and run) costs: ``Sync.run`` with
``change_log="values"`` against ``change_log="off"``, side by side, on SQLite and PostgreSQL
state, for a first run (every user sent, so every user logged) and a rerun with 1% changed.

The sender accepts everything at once, so the store's writes are the critical path and the
figures are the worst case: with a real Edge API each request costs milliseconds and the log's
share shrinks accordingly. Cases alternate (off, values, off, values, ...) so the machine's
load drifts evenly over both; each case runs in its own process with a fresh state.

    .venv/bin/python benchmarks/change_log.py [--rows 200000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from _common import table
from state_stores import run_case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    from tests.state._pgserver import postgres_server

    n = args.rows
    lines = [("store", "run", "off s", "values s", "values / off", "rows logged")]
    with tempfile.TemporaryDirectory() as tmp, postgres_server(durable=True) as server:
        for store in ("SQLite", "PostgreSQL"):
            times: dict[tuple[str, str], list[float]] = {}
            for attempt in range(args.repeat):
                for mode in ("off", "values"):
                    if store == "SQLite":
                        state = str(Path(tmp) / f"{mode}-{attempt}.db")
                    else:
                        state = f"{server.url}?schema=log_{mode}_{attempt}"
                    for label, every in (("first", 0), ("rerun, 1% changed", 100)):
                        figures = run_case(n, state, every, mode)
                        times.setdefault((label, mode), []).append(figures["seconds"])
            for label, logged in (("first", n), ("rerun, 1% changed", n // 100)):
                off = statistics.median(times[(label, "off")])
                on = statistics.median(times[(label, "values")])
                lines.append(
                    (store, label, f"{off:.2f}", f"{on:.2f}", f"{on / off:.3f}x", f"{logged:,}")
                )
    print(f"\nThe changelog's cost: {n:,} rows, instant sender, median of {args.repeat}\n")
    print(table(lines))
    print("\ntarget: a few percent at most")


if __name__ == "__main__":
    main()
