"""A real Sync against the emulator, then alerts evaluated on its result and its state store:
an outage triggers RunFailed (once), recovery resolves it, and a shrinking source trips
RowsDropped against the run history the engine wrote."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import respx

from contentstack_personalize.alerts import (
    Alert,
    Alerts,
    RejectedAbove,
    RowsDropped,
    RunFailed,
    Webhook,
    verify_signature,
)
from contentstack_personalize.sync import Sync
from contentstack_personalize.testing import PersonalizeEmulator
from tests.sync.conftest import make_client, people

HOOK = "https://ops.example.com/hooks/personalize"


def test_alerts_over_real_runs(tmp_path: Path) -> None:
    emulator = PersonalizeEmulator(seed=1)
    seen: list[Alert] = []
    alerts = Alerts(
        rules=[RunFailed(severity="critical"), RejectedAbove(percent=5), RowsDropped(percent=50)],
        sinks=[seen.append, Webhook(HOOK, secret="e2e-secret-123")],
    )
    with (
        make_client(emulator) as client,
        Sync(
            client,
            match_on="user_id",
            mapping={"plan": "plan_tier", "ltv": "lifetime_value"},
            state=str(tmp_path / "state.db"),
            raise_on_abort=False,
            min_sample=10,
            concurrency=2,
        ) as sync,
        respx.mock() as router,  # the emulator's transport is not touched by respx
    ):
        hook = router.post(HOOK).mock(return_value=httpx.Response(200))

        first = sync.run(people(100))
        assert first.status == "succeeded"
        assert alerts.evaluate(first, sync.state) == []

        emulator.set_faults(outage=True)
        down = sync.run(people(100, start=200))
        assert down.status == "aborted"
        outcomes = alerts.evaluate(down, sync.state)
        assert sorted((o.rule, o.sink, o.ok) for o in outcomes) == [
            ("rejected_above_5", "list.append", True),
            ("rejected_above_5", "webhook", True),
            ("run_failed", "list.append", True),
            ("run_failed", "webhook", True),
        ]
        body = hook.calls.last.request.content
        assert verify_signature(
            body, hook.calls.last.request.headers["x-signature-256"], "e2e-secret-123"
        )
        assert json.loads(body)["sync_name"] == sync.name

        # Still down: nobody is told twice.
        again = sync.run(people(100, start=200))
        assert again.status == "aborted"
        assert alerts.evaluate(again, sync.state) == []

        emulator.set_faults()
        back = sync.run(people(30, start=200))  # recovers, but the source shrank to 30 rows
        assert back.status == "succeeded"
        outcomes = alerts.evaluate(back, sync.state)

    told = [(a.rule, a.action) for a in seen]
    assert told == [
        ("run_failed", "trigger"),
        ("rejected_above_5", "trigger"),
        ("run_failed", "resolve"),
        ("rejected_above_5", "resolve"),
        ("rows_dropped_50", "trigger"),
    ]
    dropped = seen[-1]
    assert dropped.details["previous_read"] == 100 and dropped.details["read"] == 30
    assert seen[0].severity == "critical"
    assert "stopped" in seen[0].message or "aborted" in seen[0].message
    assert hook.call_count == 5
