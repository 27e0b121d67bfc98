"""The sync engine end to end against the emulator: each rule of a run, proven on what the
edge received and what the state store holds."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from contentstack_personalize import ConfigurationError, SyncAbortedError
from contentstack_personalize.sync import (
    EdgeSender,
    Field,
    MemoryState,
    SendOutcome,
    SQLiteState,
    Sync,
)
from contentstack_personalize.testing import PersonalizeEmulator
from tests._invariants import assert_accounted

from .conftest import make_async_client, make_client, patches, people

MAPPING = {"plan": "plan_tier", "ltv": "lifetime_value"}


def new_sync(client: Any, **kwargs: Any) -> Sync:
    kwargs.setdefault("mapping", MAPPING)
    kwargs.setdefault("match_on", "user_id")
    return Sync(client, **kwargs)


class TestIncremental:
    def test_first_run_sends_every_user(self, emulator: PersonalizeEmulator, client: Any) -> None:
        result = new_sync(client).run(people(50))
        assert (result.read, result.added, result.changed, result.unchanged) == (50, 50, 0, 0)
        assert result.status == "succeeded" and result.requests == 50
        assert len(patches(emulator)) == 50
        assert emulator.user_attributes("7") == {"plan_tier": "gold", "lifetime_value": 70}
        assert emulator.user_attributes("8") == {"plan_tier": "silver", "lifetime_value": 80}

    def test_rerun_on_unchanged_data_sends_nothing(
        self, emulator: PersonalizeEmulator, client: Any
    ) -> None:
        sync = new_sync(client)
        sync.run(people(50))
        before = len(patches(emulator))
        result = sync.run(people(50))
        assert len(patches(emulator)) == before
        assert (result.unchanged, result.added, result.changed, result.requests) == (50, 0, 0, 0)

    def test_one_changed_value_sends_one_request_with_one_key(
        self, emulator: PersonalizeEmulator, client: Any
    ) -> None:
        sync = new_sync(client)
        rows = people(20)
        sync.run(rows)
        rows[4]["ltv"] = 12345
        before = len(patches(emulator))
        result = sync.run(rows)
        sent = patches(emulator)[before:]
        assert sent == [("5", {"lifetime_value": 12345})]
        assert (result.changed, result.unchanged) == (1, 19)
        assert emulator.user_attributes("5") == {"plan_tier": "gold", "lifetime_value": 12345}

    def test_new_column_backfills_and_removed_column_stops(
        self, emulator: PersonalizeEmulator, client: Any
    ) -> None:
        state = MemoryState()
        rows = [dict(r, region="eu") for r in people(10)]
        new_sync(client, state=state, mapping={"plan": "plan_tier"}).run(rows)
        before = len(patches(emulator))
        wider = new_sync(
            client, state=state, mapping={"plan": "plan_tier", "region": "sales_region"}
        )
        result = wider.run(rows)
        sent = patches(emulator)[before:]
        assert result.changed == 10
        assert all(body == {"sales_region": "eu"} for _, body in sent)
        # dropping "plan" from the mapping: a changed plan is no longer sent
        rows[0]["plan"] = "bronze"
        before = len(patches(emulator))
        narrow = new_sync(client, state=state, mapping={"region": "sales_region"})
        assert narrow.run(rows).unchanged == 10
        assert len(patches(emulator)) == before

    def test_full_resync_ignores_state(self, emulator: PersonalizeEmulator, client: Any) -> None:
        sync = new_sync(client)
        sync.run(people(10))
        result = sync.run(people(10), full=True)
        assert result.changed == 10 and result.requests == 10
        assert all(
            set(body) == {"plan_tier", "lifetime_value"} for _, body in patches(emulator)[10:]
        )

    def test_state_persists_in_sqlite_across_sync_objects(
        self, emulator: PersonalizeEmulator, client: Any, tmp_path: Path
    ) -> None:
        path = tmp_path / "state.db"
        with new_sync(client, state=str(path)) as sync:
            sync.run(people(30))
        with new_sync(client, state=path) as sync:
            result = sync.run(people(30))
        assert result.unchanged == 30 and result.requests == 0

    def test_syncs_sharing_a_file_do_not_see_each_other(
        self, emulator: PersonalizeEmulator, client: Any, tmp_path: Path
    ) -> None:
        path = tmp_path / "shared.db"
        store = SQLiteState(path)
        a = new_sync(client, state=store, name="a", mapping={"plan": "plan_tier"})
        b = new_sync(client, state=store, name="b", mapping={"plan": "plan_tier"})
        assert a.run(people(5)).added == 5
        assert b.run(people(5)).added == 5  # b has its own state: sends again
        assert a.run(people(5)).unchanged == 5
        assert store.user_count("a") == 5 and store.user_count("b") == 5
        store.close()


class TestFailures:
    def test_rejected_row_is_retried_next_run(
        self, emulator: PersonalizeEmulator, client: Any
    ) -> None:
        sync = new_sync(client)
        emulator.set_faults(fail_nth={3: 400})
        first = sync.run(people(10))
        assert (first.rejected, first.added, first.status) == (1, 9, "partially_failed")
        issue = first.rejected_rows[0]
        assert issue.kind == "rejected" and issue.status == 400 and issue.row == 3
        assert sync.state.load(sync.name, [issue.uid or ""])[issue.uid or ""].failed_attempts == 1
        emulator.clear_faults()
        before = len(patches(emulator))
        second = sync.run(people(10))
        assert [uid for uid, _ in patches(emulator)[before:]] == [issue.uid]
        assert (second.added, second.retried, second.unchanged) == (1, 1, 9)
        assert sync.state.load(sync.name, [issue.uid or ""])[issue.uid or ""].failed_attempts == 0

    def test_transient_errors_are_retried_within_the_run(
        self, emulator: PersonalizeEmulator, client: Any
    ) -> None:
        emulator.set_faults(
            fail_nth={1: 503, 2: 429, 5: "drop", 7: "timeout"}, applied_before_failure=0.0
        )
        result = new_sync(client).run(people(10))
        assert result.added == 10 and result.rejected == 0
        assert len(emulator.users()) == 10

    def test_unknown_project_aborts_and_commits_nothing(
        self, emulator: PersonalizeEmulator
    ) -> None:
        from contentstack_personalize import PersonalizeClient

        bad = PersonalizeClient("0" * 24, transport=emulator.transport(), read_env=False)
        sync = new_sync(bad)
        with pytest.raises(SyncAbortedError) as info:
            sync.run(people(200))
        result = info.value.result
        assert result.status == "aborted" and "NotFoundError" in (result.error or "")
        assert result.read == 200 and result.added == 0
        assert result.not_sent == 200
        assert_accounted(result, read=200)  # every row accounted for, each not-sent one listed
        assert sync.history()[0].status == "aborted"

    def test_rejection_ratio_aborts(self, emulator: PersonalizeEmulator) -> None:
        strict = PersonalizeEmulator(unknown_attribute="reject")
        with make_client(strict) as client:
            sync = new_sync(client, min_sample=20, max_rejection_ratio=0.5, concurrency=4)
            with pytest.raises(SyncAbortedError) as info:
                sync.run(people(500))
        result = info.value.result
        assert result.rejected >= 20 and result.not_sent > 0
        assert result.rejected + result.not_sent == 500
        assert "more than 50%" in (result.error or "")

    def test_abort_can_return_instead_of_raise(self, emulator: PersonalizeEmulator) -> None:
        emulator.set_faults(outage=True)
        with make_client(emulator) as client:
            result = new_sync(client, raise_on_abort=False, min_sample=10, concurrency=2).run(
                people(40)
            )
        assert result.status == "aborted" and result.synced == 0

    def test_outage_mid_run_then_next_run_finishes(self, emulator: PersonalizeEmulator) -> None:
        emulator.set_faults(fail_nth={n: 503 for n in range(200, 2000)})
        with make_client(emulator) as client:
            sync = new_sync(client, min_sample=50, concurrency=4)
            with pytest.raises(SyncAbortedError) as info:
                sync.run(people(400))
            first = info.value.result
            assert 0 < first.added < 400
            emulator.clear_faults()
            second = sync.run(people(400))
        assert second.unchanged == first.added
        assert second.added == 400 - first.added
        assert len(emulator.users()) == 400

    def test_crash_after_n_acknowledgements_loses_nothing(
        self, emulator: PersonalizeEmulator, client: Any, tmp_path: Path
    ) -> None:
        from contentstack_personalize.sync import HttpxSender

        class Crash(Exception):
            pass

        class CrashingSender:
            def __init__(self, inner: EdgeSender, after: int) -> None:
                self.inner, self.after, self.acked = inner, after, 0

            async def send(self, user_uid: str, body: bytes) -> SendOutcome:
                if self.acked >= self.after:
                    raise Crash("process dies here")
                outcome = await self.inner.send(user_uid, body)
                self.acked += 1
                return outcome

            async def aclose(self) -> None:
                await self.inner.aclose()

        async_client = make_async_client(emulator)
        path = tmp_path / "state.db"
        sender = CrashingSender(HttpxSender(async_client), after=37)
        sync = new_sync(client, state=path, sender=sender, concurrency=1, commit_every=10)
        with pytest.raises(Crash):
            sync.run(people(100))
        sync.close()
        assert len(patches(emulator)) == 37
        rerun = new_sync(client, state=path)
        result = rerun.run(people(100))
        sent = [uid for uid, _ in patches(emulator)[37:]]
        assert sorted(sent, key=int) == [str(i) for i in range(38, 101)]
        assert result.unchanged == 37 and result.added == 63
        assert rerun.history()[1].status == "failed"


class TestInvalidRows:
    def test_every_kind_of_bad_uid(self, emulator: PersonalizeEmulator, client: Any) -> None:
        rows: list[Any] = [
            {"user_id": None, "plan": "a"},
            {"user_id": "", "plan": "a"},
            {"user_id": "   ", "plan": "a"},
            {"user_id": "a\r\nb", "plan": "a"},
            {"user_id": "usér", "plan": "a"},
            {"user_id": float("nan"), "plan": "a"},
            {"user_id": 4.5, "plan": "a"},
            {"user_id": True, "plan": "a"},
            {"plan": "a"},
            {"user_id": "dup", "plan": "a"},
            {"user_id": "dup", "plan": "b"},
            ["not", "a", "mapping"],
            {"user_id": 42, "plan": "ok"},
            {"user_id": 43.0, "plan": "ok"},
            {"user_id": Decimal("44"), "plan": "ok"},
        ]
        result = new_sync(client, mapping={"plan": "plan_tier"}).run(rows)
        assert result.read == 15 and result.invalid == 12 and result.added == 3
        reasons = {issue.row: issue.reason for issue in result.invalid_rows}
        assert "null" in reasons[1]
        assert "empty" in reasons[2]
        assert "whitespace" in reasons[3]
        assert "control character" in reasons[4]
        assert "non-ASCII" in reasons[5]
        assert "null" in reasons[6]
        assert "not an integral number" in reasons[7]
        assert "boolean" in reasons[8]
        assert "missing" in reasons[9]
        assert "appears 2 times" in reasons[10] and "appears 2 times" in reasons[11]
        assert "not a mapping" in reasons[12]
        assert sorted(emulator.users()) == ["42", "43", "44"]

    @pytest.mark.parametrize(
        ("rule", "winner"), [("first", {"plan_tier": "a"}), ("last", {"plan_tier": "c"})]
    )
    def test_duplicate_rules(
        self, emulator: PersonalizeEmulator, client: Any, rule: str, winner: dict[str, str]
    ) -> None:
        rows = [{"user_id": "d", "plan": p} for p in "abc"]
        result = new_sync(client, mapping={"plan": "plan_tier"}, on_duplicate=rule).run(rows)
        assert (result.invalid, result.added) == (2, 1)
        assert emulator.user_attributes("d") == winner

    def test_values_that_cannot_be_sent(self, emulator: PersonalizeEmulator, client: Any) -> None:
        rows = [
            {"user_id": 1, "v": float("inf")},
            {"user_id": 2, "v": object()},
            {"user_id": 3, "v": b"\xff\xfe"},
            {"user_id": 4, "v": "\ud800"},
            {"user_id": 5, "v": Decimal("0.1000000000000000000001")},
            {"user_id": 6, "v": {"nested": [1, {"deep": True}]}},
            {"user_id": 7, "v": dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)},
            {"user_id": 8, "v": dt.date(2024, 5, 1)},
            {"user_id": 9, "v": math.nan},
        ]
        result = new_sync(client, mapping={"v": "value"}).run(rows)
        bad = {issue.uid: issue for issue in result.invalid_rows}
        assert set(bad) == {"1", "2", "3", "4", "5"}
        assert all(issue.column == "v" for issue in bad.values())
        assert "finite" in bad["1"].reason and "object" in bad["2"].reason
        assert "UTF-8" in bad["3"].reason and "surrogate" in bad["4"].reason
        assert emulator.user_attributes("6") == {"value": {"nested": [1, {"deep": True}]}}
        assert emulator.user_attributes("7") == {"value": "2024-05-01T12:00:00+00:00"}
        assert emulator.user_attributes("8") == {"value": "2024-05-01"}
        # NaN is null: skipped by default, so user 9 gets no request at all
        assert result.unchanged == 1 and "9" not in emulator.users()

    def test_declared_types_and_coercion(self, emulator: PersonalizeEmulator, client: Any) -> None:
        mapping = {
            "n": Field("count", type=int),
            "f": Field("score", type=float),
            "b": Field("vip", type=bool),
            "d": Field("since", type=dt.date),
            "tags": Field("tags", type=list[str]),
        }
        rows = [
            {"user_id": 1, "n": "10", "f": "2.5", "b": "yes", "d": "2024-01-02", "tags": ["a", 1]},
            {"user_id": 2, "n": 10.0, "f": 3, "b": 0, "d": dt.date(2024, 1, 3), "tags": "solo"},
            {"user_id": 3, "n": "ten", "f": 1, "b": True, "d": "2024-01-01", "tags": []},
            {"user_id": 4, "n": 1, "f": 1, "b": "maybe", "d": "2024-01-01", "tags": []},
            {"user_id": 5, "n": 1.5, "f": 1, "b": True, "d": "2024-01-01", "tags": []},
        ]
        result = new_sync(client, mapping=mapping).run(rows)
        assert emulator.user_attributes("1") == {
            "count": 10,
            "score": 2.5,
            "vip": True,
            "since": "2024-01-02",
            "tags": ["a", "1"],
        }
        assert emulator.user_attributes("2") == {
            "count": 10,
            "score": 3.0,
            "vip": False,
            "since": "2024-01-03",
            "tags": ["solo"],
        }
        bad = {i.uid: i for i in result.invalid_rows}
        assert set(bad) == {"3", "4", "5"}
        assert bad["3"].column == "n" and "not a number" in bad["3"].reason
        assert bad["4"].column == "b" and "boolean" in bad["4"].reason
        assert bad["5"].column == "n" and "integer" in bad["5"].reason

    def test_strict_types_without_coercion(self, client: Any) -> None:
        sync = new_sync(client, mapping={"n": Field("count", type=int, coerce=False)})
        result = sync.run([{"user_id": 1, "n": "10"}])
        assert result.invalid == 1 and "integer" in result.invalid_rows[0].reason

    def test_null_policy(self, emulator: PersonalizeEmulator, client: Any) -> None:
        sync = new_sync(
            client,
            mapping={"plan": "plan_tier", "ltv": Field("lifetime_value", null="send")},
        )
        sync.run([{"user_id": 1, "plan": "gold", "ltv": 5}])
        before = len(patches(emulator))
        sync.run([{"user_id": 1, "plan": None, "ltv": None}])
        assert patches(emulator)[before:] == [("1", {"lifetime_value": None})]
        # the emulator deletes on null by default; plan stays because null is skipped
        assert emulator.user_attributes("1") == {"plan_tier": "gold"}

    def test_static_transform_and_compute(self, emulator: PersonalizeEmulator, client: Any) -> None:
        mapping = [
            Field("email_domain", column="email", transform=lambda e: e.split("@")[1]),
            Field("source", value="warehouse"),
            Field("full_name", compute=lambda row: f"{row['first']} {row['last']}"),
        ]
        rows = [
            {"user_id": 1, "email": "a@example.com", "first": "Ada", "last": "L"},
            {"user_id": 2, "email": "no-at-sign", "first": "B", "last": "C"},
        ]
        result = new_sync(client, mapping=mapping).run(rows)
        assert emulator.user_attributes("1") == {
            "email_domain": "example.com",
            "source": "warehouse",
            "full_name": "Ada L",
        }
        assert result.invalid == 1
        assert result.invalid_rows[0].column == "email"
        assert "transform failed: IndexError" in result.invalid_rows[0].reason


class TestConfiguration:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"match_on": ""}, "match_on"),
            ({"mapping": {}}, "mapping is empty"),
            ({"mapping": {"a": "has space"}}, "not a valid attribute key"),
            ({"mapping": {"a": "k", "b": "k"}}, "mapped more than once"),
            ({"mapping": {"a": 3}}, "attribute key"),
            ({"mapping": {"a": Field("k", type=complex)}}, "unsupported field type"),
            ({"on_duplicate": "keep"}, "on_duplicate"),
            ({"concurrency": 0}, "concurrency"),
            ({"state": 42}, "state must be"),
        ],
    )
    def test_invalid_configuration(self, client: Any, kwargs: dict[str, Any], message: str) -> None:
        with pytest.raises(ConfigurationError, match=message):
            new_sync(client, **kwargs)

    def test_missing_column_fails_before_any_request(
        self, emulator: PersonalizeEmulator, client: Any
    ) -> None:
        sync = new_sync(client, mapping={"plan": "plan_tier", "nope": "x"})
        with pytest.raises(ConfigurationError, match=r"\['nope'\] not found"):
            sync.run(people(3))
        assert patches(emulator) == []

    def test_newer_state_schema_is_refused(self, client: Any, tmp_path: Path) -> None:
        path = tmp_path / "future.db"
        db = sqlite3.connect(path)
        db.execute("PRAGMA user_version=99")
        db.close()
        with pytest.raises(ConfigurationError, match="newer version"):
            new_sync(client, state=path)

    def test_foreign_sqlite_file_is_refused(self, client: Any, tmp_path: Path) -> None:
        path = tmp_path / "other.db"
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE customers (id INTEGER)")
        db.close()
        with pytest.raises(ConfigurationError, match="not a sync state store"):
            new_sync(client, state=path)

    def test_not_a_database(self, client: Any, tmp_path: Path) -> None:
        path = tmp_path / "garbage.db"
        path.write_bytes(b"this is not sqlite" * 100)
        with pytest.raises(ConfigurationError, match="not a usable state store"):
            new_sync(client, state=path)


class TestPlan:
    def test_plan_sends_nothing_and_lists_changes(
        self, emulator: PersonalizeEmulator, client: Any
    ) -> None:
        sync = new_sync(client)
        sync.run(people(3))
        rows = people(4)
        rows[0]["plan"] = "platinum"
        before = len(patches(emulator))
        with sync.plan(rows) as plan:
            assert len(patches(emulator)) == before
            assert (plan.added, plan.changed, plan.unchanged, plan.requests) == (1, 1, 2, 2)
            changes = [tuple(c) for c in plan]
        assert changes == [
            ("1", "plan_tier", "gold", "platinum"),
            ("4", "plan_tier", None, "silver"),
            ("4", "lifetime_value", None, 40),
        ]
        # planning did not change the state: the run still sends both
        assert sync.run(rows).requests == 2


class TestRunners:
    async def test_run_inside_a_running_event_loop(
        self, emulator: PersonalizeEmulator, client: Any
    ) -> None:
        # what a notebook does: call the blocking API while a loop is running in this thread
        result = new_sync(client).run(people(20))
        assert result.added == 20 and len(emulator.users()) == 20

    async def test_arun_with_async_client(self, emulator: PersonalizeEmulator) -> None:
        async with make_async_client(emulator) as client:
            sync = new_sync(client)
            result = await sync.arun(people(25))
            again = await sync.arun(people(25))
        assert result.added == 25 and again.unchanged == 25

    def test_user_http_client_uses_threads(self, emulator: PersonalizeEmulator) -> None:
        import httpx

        from contentstack_personalize import PersonalizeClient

        http = httpx.Client(transport=emulator.transport())
        client = PersonalizeClient(emulator.project_uid, http_client=http, read_env=False)
        result = new_sync(client, concurrency=4).run(people(30))
        assert result.added == 30 and len(emulator.users()) == 30
        http.close()

    def test_requests_per_second_cap(self, emulator: PersonalizeEmulator, client: Any) -> None:
        import time

        start = time.monotonic()
        new_sync(client, requests_per_second=50).run(people(75))
        assert time.monotonic() - start >= 0.9

    def test_exchange_hooks_see_fan_out(self, emulator: PersonalizeEmulator, client: Any) -> None:
        seen: list[Any] = []
        client.add_exchange_hook(seen.append)
        new_sync(client).run(people(5))
        assert sorted(e.user_uid for e in seen) == ["1", "2", "3", "4", "5"]

    async def test_cancelling_arun_commits_what_was_acknowledged(
        self, emulator: PersonalizeEmulator
    ) -> None:
        emulator.set_faults(latency=0.01)
        async with make_async_client(emulator) as client:
            sync = new_sync(client, concurrency=2)
            task = asyncio.ensure_future(sync.arun(people(400)))
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            done = len(emulator.users())
            assert 0 < done < 400
            emulator.clear_faults()
            result = await sync.arun(people(400))
        # at-least-once: a request in flight at cancel time may be resent, nothing is lost
        assert result.unchanged >= done - 2 and result.unchanged + result.added == 400
        assert len(emulator.users()) == 400
        assert sync.history()[1].status == "aborted"
