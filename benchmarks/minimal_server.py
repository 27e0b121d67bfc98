"""A minimal HTTP/1.1 keep-alive server for benchmarks: answers every request with 200 and
``User Attributes added successfully`` after ``--latency`` seconds, scheduled with
``loop.call_later`` (no task per request), so that it is not the bottleneck when the emulator
would be (the emulator creates a task per delayed answer and does the real work).

    .venv/bin/python benchmarks/minimal_server.py --port 0 [--latency 0.05]

Prints ``edge_url: ...`` and ``project_uid: ...`` like the emulator's CLI, then serves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 34\r\nconnection: keep-alive\r\n\r\nUser Attributes added successfully"
)


class _Conn(asyncio.Protocol):
    latency = 0.0

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            i = head.find(b"content-length:")
            length = 0
            if i >= 0:
                j = head.find(b"\r\n", i)
                length = int(head[i + 15 : j if j > 0 else None])
            if len(buf) < end + 4 + length:
                return
            del buf[: end + 4 + length]
            if self.latency:
                self.loop.call_later(self.latency, self._answer)
            else:
                self._answer()

    def _answer(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(ANSWER)


async def serve(host: str, port: int, latency: float) -> None:
    _Conn.latency = latency
    server = await asyncio.get_running_loop().create_server(_Conn, host, port, backlog=1024)
    bound = server.sockets[0].getsockname()
    print(f"edge_url: http://{bound[0]}:{bound[1]}/edge")
    print(f"management_url: http://{bound[0]}:{bound[1]}/management")
    print("project_uid: 000000000000000000000000")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.latency))


if __name__ == "__main__":
    main()
