"""Latency-bound fan-out: the emulator answers every request after ``--latency`` seconds; with C
requests in flight the best possible rate is C / latency. Prints what ``Sync.run`` achieves.

    .venv/bin/python benchmarks/latency_bound.py [--latency 0.05] [--concurrency 32,128,256]
                                                 [--seconds 4]

Two rates per concurrency: the fan-out phase (first request sent to last answer, measured by a
thin sender wrapper) and the whole run (reading, mapping, diffing and committing included).
"""

from __future__ import annotations

import argparse
import logging
import time

from _common import TimedSender, emulator_process, rows, table

from contentstack_personalize import PersonalizeClient
from contentstack_personalize.sync import Sync
from contentstack_personalize.sync._fast import FastEdgeSender


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", default="32,128,256")
    parser.add_argument("--seconds", type=float, default=6.0, help="target length of each case")
    parser.add_argument(
        "--server",
        choices=("minimal", "emulator"),
        default="minimal",
        help="minimal (default): benchmarks/minimal_server.py; the emulator's own latency "
        "handling (a task per delayed answer) caps even a raw client below 0.87 at C=256",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    lines = [("C", "requests", "bound C/latency", "fan-out req/s", "ratio", "whole run req/s")]
    with emulator_process(latency=args.latency, minimal=args.server == "minimal") as server:
        for c in (int(x) for x in args.concurrency.split(",")):
            bound = c / args.latency
            n = int(bound * args.seconds)
            client = PersonalizeClient(
                server.project_uid,
                edge_url=server.edge_url,
                management_url=server.management_url,
                read_env=False,
            )
            sender = TimedSender(FastEdgeSender(client, concurrency=c))
            sync = Sync(
                client,
                match_on="user_id",
                mapping={"c0": "c0", "c1": "c1"},
                concurrency=c,
                check_attributes=False,
                sender=sender,
            )
            t0 = time.perf_counter()
            result = sync.run(rows(n, prefix=f"lat{c}-"))
            whole = n / (time.perf_counter() - t0)
            assert result.added == n, result.summary()
            lines.append(
                (
                    str(c),
                    f"{n:,}",
                    f"{bound:,.0f}",
                    f"{sender.rate:,.0f}",
                    f"{sender.rate / bound:.3f}",
                    f"{whole:,.0f}",
                )
            )
    print(f"\nLatency-bound fan-out, {args.server} server, latency {args.latency * 1000:.0f} ms\n")
    print(table(lines))
    print("\ntarget: fan-out ratio >= 0.95 for C up to 256")


if __name__ == "__main__":
    main()
