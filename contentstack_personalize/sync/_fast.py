"""A lean HTTP/1.1 keep-alive client on ``asyncio.Protocol`` for the Edge fan-out.

Owns: :class:`FastEdgeSender`, which sends ``PATCH /user-attributes`` requests over a pool of
persistent connections to the edge host, and the raw-bytes exchange records it hands to the
client's observers. It exists because the sync engine's hot path is nothing but one small PATCH
per user, and httpx's general client layer costs far more CPU per request than the HTTP itself
(see ``docs/performance.md``).

It keeps every promise the httpx path makes: the client's base URL, headers, timeouts, TLS
settings (``verify``: on by default, the same certificate store httpx uses), retry policy
(backoff, ``Retry-After``, the ``sleep`` switch), exchange hooks with redaction, DEBUG logs and
typed errors. It only speaks to the edge directly: ``make_sender`` never picks it when the client
has a custom transport or ``http_client``, or when a proxy environment variable applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import httpx

from .._http import Exchange, _body_text, describe_exception, redact_headers, transport_error
from ..errors import PersonalizeError, error_from_response
from ._sender import SendOutcome

if TYPE_CHECKING:
    from ..client import _ClientCore

__all__ = ["FastEdgeSender"]

logger = logging.getLogger("contentstack_personalize.http")

#: How the sender waits between attempts (tests replace it to see the delays without waiting).
_sleep = asyncio.sleep

#: A keep-alive connection idle for longer than this may have been closed by the server just as
#: we reused it; a request on it that gets no answer at all is resent once on a fresh connection
#: without counting as an attempt. On a busy connection the same silence is a real failure
#: (a drop), which the retry policy and the exchange hooks see.
_STALE_AFTER = 1.0

_MAX_HEAD = 64 * 1024
_NO_BODY_STATUSES = frozenset({204, 304})


class _Failure(Exception):
    """A transport failure inside the protocol, turned into an httpx exception by its kind so
    that ``RetryPolicy`` and ``transport_error`` treat it exactly like the httpx path."""


class _Stale(Exception):
    """A reused keep-alive connection turned out closed before any answer byte arrived."""


class _Response:
    __slots__ = ("body", "keep_alive", "raw_headers", "status")

    def __init__(self, status: int, raw_headers: str, body: bytes, keep_alive: bool) -> None:
        self.status = status
        self.raw_headers = raw_headers
        self.body = body
        self.keep_alive = keep_alive

    @property
    def headers(self) -> list[tuple[str, str]]:
        out = []
        for line in self.raw_headers.split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:
                out.append((name.strip(), value.strip()))
        return out

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


class _Connection(asyncio.Protocol):
    """One persistent connection; one request in flight at a time (no pipelining)."""

    __slots__ = (
        "_body_left",
        "_buf",
        "_chunked",
        "_chunks",
        "_head",
        "_keep_alive",
        "_sent",
        "_status",
        "_waiter",
        "closed",
        "deadline",
        "idle_since",
        "transport",
        "used",
    )

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.used = False
        self.idle_since = 0.0
        self.deadline = 0.0
        self._buf = bytearray()
        self._waiter: asyncio.Future[_Response] | None = None
        self._status = 0
        self._head = ""
        self._keep_alive = True
        self._body_left = -1  # -1: read until EOF
        self._chunked = False
        self._chunks = bytearray()
        self._sent = False

    # -- asyncio callbacks ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._status and self._body_left == -1 and not self._chunked:
            # A response delimited by the end of the connection is now complete.
            self._finish(bytes(self._buf), keep_alive=False)
            return
        self._waiter = None
        if self._status:
            waiter.set_exception(_Failure("read", "the connection closed mid-response"))
        else:
            waiter.set_exception(
                _Failure("unanswered", "the server closed the connection without answering")
            )

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            # Bytes nobody asked for: the connection is out of step; never reuse it.
            self.abort()
            return
        self._buf += data
        try:
            self._parse()
        except _Failure as exc:
            waiter, self._waiter = self._waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)
            self.abort()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost settles the waiter

    # -- requests ------------------------------------------------------------------------------

    def request(self, data: bytes, loop: asyncio.AbstractEventLoop) -> asyncio.Future[_Response]:
        assert self.transport is not None
        waiter: asyncio.Future[_Response] = loop.create_future()
        self._waiter = waiter
        self._status = 0
        self._head = ""
        self._keep_alive = True
        self._body_left = -1
        self._chunked = False
        self._chunks.clear()
        self._buf.clear()
        self.transport.write(data)
        return waiter

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # -- parsing -------------------------------------------------------------------------------

    def _parse(self) -> None:
        buf = self._buf
        while not self._status:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HEAD:
                    raise _Failure("protocol", "response head too large")
                return
            head = bytes(buf[:end]).decode("latin-1")
            del buf[: end + 4]
            line_end = head.find("\r\n")
            status_line = head if line_end < 0 else head[:line_end]
            parts = status_line.split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
                raise _Failure("protocol", f"malformed status line {status_line[:60]!r}")
            try:
                status = int(parts[1])
            except ValueError:
                raise _Failure("protocol", f"malformed status line {status_line[:60]!r}") from None
            if 100 <= status < 200:
                continue  # 100 Continue and other interim answers
            # Only three headers matter here; the full list is parsed on the slow paths.
            low = head.lower()
            length = -1
            chunked = False
            connection = ""
            at = low.find("\ncontent-length:")
            if at >= 0:
                stop = low.find("\r", at + 16)
                try:
                    length = int(low[at + 16 : stop if stop >= 0 else None])
                except ValueError:
                    raise _Failure("protocol", "malformed Content-Length") from None
            at = low.find("\ntransfer-encoding:")
            if at >= 0:
                stop = low.find("\r", at)
                chunked = "chunked" in low[at : stop if stop >= 0 else None]
            at = low.find("\nconnection:")
            if at >= 0:
                stop = low.find("\r", at)
                connection = low[at : stop if stop >= 0 else None]
            headers = head[line_end + 2 :] if line_end >= 0 else ""
            if parts[0] == "HTTP/1.0":
                keep_alive = "keep-alive" in connection
            else:
                keep_alive = "close" not in connection
            if status in _NO_BODY_STATUSES:
                length, chunked = 0, False
            self._status = status
            self._head = headers
            self._keep_alive = keep_alive
            self._chunked = chunked
            self._body_left = -1 if chunked else length
            if not chunked and length == -1:
                self._keep_alive = False
        if self._chunked:
            self._parse_chunks()
        elif self._body_left >= 0 and len(buf) >= self._body_left:
            if len(buf) > self._body_left:
                raise _Failure("protocol", "the server sent more than the Content-Length")
            self._finish(bytes(buf), self._keep_alive)

    def _parse_chunks(self) -> None:
        buf = self._buf
        while True:
            end = buf.find(b"\r\n")
            if end < 0:
                return
            size_text = bytes(buf[:end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _Failure("protocol", "malformed chunk size") from None
            if size == 0:
                # Optional trailers, then an empty line.
                if buf[end + 2 : end + 4] == b"\r\n":
                    del buf[: end + 4]
                else:
                    trailers = buf.find(b"\r\n\r\n", end + 2)
                    if trailers < 0:
                        return
                    del buf[: trailers + 4]
                self._finish(bytes(self._chunks), self._keep_alive)
                return
            if len(buf) < end + 2 + size + 2:
                return
            self._chunks += buf[end + 2 : end + 2 + size]
            del buf[: end + 2 + size + 2]

    def _finish(self, body: bytes, keep_alive: bool) -> None:
        waiter, self._waiter = self._waiter, None
        self._buf.clear()
        if not keep_alive:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(_Response(self._status, self._head, body, keep_alive))


def _ssl_context(verify: Any) -> ssl.SSLContext:
    """The same TLS settings httpx would use for ``verify`` (on by default)."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    return httpx.create_ssl_context(verify=verify)


