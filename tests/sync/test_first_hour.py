"""What a new user meets in the first hour: errors that name the cause and the next step, one
wording for invalid rows, a responsive event loop while a DataFrame is read, a cheap rerun."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from contentstack_personalize import ConfigurationError, Field
from contentstack_personalize.sync import MemoryState, Sync
from contentstack_personalize.testing import PersonalizeEmulator
from tests.sync.conftest import make_client

ROOT = Path(__file__).resolve().parents[2]


def test_an_error_from_run_shows_only_its_real_cause(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(
            """
            from contentstack_personalize import PersonalizeClient
            from contentstack_personalize.sync import Sync
            from contentstack_personalize.testing import PersonalizeEmulator

            emulator = PersonalizeEmulator(seed=1)
            client = PersonalizeClient(
                emulator.project_uid, transport=emulator.transport(), read_env=False
            )
            Sync(client, match_on="user_id", mapping={"plan": "plan"}).run([{"id": 1}])
            """
        )
    )
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.returncode == 1
    assert "ConfigurationError" in proc.stderr
    assert "no running event loop" not in proc.stderr
    assert "During handling of the above exception" not in proc.stderr


def test_every_problem_of_a_row_is_reported(client: Any) -> None:
    mapping = {
        "a": Field("a", type=int),
        "b": Field("b", type=int),
        "c": Field("c", type=bool),
    }
    rows = [{"user_id": "u1", "a": "x", "b": "y", "c": "maybe"}]
    result = Sync(client, match_on="user_id", mapping=mapping).run(rows)
    (issue,) = result.invalid_rows
    assert issue.column == "a"
    assert "'x' is not" in issue.reason
    assert "column 'b': 'y' is not" in issue.reason
    assert "column 'c': 'maybe' is not a boolean" in issue.reason


def test_many_problems_are_bounded(client: Any) -> None:
    mapping = {f"c{i}": Field(f"c{i}", type=int) for i in range(12)}
    rows = [{"user_id": "u1", **{f"c{i}": "x" for i in range(12)}}]
    (issue,) = Sync(client, match_on="user_id", mapping=mapping).run(rows).invalid_rows
    assert "and 7 more columns" in issue.reason
    assert len(issue.reason) < 600


@pytest.mark.parametrize(
    ("source", "typo", "hint"),
    [
        ("csv", "user_di", "'user_di': did you mean 'user_id'?"),
        ("rows", "usr_id", "'usr_id': did you mean 'user_id'?"),
        ("rows", "User-ID", "'User-ID': did you mean 'user_id'?"),
    ],
)
def test_a_misspelled_column_suggests_the_right_one(
    client: Any, tmp_path: Path, source: str, typo: str, hint: str
) -> None:
    rows: Any = [{"user_id": "u1", "plan": "gold"}]
    if source == "csv":
        path = tmp_path / "users.csv"
        path.write_text("user_id,plan\nu1,gold\n")
        rows = str(path)
    with pytest.raises(ConfigurationError) as caught:
        Sync(client, match_on=typo, mapping={"plan": "plan"}).run(rows)
    assert hint in str(caught.value)


@pytest.mark.parametrize("key", ["country", "COUNTRY", "Device_Type", "time_of_day"])
def test_a_preset_attribute_name_is_refused_when_the_sync_is_built(client: Any, key: str) -> None:
    with pytest.raises(ConfigurationError, match="preset attribute") as caught:
        Sync(client, match_on="user_id", mapping={"col": key})
    assert "create_missing_attributes cannot help" in str(caught.value)
    assert f"customer_{key.lower()}" in str(caught.value)


@pytest.mark.parametrize("key", ["plan", "Plan_2", "ltv_usd", "A", "x" * 100])
def test_documented_key_characters_are_accepted(client: Any, key: str) -> None:
    assert Sync(client, match_on="user_id", mapping={"col": key}).keys == [key]


@pytest.mark.parametrize("key", ["has-dash", "has.dot", "has space", "caf\u00e9", "x" * 101])
def test_other_key_characters_are_refused_saying_which_are_allowed(client: Any, key: str) -> None:
    with pytest.raises(ConfigurationError, match="ASCII letters, digits and '_'"):
        Sync(client, match_on="user_id", mapping={"col": key})


def test_plan_and_run_word_invalid_rows_the_same(client: Any) -> None:
    rows = [{"user_id": None, "plan": "gold"}, {"user_id": "u2", "plan": "gold"}]
    sync = Sync(client, match_on="user_id", mapping={"plan": "plan"})
    with sync.plan(rows) as plan:
        planned = plan.summary()
    ran = sync.run(rows).summary()
    line = "invalid: row 1: column 'user_id': the user UID is null"
    assert line in planned and line in ran
    assert "uid=None" not in planned


async def test_reading_a_dataframe_lets_the_event_loop_run(emulator: PersonalizeEmulator) -> None:
    pd = pytest.importorskip("pandas")
    n = 200_000
    frame = pd.DataFrame({"user_id": [f"u{i}" for i in range(n)], "plan": ["gold"] * n})
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    with make_client(emulator) as client:
        # One chunk for the whole frame: before, the loop got no turn until it was all mapped.
        sync = Sync(client, match_on="user_id", mapping={"plan": "plan"}, chunk_size=1_000_000)
        beat = asyncio.create_task(heartbeat())
        plan = await sync.aplan(frame)
        beat.cancel()
        plan.close()
    # Before, the loop got no turn until all rows were mapped (one or two ticks in all).
    assert ticks >= 5, ticks


def test_a_rerun_needs_no_management_call(emulator: PersonalizeEmulator) -> None:
    from contentstack_personalize import AuthToken

    rows = [{"user_id": f"u{i}", "plan": "gold"} for i in range(5)]
    with make_client(emulator, auth=AuthToken(emulator.authtoken)) as client:
        sync = Sync(
            client,
            match_on="user_id",
            mapping={"plan": "plan"},
            state=MemoryState(),
            create_missing_attributes=True,
        )
        sync.run(rows)
        before = len([r for r in emulator.requests if r.api == "management"])
        rows[0]["plan"] = "silver"
        assert sync.run(rows).changed == 1
        after = len([r for r in emulator.requests if r.api == "management"])
    assert after == before


def test_a_management_outage_during_preflight_is_an_abort_with_a_result(
    emulator: PersonalizeEmulator,
) -> None:
    from contentstack_personalize import AuthToken, SyncAbortedError

    emulator.set_faults(outage=True, apply_to=["management"])
    with make_client(emulator, auth=AuthToken(emulator.authtoken)) as client:
        sync = Sync(client, match_on="user_id", mapping={"plan": "plan"}, raise_on_abort=False)
        result = sync.run([{"user_id": "u1", "plan": "gold"}])
        assert result.status == "aborted" and result.requests == 0
        assert "pre-flight check against the Management API failed" in (result.error or "")
        assert sync.history()[0].status == "aborted"
        strict = Sync(client, match_on="user_id", mapping={"plan": "plan"}, name="strict")
        with pytest.raises(SyncAbortedError) as caught:
            strict.run([{"user_id": "u1", "plan": "gold"}])
        assert type(caught.value.cause).__name__ == "ServerError"
    assert not emulator.users()


def test_the_spool_goes_where_the_user_says_and_is_removed(client: Any, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    seen: list[list[str]] = []

    def rows() -> Any:
        for i in range(3):
            seen.append(sorted(p.name for p in spool.iterdir()))
            yield {"user_id": f"u{i}", "plan": "gold"}

    sync = Sync(client, match_on="user_id", mapping={"plan": "plan"}, spool_dir=spool)
    assert sync.run(rows()).added == 3
    assert seen[0] and seen[0][0].startswith("personalize-spool-")  # on the chosen disk...
    assert list(spool.iterdir()) == []  # ...and gone after the run
    with pytest.raises(ConfigurationError, match="not a directory"):
        Sync(client, match_on="user_id", mapping={"plan": "plan"}, spool_dir=tmp_path / "nope")
