"""The fast Edge sender against real HTTP servers on loopback: uvicorn (h11 and httptools),
hypercorn, an aiohttp server and nginx, plain and over TLS, on the default event loop and on
uvloop. What a user relies on: every user delivered exactly once, and every odd answer a real
server can give (redirects, chunked and gzip bodies, a reset mid-answer, a slow trickle) ending
in the right outcome, quickly."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from contentstack_personalize import PersonalizeClient, RetryPolicy
from contentstack_personalize.errors import APIConnectionError, APITimeoutError, BadRequestError
from contentstack_personalize.sync import MemoryState, Sync
from contentstack_personalize.sync._fast import FastEdgeSender, available_parsers
from contentstack_personalize.sync._sender import make_sender
from tests.conformance.conftest import KINDS, NGINX_KEEPALIVE_REQUESTS, RealServer, Servers

T = TypeVar("T")

SERVERS = [(kind, tls) for kind in KINDS for tls in (False, True)]
SERVER_IDS = [f"{kind}-{'tls' if tls else 'plain'}" for kind, tls in SERVERS]
LOOPS = ["asyncio", "uvloop"]
ASGI_OR_AIOHTTP = ["uvicorn-h11", "uvicorn-httptools", "hypercorn", "aiohttp"]


def run_on(loop_name: str, main: Callable[[], Awaitable[T]]) -> T:
    if loop_name == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def client_for(server: RealServer, prefix: str = "edge", **kwargs: Any) -> PersonalizeClient:
    return PersonalizeClient(
        "p" * 24,
        edge_url=server.url(prefix),
        verify=server.verify(),
        management_rate_limit=None,
        read_env=False,
        **kwargs,
    )


def users(n: int, tag: str) -> list[dict[str, Any]]:
    return [{"user_id": f"{tag}-{i}", "plan": "gold" if i % 2 else "free"} for i in range(n)]


async def send_one(server: RealServer, prefix: str, **kwargs: Any) -> Any:
    kwargs.setdefault("retry", RetryPolicy.disabled())
    with client_for(server, prefix, **kwargs) as client:
        sender = make_sender(client, concurrency=2)
        assert isinstance(sender, FastEdgeSender)
        try:
            return await sender.send("odd-1", b'{"plan":"gold"}')
        finally:
            await sender.aclose()


# ---------------------------------------------------------------------------------------------
# Delivery: exact, on every server, plain and TLS, both loops
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loop_name", LOOPS)
@pytest.mark.parametrize(("kind", "tls"), SERVERS, ids=SERVER_IDS)
def test_every_user_is_delivered_exactly_once(
    servers: Servers, kind: str, tls: bool, loop_name: str
) -> None:
    server = servers.get(kind, tls)
    server.reset()
    n = 300 if kind == "nginx" else 200  # nginx also ends each connection after a few requests
    rows = users(n, f"{server.name}-{loop_name}")
    with client_for(server) as client:
        assert isinstance(make_sender(client, concurrency=16), FastEdgeSender)
        sync = Sync(
            client,
            match_on="user_id",
            mapping={"plan": "plan"},
            concurrency=16,
            check_attributes=False,
            state=MemoryState(),
        )
        result = run_on(loop_name, lambda: sync.arun(rows))
    assert (result.status, result.added, result.rejected, result.not_sent) == (
        "succeeded",
        n,
        0,
        0,
    )
    assert result.retried == 0
    counts = server.counts()
    assert counts == collections.Counter({row["user_id"]: 1 for row in rows})
    if kind == "nginx":
        assert n > 16 * NGINX_KEEPALIVE_REQUESTS  # connections were closed under load


@pytest.mark.parametrize("kind", KINDS)
def test_the_h11_parser_delivers_exactly_once_too(servers: Servers, kind: str) -> None:
    server = servers.get(kind, False)
    server.reset()
    n = 150
    with client_for(server) as client:
        sender = FastEdgeSender(client, concurrency=16, parser="h11")

        async def main() -> list[bool]:
            async def one(i: int) -> bool:
                return (await sender.send(f"h11-{kind}-{i}", b'{"plan":"gold"}')).ok

            try:
                return list(await asyncio.gather(*(one(i) for i in range(n))))
            finally:
                await sender.aclose()

        assert all(run_on("asyncio", main))
    counts = server.counts()
    assert sum(counts.values()) == n and set(counts.values()) == {1}


@pytest.mark.parametrize("parser", available_parsers())
@pytest.mark.parametrize("kind", ["uvicorn-httptools", "nginx"])
def test_1024_connections(servers: Servers, kind: str, parser: str) -> None:
    server = servers.get(kind, False)
    server.reset()
    n, c = 2048, 1024
    with client_for(server) as client:
        sender = FastEdgeSender(client, concurrency=c, parser=parser)  # type: ignore[arg-type]

        async def main() -> list[bool]:
            async def one(i: int) -> bool:
                outcome = await sender.send(f"wide-{parser}-{i}", b'{"plan":"gold"}')
                return outcome.ok

            try:
                return list(await asyncio.gather(*(one(i) for i in range(n))))
            finally:
                await sender.aclose()

        oks = run_on("asyncio", main)
    assert all(oks)
    counts = server.counts()
    assert sum(counts.values()) == n and set(counts.values()) == {1}


# ---------------------------------------------------------------------------------------------
# Odd answers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loop_name", LOOPS)
@pytest.mark.parametrize("kind", [*ASGI_OR_AIOHTTP, "nginx"])
def test_a_redirect_is_an_error_that_names_the_location(
    servers: Servers, kind: str, loop_name: str
) -> None:
    server = servers.get(kind, False)
    outcome = run_on(loop_name, lambda: send_one(server, "redirect"))
    assert not outcome.ok and outcome.error.status_code == 307
    assert "https://elsewhere.example.test/edge/user-attributes" in str(outcome.error)


@pytest.mark.parametrize("loop_name", LOOPS)
@pytest.mark.parametrize("kind", ASGI_OR_AIOHTTP)
def test_chunked_and_gzip_answers(servers: Servers, kind: str, loop_name: str) -> None:
    server = servers.get(kind, True)
    chunked = run_on(loop_name, lambda: send_one(server, "chunked"))
    assert chunked.ok and chunked.attempts == 1
    refused = run_on(loop_name, lambda: send_one(server, "gzip400"))
    assert isinstance(refused.error, BadRequestError)
    assert "bad value from a gzip body" in str(refused.error)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_reset_mid_answer_is_a_connection_error(servers: Servers, loop_name: str) -> None:
    server = servers.get("aiohttp", False)
    outcome = run_on(loop_name, lambda: send_one(server, "rst"))
    assert isinstance(outcome.error, APIConnectionError)
    assert "mid-answer" in str(outcome.error) or "reset" in str(outcome.error).lower()


@pytest.mark.parametrize("loop_name", LOOPS)
@pytest.mark.parametrize("kind", ["uvicorn-h11", "hypercorn"])
def test_a_slow_trickle_hits_the_read_deadline(servers: Servers, kind: str, loop_name: str) -> None:
    """The read timeout is a deadline for the whole answer: bytes trickling in (one every
    0.2 s here, 7 s in all) do not keep a request alive past it."""
    server = servers.get(kind, False)
    outcome = run_on(loop_name, lambda: send_one(server, "trickle", timeout=1.0))
    assert isinstance(outcome.error, APITimeoutError)
