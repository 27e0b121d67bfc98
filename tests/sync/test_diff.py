"""The diff stage (``Sync._diff`` in ``sync/_engine.py``): what a plan and a run compare against
the state, and what a plan must leave as it found it."""

from __future__ import annotations

from typing import Any

from contentstack_personalize.sync import Sync
from contentstack_personalize.testing import PersonalizeEmulator
from tests._invariants import assert_accounted

from .conftest import people


def test_plan_leaves_failure_counts_alone(emulator: PersonalizeEmulator, client: Any) -> None:
    # more failed users than one diff batch, so that a plan would have flushed a "clear"
    sync = Sync(client, match_on="user_id", mapping={"plan": "plan"}, min_sample=10_000)
    emulator.set_faults(outage=True)
    assert sync.run(people(1500)).rejected == 1500
    emulator.clear_faults()
    failed = [
        u
        for u, s in sync.state.load(sync.name, [str(i) for i in range(1, 1501)]).items()
        if s.failed_attempts
    ]
    assert len(failed) == 1500
    # the users come back unchanged in the source: a plan must not clear their failures
    with sync.plan([{"user_id": u, "plan": None} for u in failed]) as plan:
        assert_accounted(plan, read=1500)
    after = sync.state.load(sync.name, failed)
    assert len(after) == 1500
    assert all(s.failed_attempts == 1 for s in after.values())
