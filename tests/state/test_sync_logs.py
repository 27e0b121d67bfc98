"""Sync logs end to end (docs/state.md, "Sync logs"): real runs against the emulator write the
runs table and the changelog of SQLite and PostgreSQL state; ``sync.changes()`` and plain SQL
read them back; digests keep no value; retention prunes."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from contentstack_personalize import ConfigurationError
from contentstack_personalize.sync import MemoryState, Sync
from contentstack_personalize.testing import Faults, PersonalizeEmulator
from tests._invariants import assert_accounted
from tests.sync.conftest import make_client

MAPPING = {"plan": "plan", "ltv": "ltv"}


@pytest.fixture(params=["sqlite", "postgres"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "state.db")
    return str(request.getfixturevalue("pg_url"))


def rows(plan_of_2: str) -> list[dict[str, Any]]:
    return [
        {"user_id": "u1", "plan": "gold", "ltv": 10},
        {"user_id": "u2", "plan": plan_of_2, "ltv": 20},
        {"user_id": "u3", "plan": "silver", "ltv": 30},
    ]


def sql(state: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """Read the changelog the way a user would: plain SQL on the store."""
    if state.startswith("postgresql://"):
        url, _, schema = state.partition("?schema=")
        with psycopg.connect(url) as conn:
            return list(conn.execute(query.replace("{t}", f"{schema}.changes"), params))
    with sqlite3.connect(state) as db:
        return list(db.execute(query.replace("{t}", "changes").replace("%s", "?"), params))


def test_every_user_sent_is_logged_with_old_and_new_values_and_the_outcome(state: str) -> None:
    emulator = PersonalizeEmulator(seed=3, management_rate_limit=None)
    client = make_client(emulator)
    with client, Sync(client, match_on="user_id", mapping=MAPPING, state=state, name="s") as sync:
        first = sync.run(rows("gold"))
        assert_accounted(first, read=3)
        # The second run changes u2's plan; its request is refused (a 400, not retried).
        emulator.faults = Faults(fail_nth={1: 400}, apply_to={"edge"})
        second = sync.run(rows("pro"))
        assert (second.rejected, second.unchanged) == (1, 2)
        emulator.faults = Faults()
        third = sync.run(rows("pro"))  # sent again: it was never accepted
        assert (third.changed, third.retried) == (1, 1)

        logged = sync.changes()
        assert [(e.run_id, e.uid, e.outcome) for e in logged] == [
            (third.run_id, "u2", "changed"),
            (second.run_id, "u2", "rejected"),
            *[(first.run_id, uid, "added") for uid in ("u3", "u2", "u1")],
        ]
        changed, rejected = logged[0], logged[1]
        assert rejected.new == changed.new == {"plan": '"pro"'}  # only the changed key
        assert rejected.old == {"plan": '"gold"'}  # what the edge had accepted
        assert rejected.status == 400 and rejected.error
        # After a refusal the key's edge value is unknown (docs/guarantees.md): the log
        # keeps no old value rather than guess.
        assert changed.old == {}
        assert [e.uid for e in sync.changes(uid="u1")] == ["u1"]
        assert [e.uid for e in sync.changes(run_id=second.run_id)] == ["u2"]
        assert [r.run_id for r in sync.history()] == [
            third.run_id,
            second.run_id,
            first.run_id,
        ]
    # Plain SQL: which users were refused, what was sent and what the edge had before.
    refused = sql(
        state,
        "SELECT uid, status, new_values, old_values FROM {t} "
        "WHERE run_id = %s AND outcome = 'rejected'",
        second.run_id,
    )
    assert len(refused) == 1
    uid, status, new, old = refused[0]
    new, old = (v if isinstance(v, dict) else json.loads(v) for v in (new, old))
    assert (uid, status, new, old) == ("u2", 400, {"plan": "pro"}, {"plan": "gold"})


def test_digests_keep_changes_visible_but_not_the_values(state: str) -> None:
    emulator = PersonalizeEmulator(seed=3, management_rate_limit=None)
    with (
        make_client(emulator) as client,
        Sync(
            client, match_on="user_id", mapping=MAPPING, state=state, change_log="digests"
        ) as sync,
    ):
        sync.run(rows("gold"))
        sync.run(rows("pro"))
        entries = sync.changes()
    assert len(entries) == 4
    stored = json.dumps([[dict(e.new), dict(e.old)] for e in entries])
    assert "gold" not in stored and "pro" not in stored and "silver" not in stored
    latest = entries[0]
    assert latest.uid == "u2" and latest.new["plan"] != latest.old["plan"]
    assert all(json.loads(v).startswith("sha256:") for v in latest.new.values() if v)


def test_off_logs_nothing_and_retention_prunes(state: str, monkeypatch: pytest.MonkeyPatch) -> None:
    emulator = PersonalizeEmulator(seed=3, management_rate_limit=None)
    with make_client(emulator) as client:
        with Sync(
            client, match_on="user_id", mapping=MAPPING, state=state, change_log="off"
        ) as sync:
            sync.run(rows("gold"))
            assert sync.changes() == []
        with Sync(
            client, match_on="user_id", mapping=MAPPING, state=state, change_log_days=1
        ) as sync:
            sync.run(rows("pro"))
            assert [e.uid for e in sync.changes()] == ["u2"]
            # Two days later, the next run prunes what is older than a day.
            later = time.time() + 2 * 86_400
            monkeypatch.setattr(time, "time", lambda: later)
            sync.run(rows("pro"))
            assert sync.changes() == []


def test_a_store_without_a_changelog_says_so() -> None:
    class Bare(MemoryState):
        changes = None  # type: ignore[assignment]

    emulator = PersonalizeEmulator(seed=3)
    with make_client(emulator) as client:
        sync = Sync(client, match_on="user_id", mapping=MAPPING, state=Bare())
        with pytest.raises(ConfigurationError, match="keeps no changelog"):
            sync.changes()


def test_bad_change_log_options_are_refused() -> None:
    emulator = PersonalizeEmulator(seed=3)
    with make_client(emulator) as client:
        with pytest.raises(ConfigurationError, match="change_log"):
            Sync(client, match_on="user_id", mapping=MAPPING, change_log="all")  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="change_log_days"):
            Sync(client, match_on="user_id", mapping=MAPPING, change_log_days=0)
        sync = Sync(client, match_on="user_id", mapping=MAPPING)
        with pytest.raises(ConfigurationError, match="change_log"):
            sync.change_log = "everything"  # type: ignore[assignment]
