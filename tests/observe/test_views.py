"""Notebook (HTML) and pandas views of results, plans and the debugger."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from contentstack_personalize import Exchange, _html
from contentstack_personalize._optional import require_pandas
from contentstack_personalize.debugger import Debugger
from contentstack_personalize.sync import MemoryState, RowIssue, Sync, SyncResult
from contentstack_personalize.testing import PersonalizeEmulator
from tests.sync.conftest import make_client, people

HOSTILE = "<script>alert(1)</script>"


def result(**kwargs: Any) -> SyncResult:
    values: dict[str, Any] = {
        "run_id": "abc123",
        "sync_name": "users",
        "status": "partially_failed",
        "started_at": 1_700_000_000.0,
        "finished_at": 1_700_000_012.5,
        "read": 1234,
        "invalid": 1,
        "unchanged": 1000,
        "added": 200,
        "changed": 32,
        "rejected": 1,
        "not_sent": 0,
        "retried": 3,
        "requests": 234,
        "invalid_rows": (
            RowIssue(kind="invalid", row=7, uid=HOSTILE, reason="user UID is empty", column="id"),
        ),
        "rejected_rows": (
            RowIssue(
                kind="rejected",
                row=9,
                uid="u9",
                reason=f"400 bad value {HOSTILE}",
                status=400,
                code="personalize.BAD",
            ),
        ),
        "warnings": (f"warning {HOSTILE}",),
    }
    values.update(kwargs)
    return SyncResult(**values)


class TestResultHtml:
    def test_shows_status_counts_timings_issues_and_warnings(self) -> None:
        html = result()._repr_html_()
        assert "partially failed" in html
        for text in ("1,234", "1,000", "200", "32", "234", "12.50 s", "2023-11-14 22:13:20 UTC"):
            assert text in html
        assert "personalize.BAD" in html and "user UID is empty" in html and ">9<" in html

    def test_escapes_hostile_values(self) -> None:
        html = result(error=f"boom {HOSTILE}", sync_name=HOSTILE)._repr_html_()
        assert "<script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert html.count("&lt;script&gt;") >= 5  # uid, reason, warning, error, name

    def test_says_how_many_issues_are_not_shown(self) -> None:
        issues = tuple(
            RowIssue(kind="invalid", row=i, uid=f"u{i}", reason="bad") for i in range(50)
        )
        html = result(invalid=50, invalid_rows=issues)._repr_html_()
        assert "first 20 of 50" in html
        assert ">u19<" in html and ">u20<" not in html

    def test_no_external_resources(self) -> None:
        html = result()._repr_html_()
        for needle in ("<link", "<script", "src=", "href=", "@import"):
            assert needle not in html

    def test_mentions_the_debugger_when_there_is_one(self) -> None:
        debugger = Debugger()
        debugger(_exchange(HOSTILE, 500))
        res = result(debugger=debugger)
        html = res._repr_html_()
        assert "1 exchanges seen" in html and "1 failed" in html
        assert "1 exchanges seen" in res.summary()
        assert res.to_dict()["debugger"]["failed"] == 1
        assert res == result()  # the debugger is not part of a result's value


class TestPlanHtml:
    def test_shows_counts_and_first_changes_escaped(self) -> None:
        emulator = PersonalizeEmulator(seed=4)
        rows = [{"user_id": f"u{i}", "plan": "gold"} for i in range(30)]
        rows.append({"user_id": "evil", "plan": HOSTILE})
        with make_client(emulator) as client:
            sync = Sync(client, match_on="user_id", mapping={"plan": "plan"}, state=MemoryState())
            rows.insert(0, {"user_id": "evil2", "plan": HOSTILE})
            with sync.plan(rows) as plan:
                html = plan._repr_html_()
        assert "nothing sent" in html
        assert html.count(">32<") == 3  # read, added, requests
        assert "<script>" not in html and "&lt;script&gt;" in html
        assert "Changes (first 20 of 32)" in html
        assert ">evil2<" in html and ">u18<" in html and ">u19<" not in html

    def test_changes_heading_counts_attribute_changes_not_users(self) -> None:
        emulator = PersonalizeEmulator(seed=4)
        rows = [{"user_id": f"u{i}", "plan": "gold", "ltv": i} for i in range(25)]
        with make_client(emulator) as client:
            sync = Sync(client, match_on="user_id", mapping={"plan": "plan", "ltv": "ltv"})
            with sync.plan(rows) as plan:
                html = plan._repr_html_()
            with sync.plan(rows[:3]) as small:
                small_html = small._repr_html_()
        assert "Changes (first 20 of 50)" in html  # 25 users, 2 attributes each
        assert "Changes (6)" in small_html  # everything shown: just the count

    def test_a_closed_plan_says_its_changes_are_gone(self) -> None:
        emulator = PersonalizeEmulator(seed=4)
        with make_client(emulator) as client:
            sync = Sync(client, match_on="user_id", mapping={"plan": "plan"})
            plan = sync.plan(people(3))
        plan.close()
        html = plan._repr_html_()
        assert "changes are gone" in html and ">3<" in html


class TestPandas:
    def test_result_to_pandas_has_one_row_per_issue(self) -> None:
        pytest.importorskip("pandas")
        df = result().to_pandas()
        assert list(df.columns) == ["kind", "row", "uid", "reason", "column", "status", "code"]
        assert df["kind"].tolist() == ["invalid", "rejected"]
        assert df.loc[1, "status"] == 400

    def test_plan_to_pandas_has_one_row_per_change(self) -> None:
        pytest.importorskip("pandas")
        emulator = PersonalizeEmulator(seed=4)
        with make_client(emulator) as client:
            sync = Sync(client, match_on="user_id", mapping={"plan": "plan", "ltv": "ltv"})
            sync.run(people(3))
            changed = people(3)
            changed[1]["ltv"] = 999
            with sync.plan(changed) as plan:
                df = plan.to_pandas()
        assert list(df.columns) == ["uid", "attribute", "old", "new", "first_time"]
        assert df.to_dict("records") == [
            {"uid": "2", "attribute": "ltv", "old": 20, "new": 999, "first_time": False}
        ]

    def test_debugger_to_pandas(self) -> None:
        pytest.importorskip("pandas")
        debugger = Debugger()
        debugger(_exchange("a", 200))
        debugger(_exchange("b", 429))
        df = debugger.to_pandas()
        assert df["status"].tolist() == [200, 429] and "user_uid" in df.columns

    @pytest.mark.parametrize("what", ["result", "plan", "debugger"])
    def test_without_pandas_the_error_names_the_extra(
        self, what: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setitem(sys.modules, "pandas", None)
        obj: Any
        if what == "result":
            obj = result()
        elif what == "debugger":
            obj = Debugger()
        else:
            emulator = PersonalizeEmulator(seed=4)
            with make_client(emulator) as client:
                obj = Sync(client, match_on="user_id", mapping={"plan": "plan"}).plan(people(1))
        with pytest.raises(ImportError, match=r"pip install 'contentstack-personalize\[pandas\]'"):
            obj.to_pandas()


def test_debugger_html_lists_failures_escaped() -> None:
    debugger = Debugger()
    debugger(_exchange("ok", 200))
    debugger(_exchange(HOSTILE, 503))
    html = debugger._repr_html_()
    assert "Latest failed exchanges" in html and "503" in html
    assert "<script>" not in html and "&lt;script&gt;" in html


def _exchange(uid: str, status: int) -> Exchange:
    return Exchange(
        api="edge",
        method="PATCH",
        url="https://edge/user-attributes",
        request_headers={},
        request_body="{}",
        status=status,
        response_headers={},
        response_body=f"answer for {uid}",
        started_at=1_700_000_000.0,
        duration=0.0,
        attempt=1,
        user_uid=uid,
    )


def test_debugger_html_says_how_many_failures_are_not_shown() -> None:
    debugger = Debugger()
    for i in range(25):
        debugger(_exchange(f"u{i}", 503))
    html = debugger._repr_html_()
    assert "Latest failed exchanges (20 of 25 held)" in html
    assert ">u24<" in html and ">u4<" not in html  # the latest ones


class TestHtmlHelpers:
    def test_cells_are_escaped_cut_and_json_for_non_strings(self) -> None:
        assert _html.cell(HOSTILE) == "&lt;script&gt;alert(1)&lt;/script&gt;"
        assert _html.cell(None) == ""
        assert _html.cell({"a": [1, "<b>"]}) == "{&quot;a&quot;: [1, &quot;&lt;b&gt;&quot;]}"
        long = _html.cell("x" * 1000)
        assert len(long) == _html.MAX_CELL and long.endswith("\u2026")

    def test_headers_and_warnings_are_escaped(self) -> None:
        html = _html.table([HOSTILE], [[HOSTILE]]) + _html.warnings([HOSTILE])
        assert "<script>" not in html and html.count("&lt;script&gt;") == 3
        assert _html.warnings([]) == ""


def test_require_pandas_without_pandas_names_the_caller_and_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError) as info:
        require_pandas("Thing.to_pandas()")
    assert str(info.value) == (
        "Thing.to_pandas() needs pandas, which is not installed: "
        "pip install 'contentstack-personalize[pandas]'"
    )
    assert isinstance(info.value.__cause__, ImportError)


def test_require_pandas_returns_the_module() -> None:
    pd = pytest.importorskip("pandas")
    assert require_pandas("x") is pd


def test_a_result_view_without_issues_or_debugger() -> None:
    html = result(
        invalid=0, invalid_rows=(), rejected=0, rejected_rows=(), warnings=()
    )._repr_html_()
    assert "Invalid rows" not in html and "Rejected" not in html and "Warnings" not in html
    assert "Debugger" not in html


def test_debugger_html_with_no_failures_has_no_failure_table() -> None:
    debugger = Debugger()
    debugger(_exchange("ok", 200))
    html = debugger._repr_html_()
    assert "Latest failed exchanges" not in html and ">200<" in html
