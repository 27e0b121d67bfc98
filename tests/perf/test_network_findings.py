"""Regression tests for what the fast Edge sender got wrong on real networks (issue 14's eight
findings), each against real sockets on loopback and, where the parser matters, with both
parsers (httptools and h11)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from contentstack_personalize import PersonalizeClient, RetryPolicy
from contentstack_personalize.errors import (
    APIConnectionError,
    APITimeoutError,
    ConfigurationError,
)
from contentstack_personalize.sync import Sync, _fast
from contentstack_personalize.sync._fast import FastEdgeSender, available_parsers
from contentstack_personalize.sync._sender import fast_sender_problem, make_sender
from contentstack_personalize.testing import PersonalizeEmulator
from tests.perf.test_fast_sender import OK, PROXY_VARS, Scripted
from tests.sync.conftest import people

PARSERS = available_parsers()


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("CONTENTSTACK_PERSONALIZE_SENDER", raising=False)
    monkeypatch.setattr(urllib.request, "getproxies", lambda: {})


@pytest.fixture(params=PARSERS)
def parser(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def scripted() -> Iterator[list[Scripted]]:
    made: list[Scripted] = []
    yield made
    for srv in made:
        srv.close()


def sender_for(url: str, parser: str = "auto", **kwargs: Any) -> FastEdgeSender:
    kwargs.setdefault("retry", RetryPolicy.disabled())
    client = PersonalizeClient("p" * 24, edge_url=url, read_env=False, **kwargs)
    return FastEdgeSender(client, concurrency=4, parser=parser)  # type: ignore[arg-type]


def free_port() -> int:
    probe = socket.create_server(("127.0.0.1", 0))
    port = int(probe.getsockname()[1])
    probe.close()
    return port


def sync_for(client: PersonalizeClient, **kwargs: Any) -> Sync:
    kwargs.setdefault("concurrency", 4)
    return Sync(client, match_on="user_id", mapping={"plan": "plan", "ltv": "ltv"}, **kwargs)


# ---------------------------------------------------------------------------------------------
# 1. uvloop
# ---------------------------------------------------------------------------------------------


class TestUvloop:
    def test_a_run_on_uvloop_delivers_every_user(self) -> None:
        uvloop = pytest.importorskip("uvloop")
        emulator = PersonalizeEmulator(seed=1)
        with emulator.serve() as server:
            client = PersonalizeClient(
                emulator.project_uid,
                edge_url=server.edge_url,
                management_url=server.management_url,
                management_rate_limit=None,
                read_env=False,
            )
            sync = sync_for(client)
            assert isinstance(make_sender(client, concurrency=4), FastEdgeSender)
            loop = uvloop.new_event_loop()
            try:
                result = loop.run_until_complete(sync.arun(people(20)))
            finally:
                loop.close()
            client.close()
        assert (result.status, result.added, result.rejected) == ("succeeded", 20, 0)
        assert len(emulator.users()) == 20

    def test_the_sender_on_uvloop(self, scripted: list[Scripted], parser: str) -> None:
        uvloop = pytest.importorskip("uvloop")
        srv = Scripted([OK, OK])
        scripted.append(srv)
        sender = sender_for(srv.url, parser)

        async def main() -> list[bool]:
            out = [(await sender.send(f"u{i}", b"{}")).ok for i in range(2)]
            await sender.aclose()
            return out

        loop = uvloop.new_event_loop()
        try:
            assert loop.run_until_complete(main()) == [True, True]
        finally:
            loop.close()
        assert srv.connections == 1


# ---------------------------------------------------------------------------------------------
# 2. Address fallback
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def black_hole() -> Iterator[Callable[[int], None]]:
    """Makes 127.0.0.2:<port> an address whose connects hang (a listener with a full backlog),
    as a dead CDN node or a broken IPv6 path does."""
    made: list[socket.socket] = []

    def make(port: int) -> None:
        listener = socket.socket()
        try:
            listener.bind(("127.0.0.2", port))
        except OSError:
            pytest.skip("127.0.0.2 is not usable on this machine")
        listener.listen(0)
        made.append(listener)
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.2", port))
            made.append(filler)

    yield make
    for sock in made:
        sock.close()


def test_a_hanging_first_address_falls_back_to_the_next(
    scripted: list[Scripted],
    black_hole: Callable[[int], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    srv = Scripted([OK, OK, OK])
    scripted.append(srv)
    black_hole(srv.port)
    real = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "edge.test":
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", int(port))),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", int(port))),
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    sender = sender_for(f"http://edge.test:{srv.port}/edge", timeout=3.0)

    async def main() -> list[Any]:
        # One at a time, so every user needs a connection of its own after a close.
        out = [await sender.send(f"u{i}", b"{}") for i in range(3)]
        await sender.aclose()
        return out

    outcomes = asyncio.run(main())
    assert [o.ok for o in outcomes] == [True, True, True], outcomes[0].error
    assert [o.attempts for o in outcomes] == [1, 1, 1]


# ---------------------------------------------------------------------------------------------
# 3. Stale connections
# ---------------------------------------------------------------------------------------------


class TestStaleConnections:
    async def test_answer_then_close_without_connection_close(
        self, scripted: list[Scripted], parser: str
    ) -> None:
        # RFC 9112 allows closing after any answer; graceful restarts and per-connection
        # request caps do it. Retries off: every user must still get through, first time.
        srv = Scripted([OK + b"<close>"] * 10)
        scripted.append(srv)
        sender = sender_for(srv.url, parser)
        outcomes = [await sender.send(f"u{i}", b"{}") for i in range(10)]
        await sender.aclose()
        assert [o.ok for o in outcomes] == [True] * 10
        assert [o.attempts for o in outcomes] == [1] * 10
        assert len(srv.requests) == 10

    async def test_closed_unanswered_on_reuse_is_resent_once_at_once(
        self, scripted: list[Scripted], parser: str
    ) -> None:
        srv = Scripted([OK, b"CLOSE", OK, b"CLOSE", OK])
        scripted.append(srv)
        sender = sender_for(srv.url, parser)
        outcomes = [await sender.send(f"u{i}", b"{}") for i in range(3)]
        await sender.aclose()
        assert [(o.ok, o.attempts) for o in outcomes] == [(True, 1)] * 3

    async def test_a_fresh_connection_closed_unanswered_is_a_failed_attempt(
        self, scripted: list[Scripted], parser: str
    ) -> None:
        srv = Scripted([b"CLOSE"])
        scripted.append(srv)
        sender = sender_for(srv.url, parser)
        outcome = await sender.send("u1", b"{}")
        await sender.aclose()
        assert isinstance(outcome.error, APIConnectionError)
        assert "without answering" in str(outcome.error)


# ---------------------------------------------------------------------------------------------
# 4. Proxies: the same rule as httpx, operating-system settings included
# ---------------------------------------------------------------------------------------------


class TestProxies:
    def test_a_system_proxy_setting_keeps_httpx(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # What urllib reads from macOS System Settings or the Windows registry when no proxy
        # variable is set; httpx honours it, so the fast sender must step aside.
        monkeypatch.setattr(
            urllib.request, "getproxies", lambda: {"https": "http://proxy.corp.test:3128"}
        )
        client = PersonalizeClient("p" * 24, read_env=False)
        assert not isinstance(make_sender(client, concurrency=4), FastEdgeSender)
        assert "proxy" in (fast_sender_problem(client) or "")

    def test_no_proxy_lets_the_fast_sender_through(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(
            urllib.request,
            "getproxies",
            lambda: {"https": "http://proxy.corp.test:3128", "no": "contentstack.com"},
        )
        client = PersonalizeClient("p" * 24, read_env=False)
        assert isinstance(make_sender(client, concurrency=4), FastEdgeSender)


# ---------------------------------------------------------------------------------------------
# 5. aclose() after Sync.run
# ---------------------------------------------------------------------------------------------


def test_aclose_after_sync_run_closes_the_sockets(scripted: list[Scripted]) -> None:
    srv = Scripted([OK] * 10)
    scripted.append(srv)
    client = PersonalizeClient("p" * 24, edge_url=srv.url, read_env=False)
    sender = FastEdgeSender(client, concurrency=4)
    result = sync_for(client, sender=sender).run(people(10))
    assert result.added == 10
    assert srv.open_connections() > 0  # the run's loop is closed; its connections are not
    asyncio.run(sender.aclose())  # must not raise "Event loop is closed"
    assert srv.wait_all_closed(timeout=5.0), "the server still sees open connections"
    client.close()


# ---------------------------------------------------------------------------------------------
# 6. Header injection and the Host header
# ---------------------------------------------------------------------------------------------


class TestHeaders:
    @pytest.mark.parametrize(
        "value", ["abc\r\nX-Injected: yes", "abc\nX-Injected: yes", "abc\x00", "caf\u00e9"]
    )
    def test_a_header_value_with_a_line_break_is_refused(self, value: str) -> None:
        with pytest.raises(ConfigurationError, match="X-Trace") as caught:
            PersonalizeClient("p" * 24, headers={"X-Trace": value}, read_env=False)
        assert "X-Injected" not in str(caught.value)  # the value is never echoed

    def test_a_bad_header_name_is_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="not a valid HTTP token"):
            PersonalizeClient("p" * 24, headers={"X Trace": "1"}, read_env=False)

    async def test_a_custom_host_header_is_sent(
        self, scripted: list[Scripted], parser: str
    ) -> None:
        srv = Scripted([OK])
        scripted.append(srv)
        sender = sender_for(srv.url, parser, headers={"Host": "edge.example.test"})
        assert (await sender.send("u1", b"{}")).ok
        await sender.aclose()
        head = srv.requests[0].split(b"\r\n\r\n")[0].decode()
        hosts = [ln for ln in head.split("\r\n") if ln.lower().startswith("host:")]
        assert hosts == ["Host: edge.example.test"]

    async def test_a_configured_user_agent_replaces_the_default(
        self, scripted: list[Scripted]
    ) -> None:
        srv = Scripted([OK])
        scripted.append(srv)
        sender = sender_for(srv.url, headers={"user-agent": "my-app/1"})
        assert (await sender.send("u1", b"{}")).ok
        await sender.aclose()
        head = srv.requests[0].split(b"\r\n\r\n")[0].decode().lower()
        assert head.count("\r\nuser-agent:") == 1 and "user-agent: my-app/1" in head


# ---------------------------------------------------------------------------------------------
# 7. Parsing
# ---------------------------------------------------------------------------------------------


class TestParsing:
    @pytest.mark.parametrize(
        "answer",
        [
            b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
            b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\nContent-Length: 2\r\n\r\nok",
        ],
        ids=["bare-lf", "space-before-colon", "plus-sign", "two-lengths", "huge-head"],
    )
    async def test_odd_answers_settle_at_once(
        self, scripted: list[Scripted], parser: str, answer: bytes
    ) -> None:
        # Never a hang until the read timeout reported as a misleading ReadTimeout: a parser
        # either reads the answer (h11 accepts bare LF line ends) or says it is malformed.
        srv = Scripted([answer + b"<close>"])
        scripted.append(srv)
        sender = sender_for(srv.url, parser, timeout=30.0)
        outcome = await sender.send("u1", b"{}")
        await sender.aclose()
        assert not isinstance(outcome.error, APITimeoutError)
        if not outcome.ok:
            assert isinstance(outcome.error, APIConnectionError)
            assert "RemoteProtocolError" in str(outcome.error)

    @pytest.mark.parametrize(
        "answer",
        [
            b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\nContent-Length: 2\r\n\r\nok",
        ],
        ids=["space-before-colon", "plus-sign", "huge-head"],
    )
    async def test_malformed_answers_are_refused(
        self, scripted: list[Scripted], parser: str, answer: bytes
    ) -> None:
        srv = Scripted([answer + b"<close>"])
        scripted.append(srv)
        sender = sender_for(srv.url, parser, timeout=30.0)
        outcome = await sender.send("u1", b"{}")
        await sender.aclose()
        assert isinstance(outcome.error, APIConnectionError)
        assert "RemoteProtocolError" in str(outcome.error)


# ---------------------------------------------------------------------------------------------
# 8. Failing fast on connection-level failures
# ---------------------------------------------------------------------------------------------


class TestConnectionFailures:
    @pytest.fixture
    def waits(self, monkeypatch: pytest.MonkeyPatch) -> list[float]:
        seen: list[float] = []

        async def fake_sleep(seconds: float) -> None:
            seen.append(seconds)

        monkeypatch.setattr(_fast, "_sleep", fake_sleep)
        return seen

    async def test_a_refused_connection_gets_two_quick_attempts(self, waits: list[float]) -> None:
        url = f"http://127.0.0.1:{free_port()}/edge"
        sender = sender_for(url, retry=RetryPolicy())  # the default: 5 attempts
        outcome = await sender.send("u1", b"{}")
        await sender.aclose()
        error = outcome.error
        assert isinstance(error, APIConnectionError)
        assert outcome.attempts == 2 and all(w <= 0.25 for w in waits) and len(waits) == 1
        assert f"{url}/user-attributes" in str(error)
        assert "connection refused" in str(error)

    async def test_an_unresolvable_host_names_the_host(
        self, waits: list[float], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def no_such_host(*args: Any, **kwargs: Any) -> Any:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
        sender = sender_for("https://edge.nowhere.test/v1", retry=RetryPolicy())
        outcome = await sender.send("u1", b"{}")
        await sender.aclose()
        assert isinstance(outcome.error, APIConnectionError) and outcome.attempts == 2
        text = str(outcome.error)
        assert "https://edge.nowhere.test/v1/user-attributes" in text
        assert "could not resolve 'edge.nowhere.test'" in text

    def test_the_management_api_follows_the_same_rule(self) -> None:
        port = free_port()
        client = PersonalizeClient(
            "p" * 24,
            auth="t" * 30,
            management_url=f"http://127.0.0.1:{port}",
            retry=RetryPolicy(sleep=False),
            management_rate_limit=None,
            read_env=False,
        )
        with pytest.raises(APIConnectionError) as caught:
            client.attributes.list()
        client.close()
        assert caught.value.attempts == 2
        assert f"127.0.0.1:{port}" in str(caught.value)


# ---------------------------------------------------------------------------------------------
# Interim answers and bodies, with each parser
# ---------------------------------------------------------------------------------------------


class TestAnswers:
    async def test_interim_answers_chunked_and_close_delimited(
        self, scripted: list[Scripted], parser: str
    ) -> None:
        srv = Scripted(
            [
                b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
                b"HTTP/1.1 100 Continue\r\n\r\n" + OK,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nUser \r\n0\r\n\r\n",
                b"HTTP/1.1 200 OK\r\n\r\nread until the end<close>",
            ]
        )
        scripted.append(srv)
        sender = sender_for(srv.url, parser)
        outcomes = [await sender.send(f"u{i}", b"{}") for i in range(3)]
        await sender.aclose()
        assert [(o.ok, o.attempts) for o in outcomes] == [(True, 1)] * 3
        assert srv.connections == 1  # interim and chunked answers kept the connection reusable


@pytest.mark.parametrize("kind", ["fast", "httpx"])
def test_a_sync_can_tell_a_dead_endpoint_from_a_bad_request(kind: str) -> None:
    """What the engine's early abort needs: ``connect_failure(outcome.error)`` says "refused"
    for the errors of either sender."""
    from contentstack_personalize._http import connect_failure

    url = f"http://127.0.0.1:{free_port()}/edge"
    client = PersonalizeClient(
        "p" * 24, edge_url=url, read_env=False, retry=RetryPolicy(sleep=False)
    )
    sender = make_sender(client, concurrency=2, kind=kind)  # type: ignore[arg-type]

    async def main() -> Any:
        try:
            return await sender.send("u1", b"{}")
        finally:
            await sender.aclose()

    outcome = asyncio.run(main())
    client.close()
    assert isinstance(outcome.error, APIConnectionError) and outcome.attempts == 2
    assert connect_failure(outcome.error) == "refused"
    assert url in str(outcome.error)


def test_many_connections_opening_at_once_resolve_the_host_once(
    scripted: list[Scripted], monkeypatch: pytest.MonkeyPatch
) -> None:
    srv = Scripted([OK] * 64)
    scripted.append(srv)
    real = socket.getaddrinfo
    lookups: list[str] = []

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "edge.test":
            lookups.append(host)
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    client = PersonalizeClient("p" * 24, edge_url=f"http://edge.test:{srv.port}/e", read_env=False)
    sender = FastEdgeSender(client, concurrency=32)

    async def main() -> list[bool]:
        try:
            return [
                o.ok
                for o in await asyncio.gather(*(sender.send(f"u{i}", b"{}") for i in range(64)))
            ]
        finally:
            await sender.aclose()

    assert asyncio.run(main()) == [True] * 64
    assert srv.connections == 32 and lookups == ["edge.test"]
    client.close()
