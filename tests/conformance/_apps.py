"""The Edge API as real servers see it, for the conformance suite: one ASGI app (run by uvicorn
and hypercorn) and one aiohttp app with the same routes, each started in its own process by
``conftest.py``:

- ``PATCH {prefix}/user-attributes``: counts the user (``x-cs-personalize-user-uid``) and answers
  200, under every prefix below except where said;
- ``/redirect``: 307 to another host;
- ``/chunked``: a 200 answer in chunks (no Content-Length);
- ``/gzip400``: a 400 whose JSON body is gzip-compressed;
- ``/trickle``: a 200 whose body comes one byte every 0.2 s;
- ``/rst`` (aiohttp only): the connection is reset half-way through the answer;
- ``GET /_stats``: the counts as JSON; ``POST /_reset`` clears them.

    python -m tests.conformance._apps aiohttp PORT [CERTFILE KEYFILE]
"""

from __future__ import annotations

import asyncio
import collections
import gzip
import json
import socket
import ssl
import struct
import sys
from typing import Any

COUNTS: collections.Counter[str] = collections.Counter()
OK_BODY = b"User Attributes added successfully"
ELSEWHERE = "https://elsewhere.example.test/edge/user-attributes"
GZIP_BODY = gzip.compress(json.dumps({"message": "bad value from a gzip body"}).encode())


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path: str = scope["path"]
    more = True
    while more:  # read the whole request body
        message = await receive()
        more = message.get("more_body", False)
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}

    async def answer(status: int, body: bytes, extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", str(len(body)).encode()), *extra],
            }
        )
        await send({"type": "http.response.body", "body": body})

    if path == "/_stats":
        await answer(200, json.dumps(COUNTS).encode(), ((b"content-type", b"application/json"),))
        return
    if path == "/_reset":
        COUNTS.clear()
        await answer(200, b"")
        return
    if path.startswith("/redirect/"):
        await answer(307, b"", ((b"location", ELSEWHERE.encode()),))
        return
    if path.startswith("/gzip400/"):
        await answer(
            400,
            GZIP_BODY,
            ((b"content-type", b"application/json"), (b"content-encoding", b"gzip")),
        )
        return
    COUNTS[headers.get("x-cs-personalize-user-uid", "")] += 1
    if path.startswith("/chunked/"):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for piece in (OK_BODY[:10], OK_BODY[10:]):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path.startswith("/trickle/"):
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(OK_BODY)).encode())],
            }
        )
        for i in range(len(OK_BODY)):
            await asyncio.sleep(0.2)
            await send(
                {"type": "http.response.body", "body": OK_BODY[i : i + 1], "more_body": True}
            )
        await send({"type": "http.response.body", "body": b""})
        return
    await answer(200, OK_BODY, ((b"content-type", b"text/plain"),))


def aiohttp_app() -> Any:
    from aiohttp import web

    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.path
        await request.read()
        if path == "/_stats":
            return web.json_response(dict(COUNTS))
        if path == "/_reset":
            COUNTS.clear()
            return web.Response(text="")
        if path.startswith("/redirect/"):
            return web.Response(status=307, headers={"Location": ELSEWHERE})
        if path.startswith("/gzip400/"):
            return web.Response(
                status=400,
                body=GZIP_BODY,
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            )
        COUNTS[request.headers.get("x-cs-personalize-user-uid", "")] += 1
        if path.startswith("/chunked/"):
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            await response.write(OK_BODY[:10])
            await response.write(OK_BODY[10:])
            await response.write_eof()
            return response
        if path.startswith("/rst/"):
            response = web.StreamResponse(headers={"Content-Length": "1000"})
            await response.prepare(request)
            await response.write(b"partial")
            transport = request.transport
            assert transport is not None
            sock = transport.get_extra_info("socket")
            if sock is not None:  # close with RST, not FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
            return response
        return web.Response(body=OK_BODY, content_type="text/plain")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    assert kind == "aiohttp"
    from aiohttp import web

    context = None
    if len(sys.argv) > 4:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[3], sys.argv[4])
    web.run_app(
        aiohttp_app(),
        host="127.0.0.1",
        port=port,
        ssl_context=context,
        print=None,
        backlog=2048,
        access_log=None,
    )


if __name__ == "__main__":
    main()
