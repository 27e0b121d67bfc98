"""The commit stage alone, against a MemoryState: the write-ahead, acknowledgements committed
and failures recorded in batches (by count and by interval, with an injected clock), a store
failure that stops the run, and the change log written right after each batch."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from contentstack_personalize.errors import APIStatusError, StateStoreError
from contentstack_personalize.state import ChangeEntry, ChangeLogStore, MemoryState
from contentstack_personalize.sync._commit import CLEAR_BATCH, Committer, change_entry
from contentstack_personalize.sync._control import RunControl
from contentstack_personalize.sync._diff import Work

NAME = "sync"


def work(uid: str, old: dict[str, str | None] | None = None, **changed: str) -> Work:
    old = old or {}
    return Work(
        row=1,
        uid=uid,
        body=b"{}",
        changed=dict(changed),
        new_state={**old, **changed},
        old_state=old,
        first_time=all(v is None for v in old.values()),
        retried=False,
    )


class Recording(MemoryState):
    """A MemoryState that logs every write, and can fail one kind of write; it keeps no
    changelog (like a user's own StateStore without one)."""

    log_changes = None  # type: ignore[assignment]

    def __init__(self, fail: str | None = None) -> None:
        super().__init__()
        self.calls: list[tuple[str, list[str]]] = []
        self.fail = fail

    def _record(self, what: str, uids: list[str]) -> None:
        if what == self.fail:
            raise StateStoreError(f"{what} failed: disk full")
        self.calls.append((what, uids))

    def mark_pending(self, sync_name: str, entries: Sequence[Any]) -> None:
        self._record("mark_pending", [uid for uid, _ in entries])
        super().mark_pending(sync_name, entries)

    def commit(self, sync_name: str, accepted: Sequence[Any]) -> None:
        self._record("commit", [uid for uid, _ in accepted])
        super().commit(sync_name, accepted)

    def record_failures(self, sync_name: str, failures: Sequence[Any]) -> None:
        self._record("record_failures", [uid for uid, _ in failures])
        super().record_failures(sync_name, failures)

    def clear_failures(self, sync_name: str, uids: Sequence[str]) -> None:
        self._record("clear_failures", list(uids))
        super().clear_failures(sync_name, uids)


class Logging(Recording):
    """A store that also keeps a change log."""

    def __init__(self, fail: str | None = None) -> None:
        super().__init__(fail)
        self.logged: list[tuple[str, str, list[ChangeEntry]]] = []
        self.pruned: list[float] = []

    def log_changes(self, sync_name: str, run_id: str, entries: Sequence[ChangeEntry]) -> None:
        self._record("log_changes", [e.uid for e in entries])
        self.logged.append((sync_name, run_id, list(entries)))

    def changes(self, sync_name: str, **kwargs: Any) -> list[ChangeEntry]:
        return [e for _, _, entries in self.logged for e in entries]

    def prune_changes(self, older_than: float) -> int:
        self.pruned.append(older_than)
        return 0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_fake_change_log_store_is_a_change_log_store() -> None:
    assert isinstance(Logging(), ChangeLogStore)
    assert not isinstance(Recording(), ChangeLogStore)


async def test_write_ahead_marks_the_keys_pending_before_anything_is_sent() -> None:
    store = Recording()
    store.commit(NAME, [("a", {"plan": '"gold"', "ltv": "1"})])
    with Committer(store, NAME, RunControl(1.0)) as committer:
        pending = [("a", {"plan": '"gold"', "ltv": None})]
        assert await committer.write_ahead(pending)
        assert store.load(NAME, ["a"])["a"].attrs == {"plan": '"gold"', "ltv": None}


async def test_a_failed_write_ahead_stops_the_run() -> None:
    control = RunControl(1.0)
    with Committer(Recording(fail="mark_pending"), NAME, control) as committer:
        assert not await committer.write_ahead([("a", {"plan": None})])
    assert control.reason == "the state store failed: mark_pending failed: disk full"
    assert isinstance(control.cause, StateStoreError)


def test_acknowledgements_are_committed_and_failures_recorded_in_batches_by_count() -> None:
    store = Recording()
    committer = Committer(store, NAME, RunControl(1.0), commit_every=2, clock=Clock())
    committer.acknowledged(work("a", plan='"gold"'))
    assert store.calls == []  # buffered
    committer.failed(work("b", plan='"x"'), None, "rejected: " + "y" * 2000)
    committer.wait()  # the batch of two went to the commit thread
    assert store.calls == [("commit", ["a"]), ("record_failures", ["b"])]
    committer.acknowledged(work("c", plan='"gold"'))
    committer.close()  # what is left is written on close
    assert store.calls[-1] == ("commit", ["c"])
    states = store.load(NAME, ["a", "b", "c"])
    assert states["a"].attrs == {"plan": '"gold"'} and states["a"].failed_attempts == 0
    assert "b" not in states or states["b"].attrs.get("plan") != '"x"'  # never committed
    assert states["b"].failed_attempts == 1
    assert states["b"].last_error is not None and len(states["b"].last_error) == 1000


def test_a_batch_is_written_when_the_interval_passed() -> None:
    store = Recording()
    clock = Clock()
    committer = Committer(
        store, NAME, RunControl(1.0), commit_every=100, commit_interval=5.0, clock=clock
    )
    committer.acknowledged(work("a", plan='"1"'))
    committer.wait()
    assert store.calls == []
    clock.now = 5.0
    committer.acknowledged(work("b", plan='"2"'))
    committer.wait()
    assert store.calls == [("commit", ["a", "b"])]
    committer.close()
    assert store.calls == [("commit", ["a", "b"])]  # nothing left to write


def test_cleared_failures_are_written_in_batches() -> None:
    store = Recording()
    committer = Committer(store, NAME, RunControl(1.0), clock=Clock())
    committer.clear([f"u{i}" for i in range(CLEAR_BATCH - 1)])
    committer.wait()
    assert store.calls == []
    committer.clear(["last"])
    committer.wait()
    assert [(what, len(uids)) for what, uids in store.calls] == [("clear_failures", CLEAR_BATCH)]
    committer.close()


@pytest.mark.parametrize("fail", ["commit", "record_failures"])
def test_a_store_failure_stops_the_run_and_nothing_more_is_written(fail: str) -> None:
    store = Recording(fail=fail)
    control = RunControl(1.0)
    committer = Committer(store, NAME, control, commit_every=2, clock=Clock())
    committer.acknowledged(work("a", plan='"1"'))
    committer.failed(work("b", plan='"2"'), None, "no")
    committer.wait()
    assert committer.store_failed
    assert control.reason == f"the state store failed: {fail} failed: disk full"
    committer.acknowledged(work("c", plan='"3"'))
    committer.close()
    assert ("commit", ["c"]) not in store.calls


def test_a_store_failure_on_the_last_flush_stops_the_run_instead_of_raising() -> None:
    control = RunControl(1.0)
    committer = Committer(Recording(fail="commit"), NAME, control, clock=Clock())
    committer.acknowledged(work("a", plan='"1"'))
    committer.close()
    assert control.reason == "the state store failed: commit failed: disk full"


class TestChangeLog:
    def settle_three(self, store: Recording, mode: Any) -> None:
        committer = Committer(
            store, NAME, RunControl(1.0), commit_every=3, run_id="run-1", change_log=mode
        )
        committer.acknowledged(work("new", plan='"gold"'))
        committer.acknowledged(work("old", {"plan": '"silver"', "ltv": "1"}, plan='"gold"'))
        error = APIStatusError("value too long", status_code=422)
        committer.failed(work("bad", {"plan": None}, plan='"x"'), error, "value too long")
        committer.close()

    def test_each_settled_user_is_logged_right_after_its_batch(self) -> None:
        store = Logging()
        self.settle_three(store, "values")
        assert [what for what, _ in store.calls] == ["commit", "record_failures", "log_changes"]
        ((sync_name, run_id, entries),) = store.logged
        assert (sync_name, run_id) == (NAME, "run-1")
        new, old, bad = entries
        assert new == ChangeEntry(
            uid="new", outcome="added", new={"plan": '"gold"'}, old={"plan": None}
        )
        assert old == ChangeEntry(
            uid="old", outcome="changed", new={"plan": '"gold"'}, old={"plan": '"silver"'}
        )
        assert (bad.outcome, bad.status, bad.error) == ("rejected", 422, "value too long")
        assert (bad.new, bad.old) == ({"plan": '"x"'}, {})  # unknown before: no old value

    def test_digests_mode_logs_digests_only(self) -> None:
        store = Logging()
        self.settle_three(store, "digests")
        ((_, _, entries),) = store.logged
        assert entries[1].new["plan"] == entries[0].new["plan"]  # equal values, equal digests
        assert entries[1].new["plan"] != '"gold"'
        assert json.loads(str(entries[1].new["plan"])).startswith("sha256:")
        assert entries[1].old["plan"] != '"silver"'

    @pytest.mark.parametrize("store", [Logging(), Recording()])
    def test_off_or_a_store_without_a_log_logs_nothing(self, store: Recording) -> None:
        self.settle_three(store, "off" if isinstance(store, Logging) else "values")
        assert "log_changes" not in [what for what, _ in store.calls]

    def test_a_failing_change_log_stops_the_run_after_the_commit(self) -> None:
        store = Logging(fail="log_changes")
        control = RunControl(1.0)
        committer = Committer(store, NAME, control, change_log="values", clock=Clock())
        committer.acknowledged(work("a", plan='"1"'))
        committer.close()
        assert store.load(NAME, ["a"])["a"].attrs == {"plan": '"1"'}
        assert control.reason == "the state store failed: log_changes failed: disk full"


def test_change_entry_of_a_rejection_without_a_status() -> None:
    entry = change_entry(work("a", plan='"1"'), ok=False, error=None, reason="timed out")
    assert (entry.outcome, entry.status, entry.error) == ("rejected", None, "timed out")
