"""The send stage alone, with a scripted sender and a MemoryState (no network, no emulator):
each batch is written ahead before any of its users is sent, only acknowledgements are
committed, every user handed over gets exactly one outcome, and stops are honoured."""

from __future__ import annotations

import asyncio
from typing import Any

from contentstack_personalize.errors import (
    APIStatusError,
    AuthenticationError,
    PersonalizeError,
)
from contentstack_personalize.state import MemoryState
from contentstack_personalize.sync import SendOutcome
from contentstack_personalize.sync._abort import AbortRule
from contentstack_personalize.sync._commit import Committer
from contentstack_personalize.sync._control import RunControl
from contentstack_personalize.sync._diff import DiffBatch, Work
from contentstack_personalize.sync._execute import Executor
from contentstack_personalize.sync._tally import Tally

NAME = "sync"


class ScriptedSender:
    """Answers each user as scripted (default: acknowledged), and checks on every send that
    the user's keys were written ahead (unknown in the store)."""

    def __init__(
        self, store: MemoryState, errors: dict[str, PersonalizeError] | None = None
    ) -> None:
        self.store = store
        self.errors = errors or {}
        self.sent: list[str] = []
        self.pending_at_send: list[bool] = []
        self.closed = False

    async def send(self, user_uid: str, body: bytes) -> SendOutcome:
        await asyncio.sleep(0)
        state = self.store.load(NAME, [user_uid]).get(user_uid)
        self.pending_at_send.append(
            state is not None and any(v is None for v in state.attrs.values())
        )
        self.sent.append(user_uid)
        error = self.errors.get(user_uid)
        if error is not None:
            return SendOutcome(ok=False, attempts=1, error=error)
        return SendOutcome(ok=True, attempts=1)

    async def aclose(self) -> None:
        self.closed = True


def work(row: int, uid: str, retried: bool = False) -> Work:
    return Work(
        row=row,
        uid=uid,
        body=b'{"plan":"gold"}',
        changed={"plan": '"gold"'},
        new_state={"plan": '"gold"'},
        old_state={},
        first_time=True,
        retried=retried,
    )


def batches(n: int, per_batch: int = 10) -> list[DiffBatch]:
    works = [work(i, f"u{i}") for i in range(1, n + 1)]
    return [
        DiffBatch(works[i : i + per_batch], [], 0, [], works[i : i + per_batch][-1].row)
        for i in range(0, n, per_batch)
    ]


async def execute(
    store: MemoryState,
    sender: ScriptedSender,
    source: list[DiffBatch],
    *,
    control: RunControl | None = None,
    ratio: float = 0.5,
    window: int = 100,
) -> tuple[Tally, RunControl]:
    control = control or RunControl(1.0)
    tally = Tally(max_details=1000)
    tally.read = sum(len(b.works) + len(b.duplicates) + b.unchanged for b in source)
    committer = Committer(store, NAME, control, commit_every=3)
    executor = Executor(
        sender,
        tally=tally,
        committer=committer,
        judge=AbortRule(ratio, window, "http://edge.test"),
        control=control,
        concurrency=4,
        match_on="user_id",
    )
    try:
        await executor.run(source)
    finally:
        committer.close()
    return tally, control


async def test_every_user_is_written_ahead_then_sent_then_committed() -> None:
    store = MemoryState()
    sender = ScriptedSender(store)
    tally, control = await execute(store, sender, batches(25))
    assert control.reason is None
    assert sorted(sender.sent) == sorted(f"u{i}" for i in range(1, 26))
    assert all(sender.pending_at_send)
    states = store.load(NAME, [f"u{i}" for i in range(1, 26)])
    assert {uid: s.attrs for uid, s in states.items()} == {
        f"u{i}": {"plan": '"gold"'} for i in range(1, 26)
    }
    assert (tally.added, tally.requests, tally.outstanding) == (25, 25, {})
    tally.check()


