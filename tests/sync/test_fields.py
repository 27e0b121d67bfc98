"""What a ``Field`` does to a column's values (``sync/_fields.py``): transforms, defaults, nulls."""

from __future__ import annotations

from typing import Any

from contentstack_personalize.sync import Field, Sync
from contentstack_personalize.testing import PersonalizeEmulator
from tests._invariants import assert_accounted


def test_transform_never_sees_nulls(emulator: PersonalizeEmulator, client: Any) -> None:
    seen: list[Any] = []

    def domain(email: Any) -> str:
        seen.append(email)
        return str(email.split("@")[1])

    mapping = {
        "plan": "plan",
        "email": Field("domain", transform=domain),
        "tier": Field("tier", default="free"),
    }
    rows = [
        {"user_id": "a", "plan": "x", "email": "a@example.com", "tier": "pro"},
        {"user_id": "b", "plan": "y", "email": None, "tier": None},
        {"user_id": "c", "plan": "z"},
    ]
    result = Sync(client, match_on="user_id", mapping=mapping).run(rows)
    assert_accounted(result, read=3)
    assert result.invalid == 0
    assert seen == ["a@example.com"]
    assert emulator.user_attributes("a") == {"plan": "x", "domain": "example.com", "tier": "pro"}
    assert emulator.user_attributes("b") == {"plan": "y", "tier": "free"}
    assert emulator.user_attributes("c") == {"plan": "z", "tier": "free"}
