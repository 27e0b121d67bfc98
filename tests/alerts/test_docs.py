"""The code in docs/alerts.md that users copy is correct: the signature check verifies what
Webhook sends, and the custom rule example works."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from contentstack_personalize import AuthToken, PersonalizeError
from contentstack_personalize.alerts import Alerts, Webhook
from contentstack_personalize.sync import MemoryState, Sync
from contentstack_personalize.testing import PersonalizeEmulator
from tests.sync.conftest import make_client

from .conftest import make_result

PAGE = Path(__file__).resolve().parents[2] / "docs" / "alerts.md"
BLOCKS: list[str] = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.DOTALL)


def block_with(text: str) -> str:
    (found,) = [b for b in BLOCKS if text in b]
    return found


def test_documented_signature_check_verifies_a_real_webhook_request() -> None:
    namespace: dict[str, Any] = {}
    exec(block_with("def verify("), namespace)
    verify = namespace["verify"]
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    hook = Webhook(
        "https://ops.example.com/h", secret="doc-secret", transport=httpx.MockTransport(handler)
    )
    outcomes = Alerts(rules=_rules(), sinks=[hook]).evaluate(
        make_result(status="failed"), MemoryState(), previous=None
    )
    assert [o.ok for o in outcomes] == [True]
    (request,) = sent
    header = request.headers["X-Signature-256"]
    assert verify(request.content, header, b"doc-secret") is True
    assert verify(request.content, header, b"other") is False
    assert verify(request.content + b"x", header, b"doc-secret") is False


def test_documented_custom_rule_works() -> None:
    namespace: dict[str, Any] = {}
    exec(block_with("class NothingSynced"), namespace)
    rule = namespace["NothingSynced"](severity="error")
    assert rule.name == "nothing_synced"
    assert rule.check(make_result(read=5, added=0, rejected=5), None).failing is True
    assert rule.check(make_result(), None).failing is False


def _rules() -> list[Any]:
    from contentstack_personalize.alerts import RunFailed

    return [RunFailed()]


def test_documented_setup_passes_the_alerts_to_the_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first example of the page runs as written (sinks on respx) and alerts through
    ``Sync(alerts=...)``, not by evaluating a returned result."""
    block = BLOCKS[0]
    assert "alerts=alerts" in block and ".evaluate(result" not in block
    monkeypatch.chdir(tmp_path)  # the example's state file
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/doc")
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", "R0doc-routing-key")
    emulator = PersonalizeEmulator(seed=5)
    rows = [{"user_id": f"u{i}", "plan": "gold" if i % 4 else None} for i in range(20)]
    rows += [{"user_id": "", "plan": "gold"}] * 5  # 5 of 25 invalid: InvalidAbove(10) fails
    with make_client(emulator) as client, respx.mock(assert_all_called=False) as router:
        slack = router.post("https://hooks.slack.com/services/T0/B0/doc").mock(
            return_value=httpx.Response(200, text="ok")
        )
        pagerduty = router.post("https://events.pagerduty.com/v2/enqueue").mock(
            return_value=httpx.Response(202)
        )
        exec(block, {"client": client, "mapping": {"plan": "plan"}, "rows": rows})
    assert capsys.readouterr().out.splitlines() == ["invalid_above_10 trigger to slack: delivered"]
    assert slack.call_count == 1 and pagerduty.call_count == 0  # a warning: not paged


def test_documented_evaluate_yourself_covers_a_run_that_raises(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The "Evaluating yourself" snippet alerts on a run that raises before sending anything
    (the Management API down during the pre-flight)."""
    emulator = PersonalizeEmulator(seed=5)
    alerts = Alerts(rules=_rules(), sinks=[lambda alert: None])
    with (
        make_client(emulator, auth=AuthToken(emulator.authtoken)) as client,
        Sync(
            client,
            match_on="user_id",
            mapping={"plan": "plan"},
            state=str(tmp_path / "s.db"),
            create_missing_attributes=True,
        ) as sync,
    ):
        emulator.set_faults(outage=True, apply_to={"management"})
        with pytest.raises(PersonalizeError):
            exec(block_with("evaluate_latest(sync)"), {"sync": sync, "alerts": alerts, "rows": []})
    assert capsys.readouterr().out.splitlines() == ["run_failed trigger to <lambda>: delivered"]


def test_quickstart_and_sync_pages_alert_through_the_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The alerts snippets of docs/quickstart.md and docs/sync.md build a Sync that alerts
    (once) on a run that raises during the pre-flight."""
    from contentstack_personalize import Field

    docs = PAGE.parent
    quickstart = (docs / "quickstart.md").read_text()
    sync_page = (docs / "sync.md").read_text()
    snippets = [
        b
        for page in (quickstart, sync_page)
        for b in re.findall(r"```python\n(.*?)```", page, re.DOTALL)
        if "alerts=Alerts(" in b
    ]
    assert len(snippets) == 2
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/qs")
    for snippet in snippets:
        emulator = PersonalizeEmulator(seed=6)
        with (
            make_client(emulator, auth=AuthToken(emulator.authtoken)) as client,
            respx.mock() as router,
        ):
            slack = router.post("https://hooks.slack.com/services/T0/B0/qs").mock(
                return_value=httpx.Response(200, text="ok")
            )
            namespace: dict[str, Any] = {
                "client": client,
                "Sync": Sync,
                "Field": Field,
                "os": os,
                "mapping": {"plan": "plan"},
            }
            exec(snippet, namespace)
            sync = namespace["sync"]
            sync.create_missing_attributes = True
            emulator.set_faults(outage=True, apply_to={"management"})
            for _ in range(2):
                with pytest.raises(PersonalizeError):
                    sync.run([{"user_id": "u1", "plan": "gold", "lifetime_value": "1"}])
            sync.close()
        assert slack.call_count == 1
        (tmp_path / "users_sync.db").unlink()