def _timeouts(timeout: httpx.Timeout) -> tuple[float | None, float | None]:
    connect = timeout.connect if timeout.connect is not None else timeout.pool
    read = timeout.read
    if read is not None and timeout.write is not None:
        read = max(read, timeout.write)
    return connect, read


class FastEdgeSender:
    """Sends ``PATCH /user-attributes`` over up to ``concurrency`` persistent HTTP/1.1
    connections, with ``client``'s URL, headers, timeouts, TLS, retry policy and hooks.

    ``Sync`` picks it automatically when it can (see ``make_sender``); to force it::

        sender = FastEdgeSender(client, concurrency=64)
        result = Sync(client, match_on="id", mapping={...}, sender=sender,
                      concurrency=64).run(rows)
        await sender.aclose()
    """

    def __init__(self, client: _ClientCore, *, concurrency: int) -> None:
        config = client.config
        url = httpx.URL(config.edge_url)
        if url.scheme not in ("http", "https"):
            raise PersonalizeError(
                f"the edge URL must be http(s), got {config.edge_url!r}; fix the client's "
                "edge_url= (or pass sender=make_sender(client, concurrency=..., kind='httpx'))"
            )
        self._client = client
        self._host = url.host
        self._tls = url.scheme == "https"
        self._port = url.port or (443 if self._tls else 80)
        self._ssl: ssl.SSLContext | None = _ssl_context(config.verify) if self._tls else None
        self._url = config.edge_url + "/user-attributes"
        self._connect_timeout, self._read_timeout = _timeouts(config.timeout)
        self._policy = config.retry
        self._max_body = config.max_body_bytes
        path = (url.raw_path.decode("ascii").rstrip("/") or "") + "/user-attributes"
        host_header = url.host if url.port is None else f"{url.host}:{url.port}"
        if ":" in url.host:  # IPv6 literal
            host_header = f"[{url.host}]" + (f":{url.port}" if url.port else "")
        headers = dict(client._base_headers)
        headers["x-project-uid"] = config.require_project()
        headers["Content-Type"] = "application/json"
        headers.pop("Host", None)
        headers.pop("host", None)
        self._headers = {"Host": host_header, **headers}
        lines = [f"PATCH {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in self._headers.items()]
        self._prefix = ("\r\n".join(lines) + "\r\nx-cs-personalize-user-uid: ").encode("latin-1")
        self._concurrency = concurrency
        self._idle: deque[_Connection] = deque()
        self._limit = asyncio.Semaphore(concurrency)
        self._all: set[_Connection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._busy: set[_Connection] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        read = self._read_timeout or 1.0
        self._sweep_every = max(0.01, min(0.5, read / 10))

    # -- the EdgeSender interface --------------------------------------------------------------

    async def send(self, user_uid: str, body: bytes) -> SendOutcome:
        """Send one user's JSON body with retries; never raises for API or transport failures.

        Example::

            outcome = await sender.send("user-42", b'{"plan":"gold"}')
            assert outcome.ok
        """
        data = b"%s%s\r\nContent-Length: %d\r\n\r\n%s" % (
            self._prefix,
            user_uid.encode("ascii"),
            len(body),
            body,
        )
        policy = self._policy
        attempt = 0
        while True:
            attempt += 1
            observe = bool(self._client._hook_owner._hooks) or logger.isEnabledFor(logging.DEBUG)
            started_at = time.time() if observe else 0.0
            t0 = time.perf_counter() if observe else 0.0
            response: _Response | None = None
            error: httpx.TransportError | None = None
            try:
                response = await self._attempt(data)
            except httpx.TransportError as exc:
                error = exc
            status = response.status if response is not None else 0
            if error is None and 200 <= status < 300:
                delay = None
            elif error is not None:
                delay = policy.next_delay(attempt, exc=error)
            else:
                assert response is not None
                delay = policy.next_delay(
                    attempt, status_code=status, retry_after=response.header("retry-after")
                )
            if observe:
                self._observe(
                    user_uid,
                    body,
                    response,
                    error,
                    started_at,
                    time.perf_counter() - t0,
                    attempt,
                    delay is not None,
                )
            if delay is None:
                break
            if policy.sleep and delay > 0:
                await _sleep(delay)
        if error is None and 200 <= status < 300:
            return SendOutcome(True, attempt)
        request = self._httpx_request(user_uid, body)
        if error is not None:
            failure: PersonalizeError = transport_error(error, request, attempt)
            failure.__cause__ = error
        else:
            assert response is not None
            failure = error_from_response(
                httpx.Response(
                    response.status,
                    headers=response.headers,
                    content=response.body,
                    request=request,
                ),
                attempts=attempt,
            )
        return SendOutcome(False, attempt, failure)

    async def aclose(self) -> None:
        """Close every connection this sender opened."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._busy.clear()
        for conn in list(self._all):
            if conn.transport is not None:
                conn.transport.close()
        self._all.clear()
        self._idle.clear()

    # -- one attempt ---------------------------------------------------------------------------

    async def _attempt(self, data: bytes) -> _Response:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._rebind(loop)
        async with self._limit:
            conn = self._checkout()
            if conn is not None:
                try:
                    return await self._exchange(conn, data, loop)
                except _Stale:
                    pass  # the server closed an idle connection as we reused it: not an attempt
            conn = await self._connect()
            return await self._exchange(conn, data, loop)

    def _rebind(self, loop: asyncio.AbstractEventLoop) -> None:
        """A new event loop (each ``Sync.run`` has its own): connections of the old one are
        unusable there."""
        for conn in self._all:
            if conn.transport is not None and not conn.transport.is_closing():
                with contextlib.suppress(RuntimeError):  # its loop is already closed
                    conn.transport.close()
        self._all.clear()
        self._idle.clear()
        self._limit = asyncio.Semaphore(self._concurrency)
        self._loop = loop
        self._closed = False
        self._busy.clear()
        self._sweeper = None

    async def _exchange(
        self, conn: _Connection, data: bytes, loop: asyncio.AbstractEventLoop
    ) -> _Response:
        stale_risk = conn.used and loop.time() - conn.idle_since > _STALE_AFTER
        conn.used = True
        waiter = conn.request(data, loop)
        if self._read_timeout is not None:
            # One coarse sweeper for all connections instead of a timer per request: timers
            # cost a heap push and a cancel each, several percent of the hot path.
            conn.deadline = loop.time() + self._read_timeout
            self._busy.add(conn)
            if self._sweeper is None:
                self._sweeper = loop.call_later(self._sweep_every, self._sweep, loop)
        try:
            response = await waiter
        except _Failure as exc:
            self._forget(conn)
            if stale_risk and exc.args[0] == "unanswered":
                raise _Stale from None
            raise _as_httpx(exc) from None
        except BaseException:
            self._forget(conn)
            conn.abort()
            raise
        finally:
            self._busy.discard(conn)
        if response.keep_alive and not conn.closed and not self._closed:
            conn.idle_since = loop.time()
            self._idle.append(conn)
        else:
            self._forget(conn)
        return response

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for conn in [c for c in self._busy if c.deadline <= now]:
            self._busy.discard(conn)
            _expire(conn)
        self._sweeper = (
            loop.call_later(self._sweep_every, self._sweep, loop) if self._busy else None
        )

    def _checkout(self) -> _Connection | None:
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
            self._forget(conn)
        return None

    def _forget(self, conn: _Connection) -> None:
        self._all.discard(conn)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    _Connection,
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                ),
                self._connect_timeout,
            )
        except asyncio.TimeoutError:
            raise httpx.ConnectTimeout("timed out connecting to the edge") from None
        except ssl.SSLError as exc:
            raise httpx.ConnectError(f"TLS handshake failed: {exc}") from exc
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        self._all.add(conn)
        return conn

    # -- observing and errors (slow paths only) ------------------------------------------------

    def _httpx_request(self, user_uid: str, body: bytes) -> httpx.Request:
        headers = dict(self._headers)
        headers.pop("Host")
        headers["x-cs-personalize-user-uid"] = user_uid
        return httpx.Request("PATCH", self._url, headers=headers, content=body)

    def _observe(
        self,
        user_uid: str,
        body: bytes,
        response: _Response | None,
        error: BaseException | None,
        started_at: float,
        duration: float,
        attempt: int,
        will_retry: bool,
    ) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "PATCH %s -> %s in %.1f ms (attempt %d%s)",
                self._url,
                response.status if response is not None else type(error).__name__,
                duration * 1000,
                attempt,
                ", will retry" if will_retry else "",
            )
        owner = self._client._hook_owner
        if not owner._hooks:
            return
        request_headers = dict(self._headers)
        request_headers["x-cs-personalize-user-uid"] = user_uid
        request_headers["Content-Length"] = str(len(body))
        exchange = Exchange(
            api="edge",
            method="PATCH",
            url=self._url,
            request_headers=redact_headers(request_headers),
            request_body=_body_text(body, self._max_body),
            status=response.status if response is not None else None,
            response_headers=redact_headers(dict(response.headers)) if response else {},
            response_body=_body_text(response.body, self._max_body) if response else None,
            started_at=started_at,
            duration=duration,
            attempt=attempt,
            user_uid=user_uid,
            error=describe_exception(error) if error is not None else None,
            will_retry=will_retry,
        )
        owner._dispatch(exchange)


def _expire(conn: _Connection) -> None:
    waiter, conn._waiter = conn._waiter, None
    if waiter is not None and not waiter.done():
        waiter.set_exception(_Failure("timeout", "no answer within the read timeout"))
    conn.abort()


def _as_httpx(exc: _Failure) -> httpx.TransportError:
    kind, message = exc.args
    if kind == "timeout":
        return httpx.ReadTimeout(message)
    if kind == "protocol":
        return httpx.RemoteProtocolError(message)
    return httpx.ReadError(message)
