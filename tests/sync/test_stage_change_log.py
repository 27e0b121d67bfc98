"""The change-log hook, end to end through Sync with a scripted sender and a store that keeps
a change log (no network, no emulator): one entry per user settled, old values from the state,
digests mode, off, no entries for a plan, and pruning at the end of each run."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from contentstack_personalize import PersonalizeClient
from contentstack_personalize.errors import APIStatusError
from contentstack_personalize.state import ChangeEntry, ChangeLogStore, MemoryState
from contentstack_personalize.sync import SendOutcome, Sync


class LogState(MemoryState):
    """A MemoryState with a change log kept in a list."""

    def __init__(self) -> None:
        super().__init__()
        self.logged: list[tuple[str, str, ChangeEntry]] = []
        self.pruned: list[float] = []

    def log_changes(self, sync_name: str, run_id: str, entries: Sequence[ChangeEntry]) -> None:
        self.logged += [(sync_name, run_id, entry) for entry in entries]

    def changes(self, sync_name: str, **kwargs: Any) -> list[ChangeEntry]:
        return [entry for name, _, entry in reversed(self.logged) if name == sync_name]

    def prune_changes(self, older_than: float) -> int:
        self.pruned.append(older_than)
        return 0


class Sender:
    def __init__(self, refuse: set[str] | None = None) -> None:
        self.refuse = refuse or set()

    async def send(self, user_uid: str, body: bytes) -> SendOutcome:
        if user_uid in self.refuse:
            error = APIStatusError("value too long", status_code=422)
            return SendOutcome(ok=False, attempts=1, error=error)
        return SendOutcome(ok=True, attempts=1)

    async def aclose(self) -> None:
        pass


@pytest.fixture
def client() -> Any:
    with PersonalizeClient("p1", read_env=False) as c:
        yield c


def make_sync(client: Any, store: MemoryState, **kwargs: Any) -> Sync:
    kwargs.setdefault("sender", Sender())
    return Sync(
        client,
        match_on="id",
        mapping={"plan": "plan", "ltv": "ltv"},
        state=store,
        type_check="off",
        check_attributes=False,
        **kwargs,
    )


def test_the_fake_is_a_change_log_store() -> None:
    assert isinstance(LogState(), ChangeLogStore)


def test_each_user_sent_is_logged_with_the_values_before(client: Any) -> None:
    store = LogState()
    first = make_sync(client, store).run([{"id": "a", "plan": "gold", "ltv": 1}])
    second = make_sync(client, store, sender=Sender(refuse={"b"})).run(
        [{"id": "a", "plan": "silver", "ltv": 1}, {"id": "b", "plan": "gold", "ltv": 2}]
    )
    assert [(run_id, e.uid, e.outcome) for _, run_id, e in store.logged] == [
        (first.run_id, "a", "added"),
        (second.run_id, "a", "changed"),
        (second.run_id, "b", "rejected"),
    ]
    added, changed, rejected = (entry for _, _, entry in store.logged)
    assert (added.new, added.old) == ({"plan": '"gold"', "ltv": "1"}, {})
    assert (changed.new, changed.old) == ({"plan": '"silver"'}, {"plan": '"gold"'})
    assert (rejected.status, rejected.error) == (422, "422 value too long")


def test_digests_mode_keeps_no_value(client: Any) -> None:
    store = LogState()
    make_sync(client, store, change_log="digests").run([{"id": "a", "plan": "gold", "ltv": 1}])
    ((_, _, entry),) = store.logged
    assert entry.new["plan"] is not None and json.loads(entry.new["plan"]).startswith("sha256:")
    assert "gold" not in repr(entry)


def test_off_logs_and_prunes_nothing(client: Any) -> None:
    store = LogState()
    make_sync(client, store, change_log="off").run([{"id": "a", "plan": "gold", "ltv": 1}])
    assert (store.logged, store.pruned) == ([], [])


def test_a_plan_logs_and_prunes_nothing(client: Any) -> None:
    store = LogState()
    plan = make_sync(client, store).plan([{"id": "a", "plan": "gold", "ltv": 1}])
    assert plan.counts()["added"] == 1
    assert (store.logged, store.pruned) == ([], [])


def test_each_run_prunes_to_its_retention(client: Any) -> None:
    store = LogState()
    before = time.time()
    make_sync(client, store, change_log_days=2).run([{"id": "a", "plan": "gold", "ltv": 1}])
    after = time.time()
    (cutoff,) = store.pruned
    assert before - 2 * 86400 <= cutoff <= after - 2 * 86400


def test_a_store_without_a_change_log_still_syncs(client: Any) -> None:
    store = MemoryState()
    result = make_sync(client, store).run([{"id": "a", "plan": "gold", "ltv": 1}])
    assert result.added == 1
    assert store.load(result.sync_name, ["a"])["a"].attrs == {"plan": '"gold"', "ltv": "1"}


def test_workers_of_a_distributed_run_log_like_the_driver(client: Any, tmp_path: Path) -> None:
    from contentstack_personalize.sync._distributed import make_spec
    from contentstack_personalize.sync._preflight import Preflight

    sync = Sync(
        client,
        match_on="id",
        mapping={"plan": "plan"},
        state=tmp_path / "shared.db",
        change_log="digests",
        change_log_days=7,
    )
    worker = Sync.from_spec(make_spec(sync, Preflight([], {})), state=LogState())
    sync.close()
    assert (worker.change_log, worker.change_log_days) == ("digests", 7.0)
