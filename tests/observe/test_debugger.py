"""The debugger: redaction, memory bounds, sampling, search, streaming export during a real run."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from contentstack_personalize import AuthToken, ConfigurationError, Exchange
from contentstack_personalize.debugger import Debugger, DebugRecord, read_jsonl
from contentstack_personalize.sync import Sync
from contentstack_personalize.testing import PersonalizeEmulator
from tests.sync.conftest import make_async_client, make_client, people

SECRET = "S3CR3T-MARKER-do-not-leak"


def exchange(
    *,
    uid: str | None = "u1",
    status: int | None = 200,
    attempt: int = 1,
    will_retry: bool = False,
    request_body: str | None = '{"plan":"gold"}',
    response_body: str | None = "User Attributes added successfully",
    headers: dict[str, str] | None = None,
    url: str = "https://personalize-edge.contentstack.com/user-attributes",
    error: str | None = None,
    started_at: float = 1_700_000_000.0,
) -> Exchange:
    return Exchange(
        api="edge",
        method="PATCH",
        url=url,
        request_headers=headers or {"x-cs-personalize-user-uid": uid or ""},
        request_body=request_body,
        status=status,
        response_headers={"content-type": "text/plain"},
        response_body=response_body,
        started_at=started_at,
        duration=0.01,
        attempt=attempt,
        user_uid=uid,
        error=error,
        will_retry=will_retry,
    )


def hostile_exchange() -> Exchange:
    """An exchange as a buggy code path might hand over: secrets not yet redacted anywhere."""
    return exchange(
        headers={
            "authtoken": SECRET,
            "Authorization": f"Bearer {SECRET}",
            "Cookie": f"session={SECRET}",
            "x-proxy-token": SECRET,
        },
        url=f"https://developerhub-api.contentstack.com/token?client_secret={SECRET}&x=1",
        request_body=f'{{"user": {{"email": "a@b.c", "password": "{SECRET}"}}}}',
        response_body=f'{{"access_token": "{SECRET}", "refresh_token": "{SECRET}"}}',
        status=401,
        error=f"ConnectError: refresh_token={SECRET} rejected",
    )


class TestRedaction:
    def test_nothing_secret_reaches_records_exports_persistence_or_repr(
        self, tmp_path: Path
    ) -> None:
        export = tmp_path / "live.jsonl"
        debugger = Debugger(export=export, secret_headers=["X-Proxy-Token"])
        debugger(hostile_exchange())
        debugger.close()
        after = tmp_path / "after.jsonl"
        debugger.export_jsonl(after)
        from contentstack_personalize.sync import MemoryState

        store = MemoryState()
        debugger.persist_to(store, "s", "run1")

        record = debugger.records[0]
        texts = {
            "record": json.dumps(record.to_dict()),
            "repr(record)": repr(record),
            "repr(debugger)": repr(debugger),
            "summary": debugger.summary(),
            "html": debugger._repr_html_(),
            "live export": export.read_text(),
            "after export": after.read_text(),
            "stored": json.dumps(store.exchanges("s")),
        }
        leaks = [name for name, text in texts.items() if SECRET in text]
        assert leaks == []
        # The exchange is still useful: the shape of what was sent is there.
        assert record.request_headers["authtoken"] == "[REDACTED]"
        assert record.request_headers["x-proxy-token"] == "[REDACTED]"
        assert '"email": "a@b.c"' in (record.request_body or "")
        assert record.status == 401 and record.error is not None

    @pytest.mark.parametrize(
        "error",
        [
            f"ProxyError: proxy refused {{'host': 'edge', 'authtoken': '{SECRET}'}}",
            f"ProxyError: refused {{'Authorization': 'Bearer {SECRET}', 'x': '1'}}",
            f"RemoteProtocolError: echoed request\nAuthorization: Bearer {SECRET}\nHost: x",
        ],
    )
    def test_errors_echoing_request_headers_are_masked(self, error: str) -> None:
        debugger = Debugger()
        debugger(exchange(status=None, error=error, response_body=error))
        record = debugger.records[0]
        assert SECRET not in json.dumps(record.to_dict())
        assert "[REDACTED]" in (record.error or "")

    def test_a_real_client_login_token_never_shows(self) -> None:
        emulator = PersonalizeEmulator(seed=3)
        emulator.add_attribute("plan")
        token = emulator.authtoken
        debugger = Debugger()
        with (
            make_client(emulator, auth=AuthToken(token)) as client,
            debugger.attach(client),
        ):
            client.attributes.list()
        assert len(debugger) == 1
        assert token not in json.dumps([r.to_dict() for r in debugger.records])


class TestBounds:
    def test_memory_holds_at_most_max_records_and_prefers_failures(self) -> None:
        debugger = Debugger(max_records=10)
        for i in range(5):
            debugger(exchange(uid=f"bad{i}", status=400, response_body="nope"))
        for i in range(100):
            debugger(exchange(uid=f"ok{i}"))
        assert len(debugger) == 10
        failed = debugger.failed()
        assert [r.user_uid for r in failed] == [f"bad{i}" for i in range(5)]
        # The successes kept are the newest ones.
        oks = [r.user_uid for r in debugger.records if r.ok]
        assert oks == [f"ok{i}" for i in range(95, 100)]
        stats = debugger.stats()
        assert (stats["seen"], stats["held"], stats["evicted"]) == (105, 10, 95)
        assert debugger.status_counts() == {400: 5, 200: 100}

    def test_retried_attempts_are_kept_like_failures(self) -> None:
        debugger = Debugger(max_records=3)
        debugger(exchange(uid="r", status=503, will_retry=True))
        debugger(exchange(uid="r", status=200, attempt=2))
        for i in range(10):
            debugger(exchange(uid=f"ok{i}"))
        kept = [(r.user_uid, r.status, r.attempt) for r in debugger.records]
        assert kept == [("r", 503, 1), ("r", 200, 2), ("ok9", 200, 1)]

    def test_when_everything_failed_the_oldest_failure_goes(self) -> None:
        debugger = Debugger(max_records=2)
        for i in range(4):
            debugger(exchange(uid=f"bad{i}", status=500))
        assert [r.user_uid for r in debugger.records] == ["bad2", "bad3"]

    def test_bodies_are_cut_past_max_body_bytes(self) -> None:
        debugger = Debugger(max_body_bytes=10)
        debugger(exchange(request_body="x" * 50, response_body="é" * 20))
        record = debugger.records[0]
        assert record.request_body == "x" * 10 + "... [40 more bytes]"
        assert record.response_body is not None
        assert record.response_body.startswith("é" * 5 + "... [30 more bytes]")

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"max_records": 0},
            {"sample_success": 1.5},
            {"max_body_bytes": -1},
            {"retention_days": 0},
            {"export": 42},
        ],
    )
    def test_bad_settings_are_refused(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises(ConfigurationError):
            Debugger(**kwargs)

    def test_an_unwritable_export_path_is_refused_up_front(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError, match="writable path"):
            Debugger(export=tmp_path / "no-such-dir" / "x.jsonl")


class TestSampling:
    def kept_uids(self, seed: int, order: list[int]) -> set[str]:
        debugger = Debugger(sample_success=0.3, seed=seed)
        for i in order:
            debugger(exchange(uid=f"user-{i}"))
        return {r.user_uid for r in debugger.records if r.user_uid}

    def test_same_seed_keeps_the_same_users_whatever_the_order(self) -> None:
        forward = self.kept_uids(7, list(range(1000)))
        backward = self.kept_uids(7, list(reversed(range(1000))))
        assert forward == backward
        assert 200 < len(forward) < 400  # about 30%

    def test_another_seed_keeps_other_users(self) -> None:
        assert self.kept_uids(7, list(range(1000))) != self.kept_uids(8, list(range(1000)))

    def test_failures_and_retries_are_never_sampled_out(self) -> None:
        debugger = Debugger(sample_success=0.0)
        debugger(exchange(uid="a"))
        debugger(exchange(uid="b", status=429, will_retry=True))
        debugger(exchange(uid="b", status=200, attempt=2))
        debugger(exchange(uid="c", status=None, error="ReadTimeout"))
        assert [r.user_uid for r in debugger.records] == ["b", "b", "c"]
        assert debugger.stats()["sampled_out"] == 1
        assert debugger.status_counts() == {200: 2, 429: 1, None: 1}


class TestSearch:
    def test_for_user_failed_for_run_and_iteration(self) -> None:
        debugger = Debugger()
        debugger.label(sync_name="s", run_id="r1")
        debugger(exchange(uid="a"))
        debugger(exchange(uid="b", status=400))
        debugger.label(sync_name="s", run_id="r2")
        debugger(exchange(uid="a", status=500))
        assert [(r.status, r.run_id) for r in debugger.for_user("a")] == [(200, "r1"), (500, "r2")]
        assert [r.user_uid for r in debugger.failed()] == ["b", "a"]
        assert [r.user_uid for r in debugger.for_run("r1")] == ["a", "b"]
        assert debugger.for_user("nobody") == []
        assert [r.seq for r in debugger] == [1, 2, 3]

    def test_an_empty_debugger_is_still_truthy(self) -> None:
        debugger = Debugger()
        assert len(debugger) == 0 and bool(debugger)
        assert (debugger or None) is debugger

    def test_records_round_trip_through_dicts(self, tmp_path: Path) -> None:
        debugger = Debugger()
        debugger(exchange(uid="a", status=400, error="x"))
        path = tmp_path / "x.jsonl"
        assert debugger.export_jsonl(path) == 1
        assert read_jsonl(path) == debugger.records
        assert DebugRecord.from_dict({**debugger.records[0].to_dict(), "future": 1}).status == 400


class TestThreads:
    def test_concurrent_hooks_lose_nothing(self) -> None:
        buffer = io.StringIO()
        debugger = Debugger(max_records=500, export=buffer, flush_every=7)

        def feed(t: int) -> None:
            for i in range(250):
                debugger(exchange(uid=f"t{t}-{i}", status=500 if i % 50 == 0 else 200))

        threads = [threading.Thread(target=feed, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        debugger.flush()
        lines = buffer.getvalue().splitlines()
        assert len(lines) == 2000 and debugger.seen == 2000
        assert len({json.loads(line)["seq"] for line in lines}) == 2000
        assert len(debugger) == 500
        assert len(debugger.failed()) == 40  # 5 per thread, all kept


class TestAgainstTheEmulator:
    def test_streaming_export_during_a_run_with_bounded_memory(self, tmp_path: Path) -> None:
        emulator = PersonalizeEmulator(seed=5)
        emulator.set_faults(server_error=0.02, seed=11)
        export = tmp_path / "run.jsonl"
        debugger = Debugger(max_records=200, export=export, flush_every=50)
        sizes: list[int] = []

        def watch(_: Exchange) -> None:
            # Called after the debugger (hooks run in order): the file must already hold lines.
            if debugger.seen % 500 == 0:
                sizes.append(export.stat().st_size)

        n = 3000
        with make_client(emulator) as client:
            sync = Sync(client, match_on="user_id", mapping={"plan": "plan"})
            client.add_exchange_hook(debugger)
            client.add_exchange_hook(watch)
            try:
                result = sync.run(people(n))
            finally:
                client.remove_exchange_hook(watch)
                client.remove_exchange_hook(debugger)
                debugger.close()

        assert result.added == n
        retries = emulator.count("edge", "PATCH", "/user-attributes", status=503)
        assert retries > 0
        assert debugger.seen == n + retries
        # The file grew while the run was going, and holds every exchange in the end.
        assert len(sizes) >= 5 and sizes[0] > 0
        assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
        lines = export.read_text().splitlines()
        assert len(lines) == n + retries
        # Memory held only the bound, and every failure and retry is among what it held.
        assert len(debugger) == 200
        assert len(debugger.failed_attempts()) == retries
        assert debugger.failed() == []  # every 503 succeeded on retry: no request failed
        stats = debugger.stats()
        assert (stats["attempts"], stats["retried"]) == (n + retries, retries)
        assert (stats["requests"], stats["succeeded"], stats["failed"]) == (n, n, 0)
        assert all(r.status == 503 or r.attempt > 1 for r in debugger.records if r.notable)
        failed_uid = debugger.failed_attempts()[0].user_uid
        assert failed_uid is not None
        history = debugger.for_user(failed_uid)
        assert [r.status for r in history][:1] == [503] and history[-1].ok

    async def test_async_client_exchanges_are_recorded(self) -> None:
        emulator = PersonalizeEmulator(seed=6)
        debugger = Debugger()
        async with make_async_client(emulator) as client:
            with debugger.attach(client, sync_name="s", run_id="r"):
                await client.users.set_attributes("user-9", {"plan": "gold"})
            await client.users.set_attributes("user-10", {"plan": "gold"})  # detached
        [record] = debugger.records
        assert (record.user_uid, record.status, record.run_id) == ("user-9", 200, "r")
        assert record.request_body == '{"plan":"gold"}'

    def test_a_run_over_loopback_http_is_recorded(self) -> None:
        """Whatever sender the engine picks for a real URL, attaching to the client is enough."""
        from contentstack_personalize import PersonalizeClient
        from tests.sync.conftest import FAST_RETRY

        emulator = PersonalizeEmulator(seed=8)
        emulator.set_faults(fail_nth={5: 503})
        debugger = Debugger()
        with emulator.serve() as server:
            client = PersonalizeClient(
                emulator.project_uid,
                edge_url=server.edge_url,
                management_url=server.management_url,
                read_env=False,
                retry=FAST_RETRY,
            )
            with client, debugger.attach(client, sync_name="s", run_id="r"):
                result = Sync(client, match_on="user_id", mapping={"plan": "plan"}).run(people(40))
        assert result.added == 40
        assert debugger.seen == 41
        assert debugger.failed() == []
        assert [r.status for r in debugger.failed_attempts()] == [503]
        uid = debugger.failed_attempts()[0].user_uid
        assert uid is not None
        assert [r.attempt for r in debugger.for_user(uid)] == [1, 2]
        assert all(r.run_id == "r" for r in debugger.records)


class TestWhatAUserSees:
    def test_time_is_a_timezone_aware_datetime_in_pandas(self) -> None:
        pd = pytest.importorskip("pandas")
        debugger = Debugger()
        debugger(exchange(status=200))
        frame = debugger.to_pandas()
        assert isinstance(frame["time"].dtype, pd.DatetimeTZDtype)
        assert str(frame["time"].dt.tz) == "UTC"

    def test_one_header_casing_for_edge_and_management(self) -> None:
        from contentstack_personalize import PersonalizeClient

        emulator = PersonalizeEmulator(seed=3)
        debugger = Debugger()
        with emulator.serve() as server:
            client = PersonalizeClient(
                emulator.project_uid,
                auth=AuthToken(emulator.authtoken),
                edge_url=server.edge_url,
                management_url=server.management_url,
                management_rate_limit=None,
                read_env=False,
            )
            with client, debugger.attach(client):
                Sync(
                    client,
                    match_on="user_id",
                    mapping={"plan": "plan"},
                    create_missing_attributes=True,
                ).run(people(3))
        apis = {r.api for r in debugger.records}
        assert {"edge", "management"} <= apis
        for record in debugger.records:
            names = [*record.request_headers, *record.response_headers]
            assert names == [n.lower() for n in names], (record.api, names)
        edge = next(r for r in debugger.records if r.api == "edge")
        assert "host" in edge.request_headers and "user-agent" in edge.request_headers

    def test_attempts_and_final_outcomes_are_counted_apart(self) -> None:
        debugger = Debugger()
        debugger(exchange(status=503, will_retry=True, uid="a"))
        debugger(exchange(status=200, attempt=2, uid="a"))
        debugger(exchange(status=400, uid="b"))
        stats = debugger.stats()
        assert (stats["attempts"], stats["retried"], stats["failed_attempts"]) == (3, 1, 2)
        assert (stats["requests"], stats["succeeded"], stats["failed"]) == (2, 1, 1)
        assert [r.user_uid for r in debugger.failed()] == ["b"]
        assert "2 requests: 1 succeeded, 1 failed; 1 attempts retried" in debugger.summary()
