"""A lean HTTP/1.1 keep-alive client on ``asyncio.Protocol`` for the Edge fan-out.

Owns: :class:`FastEdgeSender`, which sends ``PATCH /user-attributes`` requests over a pool of
persistent connections to the edge host, and the raw exchange records it hands to the client's
observers. It exists because the sync engine's hot path is nothing but one small PATCH per user,
and httpx's general client layer costs far more CPU per request than the HTTP itself (see
``docs/performance.md``).

Answers are parsed by a maintained HTTP parser, never by hand: ``httptools`` (llhttp, the parser
uvicorn and Node.js use) when it is installed (``pip install contentstack-personalize[fast]``),
else ``h11`` (which httpx itself depends on, so it is always there).

It keeps every promise the httpx path makes: the client's base URL, headers, timeouts, TLS
settings (``verify``: on by default, the same certificate store httpx uses), retry policy (the
one core in ``_http.py``), exchange hooks with redaction, DEBUG logs and typed errors. It works
on any asyncio event loop (uvloop included). It only speaks to the edge directly: ``make_sender``
never picks it when the client has a custom transport or ``http_client``, or when a proxy
applies (the same rule httpx uses, see ``proxy_for``).

Network behaviour, each a deliberate choice:

- **Address fallback (Happy Eyeballs, RFC 8305):** every address the host resolves to is tried,
  families interleaved, a new attempt starting every 250 ms while earlier ones are still
  pending; the first to connect wins. A dead CDN node or a broken IPv6 path costs 250 ms, not a
  timeout.
- **Stale connections:** an idle connection is checked before reuse (readable while idle means
  the server closed it or is out of step: it is dropped). A request on a reused connection that
  gets no byte of answer is resent once on a new connection without counting as an attempt.
- **Timeouts:** the connect timeout covers resolving, connecting and the TLS handshake; the read
  timeout is a deadline for the whole answer, so a server trickling bytes cannot hold a request
  forever.
- **Connection-level failures** (refused, unresolvable host, TLS) are ``APIConnectionError``
  naming the URL and the cause; the retry core gives a refused connection or an unresolvable
  host only two quick attempts, and a failed certificate check none (see ``RetryPolicy``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import select
import socket
import ssl
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal, cast

import httpx

from .._http import (
    Attempt,
    Exchange,
    _body_text,
    asend_with_retries,
    check_header,
    describe_exception,
    redact_headers,
    status_error,
    transport_error,
)
from ..errors import ConfigurationError, PersonalizeError
from ._sending import SendOutcome

if TYPE_CHECKING:
    from ..client import AsyncPersonalizeClient, PersonalizeClient

__all__ = ["FastEdgeSender", "ParserKind", "available_parsers"]

logger = logging.getLogger("contentstack_personalize.http")

ParserKind = Literal["auto", "httptools", "h11"]

#: How the sender waits between attempts (tests replace it to see the delays without waiting).
_sleep = asyncio.sleep

#: RFC 8305's recommended "Connection Attempt Delay".
_HAPPY_EYEBALLS_DELAY = 0.25

#: How long the edge host's resolved addresses serve new connections (aiohttp's default too).
_DNS_TTL = 10.0

#: The largest answer head (status line and headers) accepted, however it arrives.
_MAX_HEAD = 64 * 1024


def available_parsers() -> list[str]:
    """The answer parsers this installation can use, preferred first.

    Example::

        available_parsers()   # ['httptools', 'h11'] with the [fast] extra, else ['h11']
    """
    found = []
    try:
        import httptools  # noqa: F401
    except ImportError:
        pass
    else:
        found.append("httptools")
    found.append("h11")
    return found


class _Failure(Exception):
    """A transport failure inside the protocol, turned into an httpx exception by its kind so
    that the retry core and ``transport_error`` treat it exactly like the httpx path."""


class _Stale(Exception):
    """A reused keep-alive connection turned out closed before any answer byte arrived."""


class _Response:
    __slots__ = ("body", "keep_alive", "raw_headers", "status")

    def __init__(
        self, status: int, raw_headers: list[tuple[bytes, bytes]], body: bytes, keep_alive: bool
    ) -> None:
        self.status = status
        self.raw_headers = raw_headers
        self.body = body
        self.keep_alive = keep_alive

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self.raw_headers]

    def header(self, name: str) -> str | None:
        wanted = name.encode("latin-1")
        for key, value in self.raw_headers:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None


# ---------------------------------------------------------------------------------------------
# Answer readers: the same small interface over httptools and h11
# ---------------------------------------------------------------------------------------------


class _HttptoolsReader:
    """Feeds answer bytes to llhttp (``httptools``) and hands complete answers to the
    connection. Interim answers (100 Continue, 103 Early Hints) are skipped."""

    __slots__ = ("_body", "_conn", "_delimited", "_done", "_head", "_headers", "_keep", "_parser")

    def __init__(self, conn: _Connection, sender: FastEdgeSender) -> None:
        import httptools

        self._conn = conn
        self._parser = httptools.HttpResponseParser(self)
        self._headers: list[tuple[bytes, bytes]] = []
        self._body = bytearray()
        self._head = 0  # bytes of the current answer's head seen so far
        self._done = False  # the current answer's head is complete
        self._delimited = False  # Content-Length or Transfer-Encoding seen
        self._keep = True

    def start(self, user_uid: str, body: bytes) -> None:
        self._head = 0
        self._done = False

    def feed(self, data: bytes) -> None:
        import httptools

        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _Failure):
                raise cause from None
            raise _Failure("protocol", f"malformed answer: {cause or exc}") from None
        except httptools.HttpParserUpgrade:
            raise _Failure("protocol", "the server switched protocols") from None
        except httptools.HttpParserError as exc:
            raise _Failure("protocol", f"malformed answer: {exc}") from None
        if not self._done:
            self._head += len(data)
            if self._head > _MAX_HEAD:
                raise _Failure("protocol", f"answer head larger than {_MAX_HEAD} bytes")

    def feed_eof(self) -> None:
        """The connection ended: an answer delimited by the end of the connection is complete."""
        if self._done and not self._delimited:
            self._conn.finish(
                _Response(self._status(), self._headers, bytes(self._body), keep_alive=False)
            )

    def _status(self) -> int:
        return int(self._parser.get_status_code())

    # llhttp callbacks
    def on_message_begin(self) -> None:
        if self._conn._waiter is None:
            raise _Failure("protocol", "the server sent an answer nobody asked for")
        self._headers = []
        self._body = bytearray()
        self._delimited = False
        self._done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head += len(name) + len(value) + 4
        if self._head > _MAX_HEAD:
            raise _Failure("protocol", f"answer head larger than {_MAX_HEAD} bytes")
        self._headers.append((name, value))
        low = name.lower()
        if low == b"content-length" or low == b"transfer-encoding":
            self._delimited = True

    def on_headers_complete(self) -> None:
        self._done = True
        self._keep = bool(self._parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        status = self._status()
        if status < 200:
            self._done = False  # an interim answer: the final one follows
            self._head = 0
            return
        self._conn.finish(_Response(status, self._headers, bytes(self._body), self._keep))


class _H11Reader:
    """The same over ``h11`` (pure Python, always installed with httpx)."""

    __slots__ = ("_body", "_conn", "_h11", "_headers", "_sender", "_status")

    def __init__(self, conn: _Connection, sender: FastEdgeSender) -> None:
        import h11

        self._conn = conn
        self._sender = sender
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD)
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._body = bytearray()

    def start(self, user_uid: str, body: bytes) -> None:
        """Tell h11 about the request (it tracks both sides of the exchange); the bytes on the
        wire are the sender's own, identical for both parsers."""
        import h11

        conn = self._h11
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        headers = [
            *self._sender._h11_headers,
            (b"x-cs-personalize-user-uid", user_uid.encode("ascii")),
            (b"content-length", str(len(body)).encode("ascii")),
        ]
        conn.send(h11.Request(method=b"PATCH", target=self._sender._path, headers=headers))
        conn.send(h11.Data(data=body))
        conn.send(h11.EndOfMessage())
        self._status = 0
        self._headers = []
        self._body = bytearray()

    def feed(self, data: bytes) -> None:
        self._h11.receive_data(data)
        self._drain()

    def feed_eof(self) -> None:
        self._h11.receive_data(b"")
        self._drain()

    def _drain(self) -> None:
        import h11

        conn = self._h11
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise _Failure("protocol", f"malformed answer: {exc}") from None
            if event is h11.NEED_DATA or event is h11.PAUSED:
                if event is h11.PAUSED and self._conn._waiter is not None:
                    raise _Failure("protocol", "the server sent an answer nobody asked for")
                return
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                self._status = event.status_code
                self._headers = list(event.headers.raw_items())
                # h11 caps only a head that arrives in pieces; the cap holds however it came.
                if sum(len(k) + len(v) + 4 for k, v in self._headers) > _MAX_HEAD:
                    raise _Failure("protocol", f"answer head larger than {_MAX_HEAD} bytes")
            elif isinstance(event, h11.Data):
                self._body += event.data
            elif isinstance(event, h11.EndOfMessage):
                keep = conn.our_state is h11.DONE and conn.their_state is h11.DONE
                if keep and conn.trailing_data[0]:
                    keep = False  # bytes after the answer: out of step, never reuse
                self._conn.finish(_Response(self._status, self._headers, bytes(self._body), keep))
                return
            else:  # ConnectionClosed: connection_lost settles the waiter
                return


