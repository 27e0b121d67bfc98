"""The user UID of a row (``uid_from_value`` in ``sync/_uids.py``): what is matched, what is
refused, and why; and the partition of a raw match value."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from contentstack_personalize.sync import Sync, partition_of, partition_of_value
from contentstack_personalize.sync._uids import uid_from_value
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


@pytest.mark.parametrize(
    ("value", "uid"),
    [
        (42, "42"),
        (42.0, "42"),
        (Decimal("42"), "42"),
        (Decimal("4.2E+1"), "42"),
        (Decimal("0E+5000"), "0"),  # zero, however large the exponent
        (np.int64(7), "7"),
        (b"u1", "u1"),
        ("u1", "u1"),
    ],
)
def test_match_values_that_name_a_user(value: Any, uid: str) -> None:
    assert uid_from_value(value) == (uid, None)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "null"),
        (True, "boolean"),
        (4.5, "not an integral number"),
        (Decimal("1E+2000"), "longer than 1024"),
        (np.arange(0), "array of 0 values"),
        (np.array([7]), "array of 1 values"),
        (np.arange(2), "array of 2 values"),
        (b"\xff", "not UTF-8"),
        (" u1", None),  # padded: the header rules say why
        (object(), "not text or an integer"),
    ],
)
def test_match_values_that_cannot_name_a_user(value: Any, reason: str | None) -> None:
    uid, why = uid_from_value(value)
    assert uid is None and why
    if reason is not None:
        assert reason in why


def test_the_partition_of_a_raw_value_is_the_partition_of_its_uid() -> None:
    for value in (42, 42.0, Decimal(42), "42", np.int64(42)):
        assert partition_of_value(value, 8) == partition_of("42", 8)
    assert partition_of_value(None, 8) == 0  # no usable UID: partition 0 reports it invalid
