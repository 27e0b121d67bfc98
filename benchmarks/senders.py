"""The Edge senders side by side, in one run, against ``benchmarks/minimal_server.py`` in its own
process: the fast sender with each parser (httptools, h11), the httpx sender, and bare aiohttp
and httpx loops; then ``Sync.run`` (default sender) against the bare aiohttp loop.

    .venv/bin/python benchmarks/senders.py [--n 20000] [--concurrency 32]
                                           [--latency-concurrency 32,256,1024] [--latency 0.05]
                                           [--loops asyncio,uvloop]

Two tables: loopback (no latency: CPU-bound, requests/s and client CPU per request) and
latency-bound (every answer after ``--latency`` s: the bound is C / latency). Each case sends
the same requests through ``sender.send`` from C tasks (no engine), so the CPU per request is
the sender's own. Rates move with the machine's load: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _common import Server, emulator_process, rows, table

from contentstack_personalize import AsyncPersonalizeClient, PersonalizeClient
from contentstack_personalize.sync import Sync
from contentstack_personalize.sync._fast import FastEdgeSender
from contentstack_personalize.sync._sender import make_sender

try:  # the previous sender (a checkout before the parser change) had no parser choice
    from contentstack_personalize.sync._fast import available_parsers
except ImportError:  # pragma: no cover

    def available_parsers() -> list[str]:
        return ["hand-written"]


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _body(i: int) -> bytes:
    return json.dumps({"c0": f"v0-{i % 97}", "c1": i * 2}, separators=(",", ":")).encode()


async def _fan_out(n: int, c: int, one: Callable[[int], Awaitable[None]]) -> tuple[float, float]:
    """(requests/s, client CPU seconds per request) of ``n`` calls from ``c`` tasks."""
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await one(i)

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(c)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return n / wall, cpu / n


def _client(server: Server) -> PersonalizeClient:
    return PersonalizeClient(
        server.project_uid,
        edge_url=server.edge_url,
        management_url=server.management_url,
        read_env=False,
    )


async def fast(server: Server, n: int, c: int, parser: str) -> tuple[float, float]:
    client = _client(server)
    kwargs: dict[str, Any] = {} if parser == "hand-written" else {"parser": parser}
    sender = FastEdgeSender(client, concurrency=c, **kwargs)

    async def one(i: int) -> None:
        outcome = await sender.send(f"f{parser}{c}-{i}", _body(i))
        assert outcome.ok, outcome.error

    try:
        return await _fan_out(n, c, one)
    finally:
        await sender.aclose()
        client.close()


async def httpx_sender(server: Server, n: int, c: int) -> tuple[float, float]:
    client = AsyncPersonalizeClient(
        server.project_uid, edge_url=server.edge_url, read_env=False, max_connections=c
    )
    sender = make_sender(client, concurrency=c, kind="httpx")

    async def one(i: int) -> None:
        outcome = await sender.send(f"h{c}-{i}", _body(i))
        assert outcome.ok, outcome.error

    try:
        return await _fan_out(n, c, one)
    finally:
        await client.aclose()


def _headers(server: Server, uid: str) -> dict[str, str]:
    return {
        "x-project-uid": server.project_uid,
        "x-cs-personalize-user-uid": uid,
        "Content-Type": "application/json",
    }


async def bare_aiohttp(server: Server, n: int, c: int) -> tuple[float, float]:
    import aiohttp

    url = server.edge_url + "/user-attributes"
    connector = aiohttp.TCPConnector(limit=c)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> None:
            async with session.patch(url, data=_body(i), headers=_headers(server, f"a{i}")) as r:
                await r.read()
                r.raise_for_status()

        return await _fan_out(n, c, one)


async def bare_httpx(server: Server, n: int, c: int) -> tuple[float, float]:
    import httpx

    url = server.edge_url + "/user-attributes"
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    async with httpx.AsyncClient(limits=limits) as client:

        async def one(i: int) -> None:
            r = await client.patch(url, content=_body(i), headers=_headers(server, f"x{i}"))
            r.raise_for_status()

        return await _fan_out(n, c, one)


def sync_run(server: Server, n: int, c: int, loop_factory: Any) -> float:
    client = _client(server)
    sync = Sync(
        client,
        match_on="user_id",
        mapping={"c0": "c0", "c1": "c1"},
        concurrency=c,
        check_attributes=False,
    )
    t0 = time.perf_counter()
    if loop_factory is None:
        result = sync.run(rows(n, prefix=f"s{c}-{time.time()}"))
    else:
        loop = loop_factory()
        try:
            result = loop.run_until_complete(sync.arun(rows(n, prefix=f"s{c}-{time.time()}")))
        finally:
            loop.close()
    elapsed = time.perf_counter() - t0
    assert result.added == n, result.summary()
    client.close()
    return n / elapsed


def _run(coro_factory: Callable[[], Awaitable[Any]], loop_factory: Any) -> Any:
    loop = loop_factory() if loop_factory is not None else asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro_factory())  # type: ignore[arg-type]
    finally:
        loop.close()


def _loops(names: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names.split(","):
        if name == "asyncio":
            out[name] = None
        elif name == "uvloop":
            try:
                import uvloop
            except ImportError:
                print("uvloop is not installed: skipping it")
                continue
            out[name] = uvloop.new_event_loop
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--httpx-n", type=int, default=4_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--latency-concurrency", default="32,256,1024")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--loops", default="asyncio")
    parser.add_argument("--skip", default="", help="comma-separated: loopback,latency")
    parser.add_argument(
        "--only-fast",
        action="store_true",
        help="loopback: only the fast sender (to compare checkouts side by side, run alternately)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    _raise_fd_limit()
    parsers = available_parsers()
    loops = _loops(args.loops)
    skip = set(args.skip.split(","))
    n, c = args.n, args.concurrency

    if "loopback" not in skip:
        with emulator_process(minimal=True) as server:
            _run(lambda: fast(server, 2000, c, parsers[0]), None)  # warm the server up
            for loop_name, factory in loops.items():
                cases: dict[str, tuple[float, float]] = {}
                for p in parsers:
                    cases[f"fast sender, {p}"] = _run(lambda p=p: fast(server, n, c, p), factory)
                if args.only_fast:
                    for name, (rate, cpu) in cases.items():
                        print(f"{loop_name}  {name}  {rate:,.0f} req/s  {cpu * 1e6:,.1f} us CPU")
                    continue
                cases["httpx sender"] = _run(lambda: httpx_sender(server, args.httpx_n, c), factory)
                cases["bare aiohttp loop"] = _run(lambda: bare_aiohttp(server, n, c), factory)
                cases["bare httpx loop"] = _run(
                    lambda: bare_httpx(server, args.httpx_n, c), factory
                )
                whole = sync_run(server, n, c, factory)
                aio = cases["bare aiohttp loop"][0]
                lines = [("case", "requests/s", "client CPU us/request", "/ bare aiohttp")]
                for name, (rate, cpu) in cases.items():
                    lines.append((name, f"{rate:,.0f}", f"{cpu * 1e6:,.0f}", f"{rate / aio:.2f}x"))
                lines.append(
                    ("Sync.run (default sender)", f"{whole:,.0f}", "", f"{whole / aio:.2f}x")
                )
                print(
                    f"\nLoopback, {loop_name} loop, concurrency {c}, {n:,} requests "
                    f"(httpx cases {args.httpx_n:,})\n"
                )
                print(table(lines))
                print("\ntarget: Sync.run >= 2x the bare aiohttp loop")

    if "latency" not in skip:
        with emulator_process(latency=args.latency, minimal=True) as server:
            for loop_name, factory in loops.items():
                lines = [("C", "bound", "case", "requests/s", "ratio", "CPU us/request")]
                for cc in (int(x) for x in args.latency_concurrency.split(",")):
                    bound = cc / args.latency
                    m = max(cc, int(bound * args.seconds))
                    cases = {}
                    for p in parsers:
                        cases[f"fast, {p}"] = _run(
                            lambda p=p, m=m, cc=cc: fast(server, m, cc, p), factory
                        )
                    cases["bare aiohttp"] = _run(
                        lambda m=m, cc=cc: bare_aiohttp(server, m, cc), factory
                    )
                    for name, (rate, cpu) in cases.items():
                        lines.append(
                            (
                                str(cc),
                                f"{bound:,.0f}",
                                name,
                                f"{rate:,.0f}",
                                f"{rate / bound:.3f}",
                                f"{cpu * 1e6:,.0f}",
                            )
                        )
                print(
                    f"\nLatency-bound, {loop_name} loop, {args.latency * 1000:.0f} ms per answer\n"
                )
                print(table(lines))
                print("\ntargets: ratio >= 0.95 at C = 32 and 256; >= 3x aiohttp at C = 1,024")


if __name__ == "__main__":
    main()
