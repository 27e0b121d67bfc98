"""The code in docs/alerts.md that users copy is correct: the signature check verifies what
Webhook sends, and the custom rule example works."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from contentstack_personalize.alerts import Alerts, Webhook
from contentstack_personalize.sync import MemoryState

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
