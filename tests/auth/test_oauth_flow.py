"""The OAuth refresh flow, written once, and the two shells httpx runs it with.

First the flow alone, stepped by hand (no I/O, no threads): which steps it yields, and that a
request waiting for the lock does not refresh again. Then the shells: threads and asyncio tasks
must give the same result for the same scripted answers, including failures, send one refresh
however many requests wait for it, and never leave the refresh lock held.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from contentstack_personalize.auth import OAuth
from contentstack_personalize.auth._oauth import RELEASE_LOCK, TAKE_LOCK, Flow, LoopLocks, Send
from contentstack_personalize.errors import AuthenticationError
from tests.auth._support import (
    ACCESS,
    ALL_MARKS,
    API,
    NEW_ACCESS,
    NEW_REFRESH,
    REFRESH,
    TOKEN_URL,
    Clock,
    form_of,
    make_oauth,
    token_answer,
)

SHELLS = ["threads", "tasks"]


def api_request() -> httpx.Request:
    return httpx.Request("GET", f"{API}/attributes")


def bearer(request: httpx.Request) -> str:
    return str(request.headers.get("authorization", ""))


def expect_send(flow: Flow, reply: httpx.Response | None, *, read: bool = False) -> Send:
    step = flow.send(reply)
    assert isinstance(step, Send), step
    assert step.read is read
    return step


# ---------------------------------------------------------------------------- the flow alone


def test_a_fresh_token_is_sent_as_it_is() -> None:
    clock = Clock()
    flow = make_oauth(clock)._flow(request := api_request())
    assert next(flow) == Send(request)
    assert bearer(request) == f"Bearer {ACCESS}"
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(200))


def test_an_expired_token_is_refreshed_under_the_lock_first() -> None:
    clock = Clock()
    oauth = make_oauth(clock, expires_at=clock.now - 1)
    flow = oauth._flow(request := api_request())
    assert next(flow) is TAKE_LOCK
    refresh = expect_send(flow, None, read=True)
    assert str(refresh.request.url) == TOKEN_URL
    assert form_of(refresh.request)["refresh_token"] == REFRESH
    assert flow.send(token_answer()) is RELEASE_LOCK
    assert expect_send(flow, None).request is request
    assert bearer(request) == f"Bearer {NEW_ACCESS}"
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(200))


def test_a_401_refreshes_and_replays_once() -> None:
    oauth = make_oauth(expires_at=None)
    flow = oauth._flow(request := api_request())
    assert next(flow) == Send(request)
    assert flow.send(httpx.Response(401)) is TAKE_LOCK
    expect_send(flow, None, read=True)
    assert flow.send(token_answer()) is RELEASE_LOCK
    assert expect_send(flow, None).request is request
    assert bearer(request) == f"Bearer {NEW_ACCESS}"
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(401))  # the second 401 is the caller's


def test_a_request_that_waited_for_the_lock_uses_the_new_token() -> None:
    clock = Clock()
    oauth = make_oauth(clock, expires_at=clock.now - 1)
    first, second = oauth._flow(api_request()), oauth._flow(waiting := api_request())
    assert next(first) is TAKE_LOCK
    assert next(second) is TAKE_LOCK  # both saw the expiry; the second now waits
    expect_send(first, None, read=True)
    assert first.send(token_answer()) is RELEASE_LOCK
    # the second gets the lock after the refresh: it releases it without refreshing again
    assert second.send(None) is RELEASE_LOCK
    assert expect_send(second, None).request is waiting
    assert bearer(waiting) == f"Bearer {NEW_ACCESS}"


def test_requests_answered_401_together_refresh_once() -> None:
    oauth = make_oauth(expires_at=None)
    first, second = oauth._flow(api_request()), oauth._flow(late := api_request())
    next(first), next(second)
    assert first.send(httpx.Response(401)) is TAKE_LOCK
    assert second.send(httpx.Response(401)) is TAKE_LOCK
    expect_send(first, None, read=True)
    assert first.send(token_answer()) is RELEASE_LOCK
    assert second.send(None) is RELEASE_LOCK
    assert expect_send(second, None).request is late
    assert bearer(late) == f"Bearer {NEW_ACCESS}"


def test_a_refused_refresh_raises_from_the_flow() -> None:
    clock = Clock()
    oauth = make_oauth(clock, expires_at=clock.now - 1)
    flow = oauth._flow(api_request())
    next(flow)
    expect_send(flow, None, read=True)
    with pytest.raises(AuthenticationError) as info:
        flow.send(httpx.Response(400, json={"error": "invalid_grant", "message": REFRESH}))
    for mark in ALL_MARKS:
        assert mark not in str(info.value)
    assert oauth.access_token == ACCESS  # nothing changed


def test_a_refused_refresh_after_another_succeeded_uses_the_winners_token() -> None:
    """Two refreshes under different locks (a thread and an event loop): the one the server
    refuses, because the other rotated the refresh token, is not an error."""
    clock = Clock()
    oauth = make_oauth(clock, expires_at=clock.now - 1)
    winner, loser = oauth._flow(api_request()), oauth._flow(request := api_request())
    next(winner), next(loser)
    expect_send(winner, None, read=True)
    expect_send(loser, None, read=True)
    assert winner.send(token_answer()) is RELEASE_LOCK
    assert loser.send(httpx.Response(400, json={"error": "invalid_grant"})) is RELEASE_LOCK
    assert expect_send(loser, None).request is request
    assert bearer(request) == f"Bearer {NEW_ACCESS}"


def test_a_send_step_must_be_answered_with_a_response() -> None:
    flow = make_oauth(expires_at=None)._flow(api_request())
    next(flow)
    with pytest.raises(TypeError, match="answered with the response"):
        flow.send(None)


# ---------------------------------------------------------------------------- the lock registry


async def test_one_lock_per_running_loop() -> None:
    locks = LoopLocks()
    mine = locks.get()
    assert locks.get() is mine

    async def elsewhere() -> asyncio.Lock:
        return locks.get()

    other_loop_lock = await asyncio.to_thread(lambda: asyncio.run(elsewhere()))
    assert other_loop_lock is not mine
    assert locks.get() is mine


class _NoWeakrefs(weakref.WeakKeyDictionary[Any, Any]):
    """Behaves as a weak map would for a loop type that cannot be weakly referenced."""

    def get(self, key: Any, default: Any = None) -> Any:
        raise TypeError("cannot create weak reference")


async def test_loops_without_weak_references_are_held_until_closed() -> None:
    locks = LoopLocks()
    locks._weak = _NoWeakrefs()
    mine = locks.get()
    assert locks.get() is mine

    async def elsewhere() -> None:
        locks.get()

    await asyncio.to_thread(lambda: asyncio.run(elsewhere()))  # that loop is closed now
    assert len(locks._strong) == 2
    await asyncio.to_thread(lambda: asyncio.run(elsewhere()))  # prunes the closed one
    assert len(locks._strong) == 2
    assert locks.get() is mine


# ---------------------------------------------------------------------------- the two shells


class CountingClock(Clock):
    """A clock that counts its readings, so a test can wait until every request has looked."""

    def __init__(self, changed: threading.Condition, now: float = 1_000_000.0) -> None:
        super().__init__(now)
        self.readings = 0
        self.changed = changed

    def __call__(self) -> float:
        with self.changed:
            self.readings += 1
            self.changed.notify_all()
        return self.now


class Server:
    """The token endpoint (scripted answers) and an API that accepts only ``valid``.

    ``hold(server)`` keeps the token endpoint from answering until it is true, so that every
    request is known to be waiting when the refresh completes (a thread waits on ``changed``, a
    task yields to the others); no test depends on how long anything takes.
    """

    def __init__(
        self,
        answers: list[httpx.Response | Exception],
        *,
        valid: str = NEW_ACCESS,
        hold: Callable[[Server], bool] | None = None,
        changed: threading.Condition | None = None,
    ) -> None:
        self.answers = answers
        self.valid = valid
        self.hold = hold
        self.changed = changed or threading.Condition()
        self.token_calls = 0
        self.api_bearers: list[str] = []

    def _ready(self) -> bool:
        return self.hold is None or self.hold(self)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        with self.changed:
            if request.url.path == "/token":
                self.token_calls += 1
                answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
                if isinstance(answer, Exception):
                    raise answer
                return httpx.Response(answer.status_code, content=answer.content)
            self.api_bearers.append(bearer(request))
            self.changed.notify_all()
        if bearer(request) == f"Bearer {self.valid}":
            return httpx.Response(200, json=[])
        return httpx.Response(401, json={"message": "bad token"})

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            with self.changed:
                # a safety net against a hang, not a timing: the others arrive at once
                assert self.changed.wait_for(self._ready, timeout=60), "the others never came"
        return self._answer(request)

    async def ahandle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            for _ in range(100_000):
                if self._ready():
                    break
                await asyncio.sleep(0)
            assert self._ready(), "the other tasks never arrived"
        return self._answer(request)


def outcome(call: Callable[[], httpx.Response]) -> str:
    try:
        return str(call().status_code)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def lock_state(oauth: OAuth) -> str:
    """'free' when no refresh lock of ``oauth`` is held (in this thread's running loop, if any)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return "held" if oauth._thread_lock.locked() else "free"
    return "held" if oauth._loop_locks.get().locked() else "free"


def via(shell: str, oauth: OAuth, server: Server, *, n: int = 1, rounds: int = 1) -> list[str]:
    """``rounds`` times, send ``n`` requests at once; the outcomes, and the lock after each."""
    results: list[str] = []
    if shell == "threads":
        with httpx.Client(auth=oauth, transport=httpx.MockTransport(server.handle)) as client:
            for _ in range(rounds):
                got = [""] * n

                def work(got: list[str], i: int) -> None:
                    got[i] = outcome(lambda: client.get(f"{API}/attributes"))

                threads = [threading.Thread(target=work, args=(got, i)) for i in range(n)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                results += [*got, lock_state(oauth)]
        return results

    async def main() -> list[str]:
        transport = httpx.MockTransport(server.ahandle)
        async with httpx.AsyncClient(auth=oauth, transport=transport) as client:
            for _ in range(rounds):

                async def one() -> str:
                    try:
                        return str((await client.get(f"{API}/attributes")).status_code)
                    except Exception as exc:
                        return f"{type(exc).__name__}: {exc}"

                got = await asyncio.gather(*(one() for _ in range(n)))
                results.extend([*got, lock_state(oauth)])
        return results

    return asyncio.run(main())


@pytest.mark.parametrize("shell", SHELLS)
def test_shells_refresh_an_expired_token_alike(shell: str) -> None:
    clock = Clock()
    oauth = make_oauth(clock, expires_at=clock.now - 1)
    server = Server([token_answer()])
    assert via(shell, oauth, server) == ["200", "free"]
    assert server.token_calls == 1
    assert server.api_bearers == [f"Bearer {NEW_ACCESS}"]
    assert oauth.tokens is not None and oauth.tokens.refresh_token == NEW_REFRESH


@pytest.mark.parametrize("shell", SHELLS)
def test_shells_refresh_on_401_alike(shell: str) -> None:
    oauth = make_oauth(expires_at=None)
    server = Server([token_answer()])
    assert via(shell, oauth, server) == ["200", "free"]
    assert server.api_bearers == [f"Bearer {ACCESS}", f"Bearer {NEW_ACCESS}"]


@pytest.mark.parametrize("shell", SHELLS)
def test_shells_return_a_second_401_alike(shell: str) -> None:
    oauth = make_oauth(expires_at=None)
    server = Server([token_answer()], valid="nobody")
    assert via(shell, oauth, server) == ["401", "free"]
    assert server.token_calls == 1 and len(server.api_bearers) == 2


@pytest.mark.parametrize("shell", SHELLS)
def test_shells_report_a_refused_refresh_alike(shell: str) -> None:
    clock = Clock()
    oauth = make_oauth(clock, expires_at=clock.now - 1)
    refused = httpx.Response(400, json={"error": "invalid_grant", "message": f"{REFRESH} revoked"})
    server = Server([refused])
    [result, lock] = via(shell, oauth, server)
    assert result.startswith("AuthenticationError: ") and "revoked" in result
    assert lock == "free"
    assert server.api_bearers == []  # the request was not sent without a valid token
    for mark in ALL_MARKS:
        assert mark not in result


@pytest.mark.parametrize("shell", SHELLS)
def test_shells_free_the_lock_after_a_network_error(shell: str) -> None:
    clock = Clock()
    oauth = make_oauth(clock, expires_at=clock.now - 1)
    server = Server([httpx.ConnectError("token endpoint down"), token_answer()])
    # the first request fails with the refresh; the next one refreshes and succeeds
    assert via(shell, oauth, server, rounds=2) == [
        "ConnectError: token endpoint down",
        "free",
        "200",
        "free",
    ]
    assert server.token_calls == 2


@pytest.mark.parametrize("shell", SHELLS)
def test_shells_refresh_once_for_many_waiting_requests(shell: str) -> None:
    n = 20
    clock = CountingClock(changed := threading.Condition())
    oauth = make_oauth(clock, expires_at=clock.now - 1)
    # the refreshing request reads the clock three times, every other one once before the lock
    server = Server([token_answer()], hold=lambda s: clock.readings >= n + 2, changed=changed)
    assert via(shell, oauth, server, n=n) == ["200"] * n + ["free"]
    assert server.token_calls == 1
    assert server.api_bearers == [f"Bearer {NEW_ACCESS}"] * n


@pytest.mark.parametrize("shell", SHELLS)
def test_shells_refresh_once_for_many_requests_answered_401(shell: str) -> None:
    n = 20
    oauth = make_oauth(expires_at=None)
    server = Server([token_answer()], hold=lambda s: len(s.api_bearers) >= n)
    assert via(shell, oauth, server, n=n) == ["200"] * n + ["free"]
    assert server.token_calls == 1
    assert sorted(server.api_bearers) == [f"Bearer {ACCESS}"] * n + [f"Bearer {NEW_ACCESS}"] * n


@pytest.mark.parametrize("shell", SHELLS)
def test_shells_let_every_waiting_request_fail_alike(shell: str) -> None:
    """A refused refresh is not remembered: each waiting request tries once and fails."""
    n = 5
    clock = CountingClock(changed := threading.Condition())
    oauth = make_oauth(clock, expires_at=clock.now - 1)
    refused = httpx.Response(400, json={"error": "invalid_grant"})
    server = Server([refused], hold=lambda s: clock.readings >= n + 2, changed=changed)
    results = via(shell, oauth, server, n=n)
    assert results[-1] == "free"
    assert all(r.startswith("AuthenticationError: ") for r in results[:-1])
    assert server.token_calls == n and server.api_bearers == []


async def test_a_cancelled_refresh_frees_the_event_loops_lock() -> None:
    clock = Clock()
    oauth = make_oauth(clock, expires_at=clock.now - 1)
    arrived, release = asyncio.Event(), asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            arrived.set()
            await release.wait()
            return token_answer()
        return httpx.Response(200, json=[])

    async with httpx.AsyncClient(auth=oauth, transport=httpx.MockTransport(handler)) as client:
        task = asyncio.create_task(client.get(f"{API}/attributes"))
        await arrived.wait()
        assert oauth._loop_locks.get().locked()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not oauth._loop_locks.get().locked()
        release.set()
        assert (await client.get(f"{API}/attributes")).status_code == 200
    assert oauth.access_token == NEW_ACCESS