async def test_only_acknowledged_users_are_committed() -> None:
    store = MemoryState()
    refused = APIStatusError("value too long", status_code=422)
    sender = ScriptedSender(store, {"u2": refused, "u5": refused})
    tally, control = await execute(store, sender, batches(6))
    assert control.reason is None
    states = store.load(NAME, [f"u{i}" for i in range(1, 7)])
    for uid in ("u2", "u5"):
        assert states[uid].attrs == {"plan": None}  # stays unknown: sent again next run
        assert states[uid].failed_attempts == 1
    assert states["u1"].attrs == {"plan": '"gold"'}
    assert (tally.added, tally.rejected) == (4, 2)
    assert {(i.uid, i.status) for i in tally.rejected_rows} == {("u2", 422), ("u5", 422)}
    tally.check()


async def test_a_systemic_failure_stops_the_run_and_the_rest_is_not_sent() -> None:
    store = MemoryState()
    sender = ScriptedSender(store, {"u1": AuthenticationError("bad token", status_code=401)})
    tally, control = await execute(store, sender, batches(40))
    assert control.reason == "AuthenticationError: 401 bad token"
    assert len(sender.sent) < 40
    assert tally.rejected == 0
    assert tally.added + tally.not_sent == 40
    reasons = {i.reason for i in tally.rejected_rows if i.uid != "u1"}
    assert reasons <= {"not sent: the run stopped (AuthenticationError: 401 bad token)"}
    tally.check()


async def test_too_many_rejections_stop_the_run() -> None:
    store = MemoryState()
    refused = APIStatusError("nope", status_code=422)
    sender = ScriptedSender(store, {f"u{i}": refused for i in range(1, 101)})
    tally, control = await execute(store, sender, batches(100), window=10)
    assert control.reason is not None and "requests failed, more than 50%" in control.reason
    assert tally.not_sent > 0
    assert tally.rejected + tally.not_sent == 100
    tally.check()


async def test_a_run_stopped_before_sending_sends_nothing_and_writes_nothing_ahead() -> None:
    store = MemoryState()
    sender = ScriptedSender(store)
    control = RunControl(1.0)
    control.stop("SIGTERM")
    tally, _ = await execute(store, sender, batches(12), control=control)
    assert sender.sent == []
    assert store.load(NAME, ["u1"]) == {}
    assert tally.not_sent == 12
    assert {i.reason for i in tally.rejected_rows} == {"not sent: the run stopped (SIGTERM)"}
    tally.check()


async def test_the_diffs_own_outcomes_are_accounted_and_its_clears_written() -> None:
    store = MemoryState()
    store.commit(NAME, [("same", {"plan": '"gold"'})])
    store.record_failures(NAME, [("same", "boom")])
    source = [DiffBatch([work(3, "u3")], [(2, "dup", "user UID appears 2 times")], 1, ["same"], 3)]
    tally, _ = await execute(store, ScriptedSender(store), source)
    assert (tally.invalid, tally.unchanged, tally.added) == (1, 1, 1)
    assert tally.invalid_rows[0].column == "user_id"
    assert store.load(NAME, ["same"])["same"].failed_attempts == 0
    assert tally.diffed_through == 3
    tally.check()


async def test_retried_users_are_counted_as_retried() -> None:
    store = MemoryState()
    source = [DiffBatch([work(1, "a", retried=True), work(2, "b")], [], 0, [], 2)]
    tally, _ = await execute(store, ScriptedSender(store), source)
    assert tally.retried == 1


async def test_a_crashing_sender_surfaces_and_leaves_users_outstanding() -> None:
    store = MemoryState()

    class Crashing(ScriptedSender):
        async def send(self, user_uid: str, body: bytes) -> SendOutcome:
            raise RuntimeError("sender bug")

    tally = Tally(max_details=10)
    control = RunControl(1.0)
    committer = Committer(store, NAME, control)
    executor = Executor(
        Crashing(store),
        tally=tally,
        committer=committer,
        judge=AbortRule(0.5, 100, "http://edge.test"),
        control=control,
        concurrency=2,
        match_on="user_id",
    )
    try:
        await executor.run(batches(5))
    except RuntimeError as exc:
        assert str(exc) == "sender bug"
    else:
        raise AssertionError("the sender's exception was swallowed")
    finally:
        committer.close()
    assert tally.outstanding  # the run gives these a not_sent outcome (see the tally's tests)


def test_the_scripted_sender_is_an_edge_sender() -> None:
    from contentstack_personalize.sync import EdgeSender

    sender: Any = ScriptedSender(MemoryState())
    assert isinstance(sender, EdgeSender)