_Reader = _HttptoolsReader | _H11Reader


class _Connection(asyncio.Protocol):
    """One persistent connection; one request in flight at a time (no pipelining)."""

    __slots__ = (
        "_readable",
        "_reader",
        "_waiter",
        "answered",
        "closed",
        "deadline",
        "sock",
        "transport",
    )

    def __init__(self, reader: Callable[[_Connection], _Reader], sock: socket.socket) -> None:
        self.transport: asyncio.Transport | None = None
        self.sock = sock
        self._readable = _Readability(sock)
        self.closed = False
        self.answered = False
        self.deadline = 0.0
        self._waiter: asyncio.Future[_Response] | None = None
        self._reader = reader(self)

    # -- asyncio callbacks ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if not self.answered:
            self._fail(_Failure("unanswered", "the server closed the connection without answering"))
            return
        with contextlib.suppress(_Failure):  # an incomplete answer: said just below
            self._reader.feed_eof()
        if self._waiter is not None:  # not completed by the end of the connection
            self._fail(_Failure("read", "the connection closed mid-answer"))

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            # Bytes nobody asked for: the connection is out of step; never reuse it.
            self.abort()
            return
        self.answered = True
        try:
            self._reader.feed(data)
        except _Failure as exc:
            self._fail(exc)
            self.abort()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost settles the waiter

    # -- requests ------------------------------------------------------------------------------

    def request(
        self, data: bytes, user_uid: str, body: bytes, loop: asyncio.AbstractEventLoop
    ) -> asyncio.Future[_Response]:
        assert self.transport is not None
        waiter: asyncio.Future[_Response] = loop.create_future()
        self._reader.start(user_uid, body)
        self._waiter = waiter
        self.answered = False
        self.transport.write(data)
        return waiter

    def finish(self, response: _Response) -> None:
        waiter, self._waiter = self._waiter, None
        if not response.keep_alive:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def _fail(self, failure: _Failure) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(failure)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def idle_and_intact(self) -> bool:
        """Whether the idle connection can take a request: nothing (no close, no stray bytes)
        is waiting to be read on it. The same check httpx makes before reusing a connection."""
        if self.closed:
            return False
        try:
            return not self._readable()
        except (OSError, ValueError):
            return False

    def discard(self) -> None:
        """Close the connection, even when its event loop is already closed (after
        ``Sync.run``): then nobody else will close the socket, so it is closed here."""
        self.closed = True
        if self.transport is not None:
            try:
                self.transport.abort()
                return
            except RuntimeError:  # "Event loop is closed"
                pass
        with contextlib.suppress(OSError):
            self.sock.close()


