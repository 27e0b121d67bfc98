"""Edge fan-out: ``Sync.run`` of N new users against the emulator served in a separate process,
side by side with bare client loops at the same concurrency.

    .venv/bin/python benchmarks/edge_fanout.py [--n 20000] [--concurrency 32] [--httpx-n 4000]

Prints requests per second for: a bare ``httpx.AsyncClient`` loop, a bare aiohttp loop (when
aiohttp is installed), a raw asyncio HTTP/1.1 keep-alive client (the limit of Python on this
machine), ``Sync.run`` with the default (fast) sender and ``Sync.run`` forced onto httpx; then
our ratio to each. httpx cases send ``--httpx-n`` requests (they are slow; a rate is a rate).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any

from _common import Server, emulator_process, rows, table

from contentstack_personalize import PersonalizeClient
from contentstack_personalize.sync import Sync
from contentstack_personalize.sync._sender import ENV_SENDER


def _headers(server: Server, uid: str) -> dict[str, str]:
    return {
        "x-project-uid": server.project_uid,
        "x-cs-personalize-user-uid": uid,
        "Content-Type": "application/json",
    }


def _body(i: int) -> bytes:
    return json.dumps({"c0": f"v0-{i % 97}", "c1": i * 2}, separators=(",", ":")).encode()


async def _fan_out(n: int, c: int, one: Callable[[int], Coroutine[Any, Any, None]]) -> float:
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await one(i)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(c)))
    return n / (time.perf_counter() - t0)


async def bare_httpx(server: Server, n: int, c: int, prefix: str) -> float:
    import httpx

    url = server.edge_url + "/user-attributes"
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    async with httpx.AsyncClient(limits=limits) as client:

        async def one(i: int) -> None:
            r = await client.patch(url, content=_body(i), headers=_headers(server, f"{prefix}{i}"))
            r.raise_for_status()

        return await _fan_out(n, c, one)


async def bare_aiohttp(server: Server, n: int, c: int, prefix: str) -> float:
    import aiohttp

    url = server.edge_url + "/user-attributes"
    connector = aiohttp.TCPConnector(limit=c)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> None:
            async with session.patch(
                url, data=_body(i), headers=_headers(server, f"{prefix}{i}")
            ) as r:
                await r.read()
                r.raise_for_status()

        return await _fan_out(n, c, one)


class _RawConn(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).lower()
        i = head.find(b"content-length:")
        length = int(head[i + 15 : head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0 else None])
        if len(self.buf) >= end + 4 + length:
            status = int(self.buf[9:12])
            del self.buf[:]
            assert self.waiter is not None
            self.waiter.set_result(status)


async def raw_asyncio(server: Server, n: int, c: int, prefix: str) -> float:
    """The limit: one persistent connection per worker, hand-built request bytes."""
    from urllib.parse import urlsplit

    parts = urlsplit(server.edge_url)
    loop = asyncio.get_running_loop()
    head = (
        f"PATCH {parts.path}/user-attributes HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"x-project-uid: {server.project_uid}\r\nContent-Type: application/json\r\n"
    ).encode()
    conns = [
        (await loop.create_connection(_RawConn, parts.hostname, parts.port))[1] for _ in range(c)
    ]
    counter = iter(range(n))

    async def worker(conn: _RawConn) -> None:
        assert conn.transport is not None
        for i in counter:
            body = _body(i)
            conn.waiter = loop.create_future()
            conn.transport.write(
                head
                + b"x-cs-personalize-user-uid: %s%d\r\nContent-Length: %d\r\n\r\n%s"
                % (prefix.encode(), i, len(body), body)
            )
            status = await conn.waiter
            assert status == 200, status

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(conn) for conn in conns))
    rate = n / (time.perf_counter() - t0)
    for conn in conns:
        assert conn.transport is not None
        conn.transport.close()
    return rate


def sync_run(server: Server, n: int, c: int, prefix: str, kind: str) -> float:
    client = PersonalizeClient(
        server.project_uid,
        edge_url=server.edge_url,
        management_url=server.management_url,
        read_env=False,
    )
    # The engine makes (and closes) its own sender; the variable forces which one.
    os.environ[ENV_SENDER] = kind
    sync = Sync(
        client,
        match_on="user_id",
        mapping={"c0": "c0", "c1": "c1"},
        concurrency=c,
        check_attributes=False,
    )
    t0 = time.perf_counter()
    result = sync.run(rows(n, prefix=prefix))
    elapsed = time.perf_counter() - t0
    del os.environ[ENV_SENDER]
    assert result.added == n, result.summary()
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--httpx-n", type=int, default=4_000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    n, c = args.n, args.concurrency
    rates: dict[str, float] = {}
    with emulator_process() as server:
        # Warm the server up (first connections, code paths) before measuring anything.
        asyncio.run(raw_asyncio(server, 2000, c, "warm"))
        rates["bare httpx.AsyncClient loop"] = asyncio.run(bare_httpx(server, args.httpx_n, c, "h"))
        try:
            import aiohttp  # noqa: F401
        except ImportError:
            print("aiohttp is not installed: skipping the bare aiohttp loop")
        else:
            rates["bare aiohttp loop"] = asyncio.run(bare_aiohttp(server, n, c, "a"))
        rates["raw asyncio HTTP/1.1 client"] = asyncio.run(raw_asyncio(server, n, c, "r"))
        rates["Sync.run, httpx sender"] = sync_run(server, args.httpx_n, c, "sh", "httpx")
        rates["Sync.run, fast sender (default)"] = sync_run(server, n, c, "sf", "auto")
    ours = rates["Sync.run, fast sender (default)"]
    lines = [("case", "requests/s", "Sync.run (fast) / this")]
    for name, rate in rates.items():
        lines.append((name, f"{rate:,.0f}", f"{ours / rate:.2f}x"))
    print(f"\nEdge fan-out, {n:,} new users (httpx cases: {args.httpx_n:,}), concurrency {c}\n")
    print(table(lines))
    print(
        "\ntargets: >= 0.9x the bare aiohttp loop, >= 5x the bare httpx loop; "
        "the ratio to the raw asyncio client is the distance to the limit."
    )


if __name__ == "__main__":
    main()
