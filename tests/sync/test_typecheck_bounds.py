"""Type warnings stay readable whatever the data: a column of long texts or documents, or an
attribute used by many audiences, gives a warning of a few hundred characters, not kilobytes."""

from __future__ import annotations

import json
from typing import Any

from contentstack_personalize.sync import Sync
from contentstack_personalize.sync._fields import compile_mapping
from contentstack_personalize.sync._typecheck import TypeChecker
from contentstack_personalize.testing import PersonalizeEmulator
from tests.sync.conftest import make_client

LIMIT = 400


def _issues(values: list[Any], expectations: Any = None, mode: Any = "warn") -> list[Any]:
    checker = TypeChecker(compile_mapping({"notes": "notes"}), expectations or {}, mode)
    for row, value in enumerate(values, start=1):
        checker.check(row, "notes", json.dumps(value))
    return checker.issues()


def test_mixed_column_of_long_texts_gives_a_short_warning() -> None:
    values: list[Any] = [i if i % 3 == 0 else "x" * 2_000 + str(i) for i in range(12)]
    (issue,) = _issues(values)
    line = issue.describe()
    assert issue.problem == "mixed"
    assert len(line) < LIMIT, line
    assert "(2,001 characters, row 2)" in line  # says how long the cut value was, and where
    assert "0 (row 1)" in line  # short values are shown whole
    assert (2, "x" * 2_000 + "1") in issue.examples  # the data itself is kept whole


def test_mismatch_with_long_values_and_many_audiences_gives_a_short_warning() -> None:
    reasons = [f"audience 'segment number {i}' compares it as number" for i in range(40)]
    values = [{"text": "y" * 500}, "z" * 3_000, list(range(1_000))]
    (issue,) = [i for i in _issues(values, {"notes": ({"number"}, reasons)}) if i.problem]
    line = issue.describe()
    assert len(line) < LIMIT + 100, line
    assert "audience 'segment number 0'" in line and "\u2026" in line
    assert "(1,000 items, row 3)" in line


def test_a_run_reports_bounded_warnings() -> None:
    emulator = PersonalizeEmulator(seed=3)
    rows = [{"user_id": f"u{i}", "notes": i if i % 2 else "long note " * 250} for i in range(10)]
    with make_client(emulator) as client:
        sync = Sync(client, match_on="user_id", mapping={"notes": "notes"})
        result = sync.run(rows)
    (warning,) = [w for w in result.warnings if "mixes value types" in w]
    assert len(warning) < LIMIT, warning
    assert max(len(line) for line in result.summary().splitlines()) < LIMIT + 20