class _Readability:
    """Tells whether a socket has something to read, without reading: ``poll`` with one
    registration kept per connection (``select`` where there is no ``poll``)."""

    __slots__ = ("_poller", "_sock")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._poller: Any = None
        if hasattr(select, "poll"):
            self._poller = select.poll()
            self._poller.register(sock.fileno(), select.POLLIN | select.POLLPRI)

    def __call__(self) -> bool:
        if self._sock.fileno() < 0:
            return True  # closed under us: nothing to reuse
        if self._poller is not None:
            return bool(self._poller.poll(0))
        return bool(select.select([self._sock], [], [], 0)[0])  # pragma: no cover - Windows


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


def _literal_address(host: str, port: int) -> list[tuple[int, Any]] | None:
    """``[(family, sockaddr)]`` when ``host`` is an IP address, else ``None``."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.version == 6:
        return [(socket.AF_INET6, (host, port, 0, 0))]
    return [(socket.AF_INET, (host, port))]


def _interleave(infos: Iterable[Any]) -> list[tuple[int, Any]]:
    """Addresses in resolver order, families alternating (RFC 8305 section 4)."""
    by_family: dict[int, list[Any]] = {}
    for family, _type, _proto, _name, sockaddr in infos:
        by_family.setdefault(family, []).append(sockaddr)
    queues = [[(family, addr) for addr in addrs] for family, addrs in by_family.items()]
    out: list[tuple[int, Any]] = []
    while any(queues):
        for queue in queues:
            if queue:
                out.append(queue.pop(0))
    return out


async def _connect_one(
    loop: asyncio.AbstractEventLoop, family: int, sockaddr: Any
) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await loop.sock_connect(sock, sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


async def _happy_eyeballs(
    loop: asyncio.AbstractEventLoop, addresses: list[tuple[int, Any]], delay: float
) -> tuple[socket.socket | None, list[OSError]]:
    """Connect to the first address that answers, starting one attempt every ``delay`` seconds
    (or at once when the previous ones all failed)."""
    errors: list[OSError] = []
    pending: set[asyncio.Task[socket.socket]] = set()
    todo = list(addresses)
    try:
        while todo or pending:
            if todo:
                family, sockaddr = todo.pop(0)
                pending.add(loop.create_task(_connect_one(loop, family, sockaddr)))
            done, pending = await asyncio.wait(
                pending,
                timeout=delay if todo else None,
                return_when=asyncio.FIRST_COMPLETED,
            )
            winner: socket.socket | None = None
            for task in done:
                exc = task.exception()
                if exc is None:
                    if winner is None:
                        winner = task.result()
                    else:
                        task.result().close()
                elif isinstance(exc, OSError):
                    errors.append(exc)
                else:
                    raise exc
            if winner is not None:
                return winner, errors
        return None, errors
    finally:
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(BaseException):
                sock = await task
                sock.close()


class FastEdgeSender:
    """Sends ``PATCH /user-attributes`` over up to ``concurrency`` persistent HTTP/1.1
    connections, with ``client``'s URL, headers, timeouts, TLS, retry policy and hooks.

    ``parser``: ``"auto"`` (httptools when installed, else h11), ``"httptools"`` or ``"h11"``.

    ``Sync`` picks it automatically when it can (see ``make_sender``); to force it::

        sender = FastEdgeSender(client, concurrency=64)
        result = Sync(client, match_on="id", mapping={...}, sender=sender,
                      concurrency=64).run(rows)
        asyncio.run(sender.aclose())
    """

    def __init__(
        self,
        client: PersonalizeClient | AsyncPersonalizeClient,
        *,
        concurrency: int,
        parser: ParserKind = "auto",
    ) -> None:
        settings = client._sender_settings()
        config = settings.config
        url = httpx.URL(config.edge_url)
        if url.scheme not in ("http", "https"):
            raise PersonalizeError(
                f"the edge URL must be http(s), got {config.edge_url!r}; fix the client's "
                "edge_url= (or pass sender=make_sender(client, concurrency=..., kind='httpx'))"
            )
        parsers = available_parsers()
        if parser == "auto":
            parser = cast(ParserKind, parsers[0])
        elif parser not in parsers:
            raise ConfigurationError(
                f"the {parser!r} parser is not installed; install "
                "contentstack-personalize[fast] or use parser='auto'"
            )
        self.parser: str = parser
        self._reader_class: type[_HttptoolsReader] | type[_H11Reader] = (
            _HttptoolsReader if parser == "httptools" else _H11Reader
        )
        self._hooks = settings.hooks
        self._host = url.host
        self._tls = url.scheme == "https"
        self._port = url.port or (443 if self._tls else 80)
        self._ssl: ssl.SSLContext | None = _ssl_context(config.verify) if self._tls else None
        self._url = config.edge_url + "/user-attributes"
        self._connect_timeout, self._read_timeout = _timeouts(config.timeout)
        self._policy = config.retry
        self._max_body = config.max_body_bytes
        self._path = (url.raw_path.decode("ascii").rstrip("/") or "") + "/user-attributes"
        host_header = url.host if url.port is None else f"{url.host}:{url.port}"
        if ":" in url.host:  # IPv6 literal
            host_header = f"[{url.host}]" + (f":{url.port}" if url.port else "")
        headers: dict[str, str] = {}
        custom_host = None
        for name, value in settings.base_headers.items():
            check_header(name, value)  # never write a line break or a bad name raw
            if name.lower() == "host":
                custom_host = value  # a configured Host header wins, as with httpx
            else:
                headers[name] = value
        headers["x-project-uid"] = config.require_project()
        headers["Content-Type"] = "application/json"
        self._headers = {"Host": custom_host or host_header, **headers}
        self._h11_headers = [
            (k.encode("latin-1"), v.encode("latin-1")) for k, v in self._headers.items()
        ]
        lines = [f"PATCH {self._path} HTTP/1.1"] + [f"{k}: {v}" for k, v in self._headers.items()]
        self._prefix = ("\r\n".join(lines) + "\r\nx-cs-personalize-user-uid: ").encode("latin-1")
        self._concurrency = concurrency
        self._idle: deque[_Connection] = deque()
        self._limit = asyncio.Semaphore(concurrency)
        self._all: set[_Connection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._busy: set[_Connection] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._literal = _literal_address(self._host, self._port)
        self._resolved: tuple[float, list[tuple[int, Any]]] | None = None
        self._resolving: asyncio.Task[list[tuple[int, Any]]] | None = None
        read = self._read_timeout or 1.0
        self._sweep_every = max(0.01, min(0.5, read / 10))

    def __repr__(self) -> str:
        return f"FastEdgeSender(url={self._url!r}, parser={self.parser!r})"

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

        async def attempt_once(number: int) -> Attempt:
            try:
                response = await self._attempt(data, user_uid, body)
            except httpx.TransportError as exc:
                return Attempt(error=exc)
            status = response.status
            if 200 <= status < 300:
                return Attempt(response, status=status)
            return Attempt(response, status=status, retry_after=response.header("retry-after"))

        observe = bool(self._hooks) or logger.isEnabledFor(logging.DEBUG)
        last, attempts = await asend_with_retries(
            self._policy,
            attempt_once,
            observe=functools.partial(self._observe, user_uid, body) if observe else None,
            sleep=_sleep,
        )
        if last.ok:
            return SendOutcome(True, attempts)
        request = self._httpx_request(user_uid, body)
        error = last.error
        if error is not None:
            assert isinstance(error, httpx.TransportError)
            failure: PersonalizeError = transport_error(error, request, attempts)
            failure.__cause__ = error
        else:
            response: _Response = last.response
            failure = status_error(
                httpx.Response(
                    response.status,
                    headers=response.headers,
                    content=response.body,
                    request=request,
                ),
                attempts,
            )
        return SendOutcome(False, attempts, failure)

    async def aclose(self) -> None:
        """Close every connection this sender opened, also after ``Sync.run`` (whose event
        loop is closed by then)."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._busy.clear()
        self._discard_all()

    def _discard_all(self) -> None:
        for conn in list(self._all):
            conn.discard()
        self._all.clear()
        self._idle.clear()

    # -- one attempt ---------------------------------------------------------------------------

    async def _attempt(self, data: bytes, user_uid: str, body: bytes) -> _Response:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._rebind(loop)
        async with self._limit:
            conn = self._checkout()
            if conn is not None:
                try:
                    return await self._exchange(conn, data, user_uid, body, loop, reused=True)
                except _Stale:
                    # No byte of answer on a reused connection: the server had closed it (a
                    # restart, a request cap). Resent once on a new one; not an attempt.
                    logger.debug(
                        "PATCH %s: reused connection closed unanswered; resending", self._url
                    )
            conn = await self._connect(loop)
            return await self._exchange(conn, data, user_uid, body, loop, reused=False)

    def _rebind(self, loop: asyncio.AbstractEventLoop) -> None:
        """A new event loop (each ``Sync.run`` has its own): connections of the old one are
        unusable there, and are closed."""
        self._discard_all()
        self._limit = asyncio.Semaphore(self._concurrency)
        self._loop = loop
        self._closed = False
        self._busy.clear()
        self._sweeper = None

    async def _exchange(
        self,
        conn: _Connection,
        data: bytes,
        user_uid: str,
        body: bytes,
        loop: asyncio.AbstractEventLoop,
        *,
        reused: bool,
    ) -> _Response:
        waiter = conn.request(data, user_uid, body, loop)
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
            conn.abort()
            if reused and exc.args[0] == "unanswered":
                raise _Stale from None
            raise _as_httpx(exc) from None
        except BaseException:
            self._forget(conn)
            conn.abort()
            raise
        finally:
            self._busy.discard(conn)
        if response.keep_alive and not conn.closed and not self._closed:
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
            if conn.idle_and_intact():
                return conn
            conn.abort()
            self._forget(conn)
        return None

    def _forget(self, conn: _Connection) -> None:
        self._all.discard(conn)

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        where = f"{self._host}:{self._port}"
        try:
            conn = await asyncio.wait_for(self._open(loop), self._connect_timeout)
        except asyncio.TimeoutError:
            raise httpx.ConnectTimeout(
                f"timed out connecting to {where} after {self._connect_timeout:g} s"
            ) from None
        except socket.gaierror as exc:
            raise httpx.ConnectError(
                f"could not resolve {self._host!r} ({exc.strerror or exc}); check the edge URL "
                "and DNS"
            ) from exc
        except ssl.SSLError as exc:
            raise httpx.ConnectError(f"TLS handshake with {where} failed: {exc}") from exc
        except OSError as exc:
            raise httpx.ConnectError(_connect_failure_text(where, exc)) from exc
        self._all.add(conn)
        return conn

    async def _addresses(self, loop: asyncio.AbstractEventLoop) -> list[tuple[int, Any]]:
        """The edge host's addresses: an IP literal as it is; a name resolved once for every
        connection opened within ``_DNS_TTL`` seconds (hundreds of connections opening at once
        make one lookup, not hundreds queued on the resolver's threads). Failures are not
        remembered."""
        if self._literal is not None:
            return self._literal
        cached = self._resolved
        if cached is not None and loop.time() - cached[0] < _DNS_TTL:
            return cached[1]
        pending = self._resolving
        if pending is None or pending.get_loop() is not loop:
            pending = self._resolving = loop.create_task(self._resolve(loop))
        try:
            return await asyncio.shield(pending)
        finally:
            if pending.done() and self._resolving is pending:
                self._resolving = None

    async def _resolve(self, loop: asyncio.AbstractEventLoop) -> list[tuple[int, Any]]:
        infos = await loop.getaddrinfo(
            self._host, self._port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
        addresses = _interleave(infos)
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "no addresses")
        self._resolved = (loop.time(), addresses)
        return addresses

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        addresses = await self._addresses(loop)
        sock, errors = await _happy_eyeballs(loop, addresses, _HAPPY_EYEBALLS_DELAY)
        if sock is None:
            raise _combined(errors)
        reader = self._reader_class
        try:
            _, conn = await loop.create_connection(
                lambda: _Connection(lambda c: reader(c, self), sock),
                sock=sock,
                ssl=self._ssl,
                server_hostname=self._host if self._ssl is not None else None,
            )
        except BaseException:
            sock.close()
            raise
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
        attempt: int,
        outcome: Attempt,
        started_at: float,
        duration: float,
        will_retry: bool,
    ) -> None:
        response: _Response | None = outcome.response
        error = outcome.error
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "PATCH %s -> %s in %.1f ms (attempt %d%s)",
                self._url,
                response.status if response is not None else type(error).__name__,
                duration * 1000,
                attempt,
                ", will retry" if will_retry else "",
            )
        if not self._hooks:
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
            response_headers=redact_headers(response.headers) if response else {},
            response_body=_body_text(response.body, self._max_body) if response else None,
            started_at=started_at,
            duration=duration,
            attempt=attempt,
            user_uid=user_uid,
            error=describe_exception(error) if error is not None else None,
            will_retry=will_retry,
        )
        self._hooks(exchange)


def _connect_failure_text(where: str, exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where}: nothing accepts connections there"
    return f"could not connect to {where}: {exc.strerror or exc}"


def _combined(errors: list[OSError]) -> OSError:
    """One error for every address that failed: a refusal if all refused, else the first."""
    if not errors:
        return OSError("no address could be connected to")
    if all(isinstance(e, ConnectionRefusedError) for e in errors):
        return errors[0]
    others = [e for e in errors if not isinstance(e, ConnectionRefusedError)]
    return others[0]


def _expire(conn: _Connection) -> None:
    conn._fail(_Failure("timeout", "no complete answer within the read timeout"))
    conn.abort()


def _as_httpx(exc: _Failure) -> httpx.TransportError:
    kind, message = exc.args
    if kind == "timeout":
        return httpx.ReadTimeout(message)
    if kind == "protocol":
        return httpx.RemoteProtocolError(message)
    return httpx.ReadError(message)
