"""What the changelog (sync logs, per user and run) costs: ``Sync.run`` with
``change_log="values"`` against ``change_log="off"``, side by side, on SQLite and PostgreSQL
state, for a first run (every user sent, so every user logged) and a rerun with 1% changed.

Two senders: ``instant`` accepts everything at once, so the store's writes are the critical
path (the worst case); ``http`` sends every request for real over loopback HTTP, with the
built-in sender, to ``benchmarks/minimal_server.py`` in another process (a server that answers
at once: a real Edge API costs milliseconds per request and shrinks the log's share further).
Cases alternate (off, values, off, values, ...) so the machine's load drifts evenly over both;
each case runs in its own process with a fresh state.

    .venv/bin/python benchmarks/change_log.py [--rows 200000] [--repeat 2] [--senders instant,http]
        [--latency 0.02]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path

from _common import emulator_process, table
from state_stores import run_case


@contextlib.contextmanager
def sending(kind: str, latency: float) -> Iterator[None]:
    """``instant``: the benchmark's null sender; ``http``: a loopback server in another process
    answering after ``latency`` seconds."""
    if kind == "instant":
        yield
        return
    with emulator_process(latency, minimal=True) as server:
        os.environ["BENCH_EDGE_URL"] = server.edge_url
        os.environ["BENCH_PROJECT_UID"] = server.project_uid
        try:
            yield
        finally:
            del os.environ["BENCH_EDGE_URL"], os.environ["BENCH_PROJECT_UID"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--senders", default="instant,http")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer (http)")
    args = parser.parse_args()

    from tests.state._pgserver import postgres_server

    n = args.rows
    lines = [("sender", "store", "run", "off s", "values s", "values / off", "rows logged")]
    with tempfile.TemporaryDirectory() as tmp, postgres_server(durable=True) as server:
        for kind in args.senders.split(","):
            with sending(kind, args.latency):
                measure(kind, n, args.repeat, tmp, server.url, lines)
    print(
        f"\nThe changelog's cost: {n:,} rows, median of {args.repeat}, "
        f"server latency {args.latency * 1000:g} ms (http)\n"
    )
    print(table(lines))
    print("\ntarget: a few percent at most")


def measure(
    kind: str, n: int, repeat: int, tmp: str, pg_url: str, lines: list[tuple[str, ...]]
) -> None:
    for store in ("SQLite", "PostgreSQL"):
        times: dict[tuple[str, str], list[float]] = {}
        for attempt in range(repeat):
            for mode in ("off", "values"):
                if store == "SQLite":
                    state = str(Path(tmp) / f"{kind}-{mode}-{attempt}.db")
                else:
                    state = f"{pg_url}?schema=log_{kind}_{mode}_{attempt}"
                for label, every in (("first", 0), ("rerun, 1% changed", 100)):
                    figures = run_case(n, state, every, mode)
                    times.setdefault((label, mode), []).append(figures["seconds"])
        for label, logged in (("first", n), ("rerun, 1% changed", n // 100)):
            off = statistics.median(times[(label, "off")])
            on = statistics.median(times[(label, "values")])
            lines.append(
                (
                    kind,
                    store,
                    label,
                    f"{off:.2f}",
                    f"{on:.2f}",
                    f"{on / off:.3f}x",
                    f"{logged:,}",
                )
            )


if __name__ == "__main__":
    main()
