"""Scaling past one process: one distributed run split over 1, 2, ... worker processes on this
machine, each running its partition with ``Sync.from_spec(spec).run(rows, partition=...)``, the
Edge answering after ``--latency`` seconds. Prints users per second per worker and in total, and
each worker's CPU per user, the figures docs/scaling.md models bigger runs from.

    .venv/bin/python benchmarks/scaling.py [--workers 1,2] [--latency 0.02,0.1]
                                           [--concurrency 64] [--seconds 6]
                                           [--server minimal|emulator]

Every case is a first load (every user added) into a fresh SQLite state file; the driver holds
the run (``sync.begin_distributed``) and records it once. The server runs in its own process on
the same cores: on a two-core machine the workers and the server share two cores, so the rates
at two workers say what the machine allows, not what two machines would do.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import emulator_process, rows, table

from contentstack_personalize import PersonalizeClient
from contentstack_personalize.sync import Partition, Sync, SyncSpec, partition_of


def work(spec: SyncSpec, partition: Partition, n: int, prefix: str) -> tuple[Any, float, float]:
    """A worker: its partition's rows, then the run, timed (wall and CPU)."""
    count, index = partition.count, partition.index
    mine = [r for r in rows(n, prefix=prefix) if partition_of(r["user_id"], count) == index]
    with Sync.from_spec(spec) as sync:
        wall, cpu = time.perf_counter(), time.process_time()
        result = sync.run(mine, partition=partition)
        return result, time.perf_counter() - wall, time.process_time() - cpu


def case(server: Any, workers: int, n: int, concurrency: int, state: Path) -> dict[str, float]:
    client = PersonalizeClient(
        server.project_uid,
        edge_url=server.edge_url,
        management_url=server.management_url,
        read_env=False,
    )
    prefix = f"w{workers}-{int(time.time() * 1000)}-"
    with Sync(
        client,
        match_on="user_id",
        mapping={"c0": "c0", "c1": "c1"},
        concurrency=concurrency,
        check_attributes=False,
        state=str(state),
    ) as sync:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            pool.submit(time.sleep, 0).result()  # the workers exist before the clock starts
            run = sync.begin_distributed(partitions=workers)
            t0 = time.perf_counter()
            spec = run.spec
            futures = [pool.submit(work, spec, run.partition(i), n, prefix) for i in range(workers)]
            outcomes = [f.result() for f in futures]
            result = run.finish(o[0] for o in outcomes)
            wall = time.perf_counter() - t0
    assert result.added == n, result.summary()
    sent = [o[0].added for o in outcomes]
    return {
        "total": n / wall,
        "per_worker": sum(s / o[1] for s, o in zip(sent, outcomes, strict=True)) / workers,
        "cpu_us": 1e6 * sum(o[2] for o in outcomes) / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--latency", default="0.02,0.1")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight per worker")
    parser.add_argument("--seconds", type=float, default=6.0, help="target length of each case")
    parser.add_argument("--server", choices=("minimal", "emulator"), default="minimal")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    lines = [
        ("latency", "workers", "users", "bound", "users/s", "per worker", "CPU/user", "speed-up")
    ]
    for latency in (float(x) for x in args.latency.split(",")):
        with (
            emulator_process(latency=latency, minimal=args.server == "minimal") as server,
            tempfile.TemporaryDirectory() as tmp,
        ):
            base = 0.0
            for w in (int(x) for x in args.workers.split(",")):
                bound = w * args.concurrency / latency
                n = int(bound * args.seconds)
                got = case(server, w, n, args.concurrency, Path(tmp) / f"state-{w}.db")
                base = base or got["total"]
                lines.append(
                    (
                        f"{latency * 1000:.0f} ms",
                        str(w),
                        f"{n:,}",
                        f"{bound:,.0f}",
                        f"{got['total']:,.0f}",
                        f"{got['per_worker']:,.0f}",
                        f"{got['cpu_us']:,.0f} µs",
                        f"{got['total'] / base:.2f}x",
                    )
                )
    print(
        f"\nOne distributed run over worker processes, {args.server} server, "
        f"C={args.concurrency} per worker (bound = workers x C / latency)\n"
    )
    print(table(lines))


if __name__ == "__main__":
    main()
