"""The user UID of a row (``uid_from_value`` in ``sync/_engine.py``): what is matched, what is
refused, and why."""

from __future__ import annotations

from typing import Any

from contentstack_personalize.sync import Sync
from contentstack_personalize.testing import PersonalizeEmulator
from tests._invariants import assert_accounted


def test_float_uids_beyond_exact_range_are_refused(
    emulator: PersonalizeEmulator, client: Any
) -> None:
    rows = [{"user_id": 1234567890123456789.0, "plan": "x"}, {"user_id": 2.0**53, "plan": "y"}]
    result = Sync(client, match_on="user_id", mapping={"plan": "plan"}).run(rows)
    assert_accounted(result, read=2)
    assert result.invalid == 1 and "rounded" in result.invalid_rows[0].reason
    assert result.invalid_rows[0].row == 1
    assert list(emulator.users()) == ["9007199254740992"]
