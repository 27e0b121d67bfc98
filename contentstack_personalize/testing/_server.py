"""A real HTTP/1.1 server for the emulator: asyncio in a background thread, a minimal
hand-rolled parser on ``asyncio.Protocol`` (keep-alive, pipelining, Content-Length and chunked
request bodies, ``Expect: 100-continue``), answers from ``PersonalizeEmulator.handle``.

Not a general web server: it trusts its clients (tests and benchmarks on loopback).
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import threading
from collections import deque
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

from ._http import EmulatorRequest, EmulatorResponse, Headers

if TYPE_CHECKING:
    from ._emulator import PersonalizeEmulator

__all__ = ["EmulatorServer"]

_MAX_HEAD = 64 * 1024
_MAX_BODY = 32 * 1024 * 1024
_REASONS = {s.value: s.phrase for s in http.HTTPStatus}
_REASONS[294] = "Two-Factor Required"


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _chunked(buf: bytearray) -> tuple[bytes, int] | None:
    """Decode a complete chunked body at the start of ``buf``: (body, bytes used), or None
    when more data is needed."""
    pos = 0
    out = bytearray()
    while True:
        end = buf.find(b"\r\n", pos)
        if end < 0:
            return None
        size_text = bytes(buf[pos:end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise _BadRequest(400, "bad chunk size") from None
        pos = end + 2
        if size == 0:
            if buf[pos : pos + 2] == b"\r\n":
                return bytes(out), pos + 2
            trailers_end = buf.find(b"\r\n\r\n", pos)
            if trailers_end < 0:
                return None
            return bytes(out), trailers_end + 4
        if len(buf) < pos + size + 2:
            return None
        out += buf[pos : pos + size]
        if len(out) > _MAX_BODY:
            raise _BadRequest(413, "body too large")
        pos += size + 2


class _Connection(asyncio.Protocol):
    __slots__ = (
        "_buf",
        "_busy",
        "_closed",
        "_head",
        "_pending",
        "_server",
        "_task",
        "_transport",
    )

    def __init__(self, server: EmulatorServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        # Parsed head waiting for its body: method, target, headers, keep-alive, length/-1.
        self._head: tuple[str, str, Headers, bool, int] | None = None
        self._pending: deque[tuple[EmulatorRequest, bool]] = deque()
        self._busy = False
        self._closed = False
        self._task: asyncio.Task[None] | None = None

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._server._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._server._connections.discard(self)
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        self._buf += data
        try:
            self._parse()
        except _BadRequest as exc:
            self._fail(exc.status, str(exc))
            return
        self._pump()

    # parsing

    def _parse(self) -> None:
        buf = self._buf
        while True:
            if self._head is None:
                idx = buf.find(b"\r\n\r\n")
                if idx < 0:
                    if len(buf) > _MAX_HEAD:
                        raise _BadRequest(431, "request head too large")
                    return
                self._head = self._parse_head(bytes(buf[:idx]))
                del buf[: idx + 4]
            method, target, headers, keep_alive, length = self._head
            if length < 0:
                decoded = _chunked(buf)
                if decoded is None:
                    return
                body, used = decoded
            else:
                if len(buf) < length:
                    return
                body, used = bytes(buf[:length]), length
            del buf[:used]
            self._head = None
            self._pending.append((self._build(method, target, headers, body), keep_alive))

    def _parse_head(self, head: bytes) -> tuple[str, str, Headers, bool, int]:
        lines = head.decode("latin-1").split("\r\n")
        while lines and not lines[0]:  # tolerate stray CRLFs between requests
            lines.pop(0)
        parts = lines[0].split(" ") if lines else []
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest(400, "bad request line")
        method, target, version = parts
        pairs = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise _BadRequest(400, "bad header line")
            pairs.append((name, value.strip()))
        headers = Headers(pairs)
        connection = headers.get("connection", "").lower()
        keep_alive = (
            "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        )
        if "chunked" in headers.get("transfer-encoding", "").lower():
            length = -1
        else:
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                raise _BadRequest(400, "bad content-length") from None
            if length < 0:
                raise _BadRequest(400, "bad content-length")
            if length > _MAX_BODY:
                raise _BadRequest(413, "body too large")
        if headers.get("expect", "").lower() == "100-continue" and self._transport is not None:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return method, target, headers, keep_alive, length

    @staticmethod
    def _build(method: str, target: str, headers: Headers, body: bytes) -> EmulatorRequest:
        host = headers.get("host", "")
        if target.startswith(("http://", "https://")):
            parts = urlsplit(target)
            host = parts.netloc
            path, query = parts.path, parts.query
        else:
            path, _, query = target.partition("?")
        if host.startswith("["):
            host = host[1 : host.find("]")]
        else:
            host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        return EmulatorRequest(
            method=method.upper(),
            host=host.lower(),
            path=unquote(path) or "/",
            query=tuple(parse_qsl(query, keep_blank_values=True)) if query else (),
            headers=headers,
            body=body,
        )

    # answering

    def _pump(self) -> None:
        emulator = self._server.emulator
        while self._pending and not self._busy and not self._closed:
            request, keep_alive = self._pending.popleft()
            try:
                response = emulator.handle(request)
            except Exception as exc:  # a bug in the emulator: answer it rather than hang
                response = EmulatorResponse(
                    status=500,
                    headers=(("content-type", "text/plain; charset=utf-8"),),
                    body=f"emulator error: {exc!r}".encode(),
                )
            if not response.delay and response.failure is None:
                self._write(response, keep_alive)
                continue
            self._busy = True
            self._task = asyncio.get_running_loop().create_task(self._later(response, keep_alive))
            return

    async def _later(self, response: EmulatorResponse, keep_alive: bool) -> None:
        if response.delay:
            await asyncio.sleep(response.delay)
        if response.failure == "timeout":
            await asyncio.sleep(response.hold)
        if response.failure is not None:
            self._close()
            return
        self._busy = False
        self._write(response, keep_alive)
        self._pump()

    def _write(self, response: EmulatorResponse, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None or self._closed:
            return
        status = response.status
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
        for name, value in response.headers:
            lines.append(f"{name}: {value}")
        if status not in (204, 304) and not 100 <= status < 200:
            lines.append(f"content-length: {len(response.body)}")
        lines.append("connection: keep-alive" if keep_alive else "connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        transport.write(head + response.body if status not in (204, 304) else head)
        if not keep_alive:
            self._close()

    def _fail(self, status: int, message: str) -> None:
        self._write(EmulatorResponse(status=status, body=message.encode()), keep_alive=False)
        self._close()

    def _close(self) -> None:
        self._closed = True
        self._pending.clear()
        if self._transport is not None:
            self._transport.close()


class EmulatorServer:
    """A running HTTP server for a ``PersonalizeEmulator`` (see ``PersonalizeEmulator.serve``).

    ``url`` is the root (``http://127.0.0.1:PORT``); ``edge_url``, ``management_url``,
    ``cma_url`` and ``developerhub_url`` are the base URLs to give a client (the root plus
    ``/edge``, ``/management``, ``/cma``, ``/developerhub``).

    Example::

        with emulator.serve() as server:
            client = PersonalizeClient(
                emulator.project_uid, edge_url=server.edge_url, read_env=False
            )
            client.users.set_attributes("user-42", {"plan": "gold"})
    """

    def __init__(self, emulator: PersonalizeEmulator, host: str = "127.0.0.1", port: int = 0):
        self.emulator = emulator
        self.host = host
        self.port = port
        self._connections: set[_Connection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        return f"EmulatorServer(url={self.url!r})"

    @property
    def url(self) -> str:
        """The server's root URL, ``http://HOST:PORT``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def edge_url(self) -> str:
        """The Edge API base URL to give a client (``edge_url=``)."""
        return f"{self.url}/edge"

    @property
    def management_url(self) -> str:
        """The Management API base URL to give a client (``management_url=``)."""
        return f"{self.url}/management"

    @property
    def cma_url(self) -> str:
        """The CMA base URL, for ``login(cma_url=...)`` and ``cma_url=``."""
        return f"{self.url}/cma"

    @property
    def developerhub_url(self) -> str:
        """The Developer Hub base URL; its ``/token`` is the OAuth ``token_url``."""
        return f"{self.url}/developerhub"

    @property
    def control_url(self) -> str:
        """The base URL of the inspection and control endpoints (``{url}/_emulator``)."""
        return f"{self.url}/_emulator"

    def start(self) -> None:
        """Start serving in a daemon thread; returns once the socket listens."""
        if self._thread is not None:
            raise RuntimeError(
                "the server is already started; call stop() first, or use another EmulatorServer"
            )
        self._thread = threading.Thread(
            target=self._run, name="personalize-emulator-server", daemon=True
        )
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error

    def stop(self) -> None:
        """Close every connection and the listening socket, and end the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._thread = None
        self._loop = None

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            server = loop.run_until_complete(
                loop.create_server(
                    lambda: _Connection(self),
                    self.host,
                    self.port,
                    backlog=2048,
                    reuse_address=True,
                )
            )
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            # Close every connection (which cancels its delayed answer) and let accepts
            # already in flight finish, until nothing is pending; only then stop listening:
            # an accept that completes after Server.close() leaks its socket.
            for _ in range(20):
                for connection in list(self._connections):
                    connection._close()
                loop.run_until_complete(asyncio.sleep(0))
                tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
                if not tasks:
                    break
                loop.run_until_complete(asyncio.wait(tasks, timeout=1.0))
            server.close()
            for connection in list(self._connections):
                connection._close()
            loop.run_until_complete(asyncio.sleep(0))
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(server.wait_closed())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
