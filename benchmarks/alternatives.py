"""What a user would write instead, on the same server (the emulator in its own process):

- a sequential ``httpx.Client`` loop, one PATCH per user;
- the official JavaScript Edge SDK (``@contentstack/personalize-edge-sdk``): ``init`` then ``set``
  per user, ``--concurrency`` users at a time in ``Promise.all`` batches (needs Node and
  ``npm install`` in ``benchmarks/js``);
- ``Sync.run`` (default sender) at the same concurrency.

    .venv/bin/python benchmarks/alternatives.py [--n 5000] [--concurrency 32]

Rates are users per second (the SDK also fetches a manifest per user in ``init``).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import time

import httpx
from _common import ROOT, Server, emulator_process, rows, table

from contentstack_personalize import PersonalizeClient
from contentstack_personalize.sync import Sync


def sequential_httpx(server: Server, n: int) -> float:
    url = server.edge_url + "/user-attributes"
    t0 = time.perf_counter()
    with httpx.Client() as client:
        for row in rows(n, prefix="seq"):
            body = {"c0": row["c0"], "c1": row["c1"]}
            headers = {
                "x-project-uid": server.project_uid,
                "x-cs-personalize-user-uid": row["user_id"],
            }
            client.patch(url, json=body, headers=headers).raise_for_status()
    return n / (time.perf_counter() - t0)


def js_sdk(server: Server, n: int, c: int) -> float | None:
    script = ROOT / "benchmarks" / "js" / "edge_sdk.js"
    if shutil.which("node") is None:
        print("node is not installed: skipping the JavaScript SDK")
        return None
    if not (script.parent / "node_modules" / "@contentstack").exists():
        print("run `npm install` in benchmarks/js first: skipping the JavaScript SDK")
        return None
    out = subprocess.run(
        ["node", str(script), server.edge_url, server.project_uid, str(n), str(c)],
        check=True,
        capture_output=True,
        text=True,
    )
    fig = json.loads(out.stdout.strip().splitlines()[-1])
    return float(fig["users"] / fig["seconds"])


def ours(server: Server, n: int, c: int) -> float:
    client = PersonalizeClient(
        server.project_uid,
        edge_url=server.edge_url,
        management_url=server.management_url,
        read_env=False,
    )
    sync = Sync(
        client,
        match_on="user_id",
        mapping={"c0": "c0", "c1": "c1"},
        concurrency=c,
        check_attributes=False,
    )
    t0 = time.perf_counter()
    result = sync.run(rows(n, prefix="ours"))
    assert result.added == n, result.summary()
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5_000)
    parser.add_argument("--sequential-n", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    rates: dict[str, float] = {}
    with emulator_process() as server:
        rates["sequential httpx.Client loop"] = sequential_httpx(server, args.sequential_n)
        js = js_sdk(server, args.n, args.concurrency)
        if js is not None:
            rates[f"JS Edge SDK, init+set, Promise.all x{args.concurrency}"] = js
        rates["Sync.run (this library)"] = ours(server, args.n, args.concurrency)
    mine = rates["Sync.run (this library)"]
    lines = [("what", "users/s", "Sync.run / this")]
    lines += [(k, f"{v:,.0f}", f"{mine / v:.1f}x") for k, v in rates.items()]
    print(f"\nWhat a user would write instead, {args.n:,} users, concurrency {args.concurrency}\n")
    print(table(lines))


if __name__ == "__main__":
    main()
