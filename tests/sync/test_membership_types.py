"""Audience membership through an attribute, and type safety against audience rules, end to end
against the emulator: audiences created, members synced, a member removed, a number attribute
fed strings caught."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from contentstack_personalize import AuthToken, ConfigurationError
from contentstack_personalize.membership import (
    encode_membership,
    ensure_membership,
    membership,
    membership_flags,
)
from contentstack_personalize.rules import Condition, MatchOptions, Rule, all_of
from contentstack_personalize.sync import Field, Sync
from contentstack_personalize.testing import PersonalizeEmulator

from .conftest import make_async_client, make_client, patches


def in_audience(client: Any, emulator: PersonalizeEmulator, audience_uid: str, uid: str) -> bool:
    """Ask the edge, as a website would: does this user get the audience's experience?"""
    short = f"x{audience_uid[-6:]}"
    if not any(e.get("shortUid") == short for e in emulator.catalogue("experiences")):
        emulator.add_experience(f"for {audience_uid}", short_uid=short, audiences=[audience_uid])
    manifest = client.users.manifest(uid)
    return any(e.short_uid == short and e.active_variant_short_uid for e in manifest.experiences)


class TestEncoding:
    def test_delimited_sorted_deduplicated(self) -> None:
        assert encode_membership(["vip", "churn-risk", "vip"]) == "|churn-risk|vip|"
        assert encode_membership("vip") == "|vip|"
        assert encode_membership("vip, gold", split=",") == "|gold|vip|"
        assert encode_membership(None) == "" and encode_membership([]) == ""
        assert encode_membership([1, 2]) == "|1|2|"

    def test_delimiter_inside_an_identifier_is_refused(self) -> None:
        with pytest.raises(ValueError, match="contains the delimiter"):
            encode_membership(["a|b"])

    def test_substring_safety(self) -> None:
        # "vip" must not match a user who is only in "vip-lapsed"
        assert "|vip|" not in encode_membership(["vip-lapsed"])


class TestMembershipEndToEnd:
    def test_create_sync_remove(self, emulator: PersonalizeEmulator) -> None:
        with make_client(emulator, auth=AuthToken(emulator.authtoken)) as client:
            vip = ensure_membership(client, "vip")
            churn = client.audiences.ensure_membership("churn-risk")
            # idempotent: a second call changes nothing
            before = emulator.count(api="management", method="POST") + emulator.count(
                api="management", method="PUT"
            )
            again = client.audiences.ensure_membership("vip")
            after = emulator.count(api="management", method="POST") + emulator.count(
                api="management", method="PUT"
            )
            assert again.uid == vip.uid and after == before
            keys = [a.key for a in client.attributes.list() if a.is_custom]
            assert keys.count("audiences") == 1

            sync = Sync(
                client,
                match_on="user_id",
                mapping={"plan": "plan", "segments": membership("audiences")},
                create_missing_attributes=True,
            )
            rows = [
                {"user_id": "u1", "plan": "pro", "segments": ["vip", "churn-risk"]},
                {"user_id": "u2", "plan": "free", "segments": "vip"},
                {"user_id": "u3", "plan": "free", "segments": None},
                {"user_id": "u4", "plan": "free", "segments": ["vip-lapsed"]},
            ]
            result = sync.run(rows)
            assert result.added == 4 and result.invalid == 0
            assert emulator.user_attributes("u1")["audiences"] == "|churn-risk|vip|"
            assert in_audience(client, emulator, vip.uid, "u1")
            assert in_audience(client, emulator, churn.uid, "u1")
            assert in_audience(client, emulator, vip.uid, "u2")
            assert not in_audience(client, emulator, vip.uid, "u3")
            assert not in_audience(client, emulator, vip.uid, "u4")

            # u1 leaves "vip": the plan shows it, the run sends it, the edge agrees
            rows[0]["segments"] = ["churn-risk"]
            rows[1]["segments"] = []
            with sync.plan(rows) as plan:
                changes = [tuple(c) for c in plan]
            assert changes == [
                ("u1", "audiences", "|churn-risk|vip|", "|churn-risk|"),
                ("u2", "audiences", "|vip|", ""),
            ]
            before = len(patches(emulator))
            sync.run(rows)
            assert patches(emulator)[before:] == [
                ("u1", {"audiences": "|churn-risk|"}),
                ("u2", {"audiences": ""}),
            ]
            assert not in_audience(client, emulator, vip.uid, "u1")
            assert in_audience(client, emulator, churn.uid, "u1")
            assert not in_audience(client, emulator, vip.uid, "u2")

    def test_existing_audience_with_other_definition(self, emulator: PersonalizeEmulator) -> None:
        with make_client(emulator, auth=AuthToken(emulator.authtoken)) as client:
            plan_attr = client.attributes.create(key="plan", name="Plan")
            client.audiences.create(
                name="vip",
                definition=all_of(Rule.custom(plan_attr.uid, Condition.STRING_EQUALS, "pro")),
            )
            with pytest.raises(ConfigurationError, match="update=True"):
                client.audiences.ensure_membership("vip")
            updated = client.audiences.ensure_membership("vip", update=True)
            assert updated.definition is not None
            rule = next(updated.definition.walk())
            assert rule.condition == Condition.CONTAINS_SUBSTRING

    def test_boolean_encoding(self, emulator: PersonalizeEmulator) -> None:
        with make_client(emulator, auth=AuthToken(emulator.authtoken)) as client:
            gold = client.audiences.ensure_membership("gold", encoding="boolean")
            sync = Sync(
                client,
                match_on="user_id",
                mapping=[Field("plan", column="plan"), *membership_flags("segments", ["gold"])],
                create_missing_attributes=True,
            )
            sync.run(
                [
                    {"user_id": "a", "plan": "x", "segments": ["gold"]},
                    {"user_id": "b", "plan": "x", "segments": []},
                ]
            )
            assert emulator.user_attributes("a")["in_gold"] is True
            assert in_audience(client, emulator, gold.uid, "a")
            assert not in_audience(client, emulator, gold.uid, "b")

    async def test_async_twin(self, emulator: PersonalizeEmulator) -> None:
        async with make_async_client(emulator, auth=AuthToken(emulator.authtoken)) as client:
            first = await client.audiences.ensure_membership("vip")
            second = await client.audiences.ensure_membership("vip")
        assert first.uid == second.uid


def number_audience(client: Any, key: str = "ltv") -> None:
    attribute = client.attributes.ensure([key])[0]
    client.audiences.create(
        name="big spenders",
        definition=all_of(Rule.custom(attribute.uid, Condition.NUMBER_GREATER_THAN, 1000)),
    )


class TestTypeSafety:
    def rows(self) -> list[dict[str, Any]]:
        return [
            {"user_id": "1", "ltv": 1500},
            {"user_id": "2", "ltv": "2500"},
            {"user_id": "3", "ltv": "lots"},
        ]

    def test_number_attribute_fed_strings_is_caught_in_plan_and_run(
        self, emulator: PersonalizeEmulator
    ) -> None:
        with make_client(emulator, auth=AuthToken(emulator.authtoken)) as client:
            number_audience(client)
            sync = Sync(client, match_on="user_id", mapping={"ltv": "ltv"})
            with sync.plan(self.rows()) as plan:
                issues = plan.extras["type_issues"]
            mismatch = next(i for i in issues if i.problem == "mismatch")
            assert mismatch.column == "ltv" and mismatch.expected == ("number",)
            assert mismatch.count == 2
            assert [v for _, v in mismatch.examples] == ["2500", "lots"]
            assert "big spenders" in mismatch.because
            mixed = next(i for i in issues if i.problem == "mixed")
            assert mixed.found == {"number": 1, "string": 2}
            result = sync.run(self.rows())  # warn (default): sent as is, reported
            assert result.added == 3
            assert any("not number" in w for w in result.warnings)
            assert emulator.user_attributes("2") == {"ltv": "2500"}

    def test_coerce_converts_lossless_and_rejects_the_rest(
        self, emulator: PersonalizeEmulator
    ) -> None:
        with make_client(emulator, auth=AuthToken(emulator.authtoken)) as client:
            number_audience(client)
            sync = Sync(client, match_on="user_id", mapping={"ltv": "ltv"}, type_check="coerce")
            result = sync.run(self.rows())
        assert emulator.user_attributes("2") == {"ltv": 2500}
        assert result.invalid == 1 and result.invalid_rows[0].uid == "3"
        assert "cannot be converted" in result.invalid_rows[0].reason

    def test_reject_mode(self, emulator: PersonalizeEmulator) -> None:
        with make_client(emulator, auth=AuthToken(emulator.authtoken)) as client:
            number_audience(client)
            sync = Sync(client, match_on="user_id", mapping={"ltv": "ltv"}, type_check="reject")
            result = sync.run(self.rows())
        assert result.added == 1 and result.invalid == 2
        assert {i.uid for i in result.invalid_rows} == {"2", "3"}
        assert all(i.column == "ltv" for i in result.invalid_rows)

    def test_boolean_and_time_conditions(self, emulator: PersonalizeEmulator) -> None:
        with make_client(emulator, auth=AuthToken(emulator.authtoken)) as client:
            vip, seen = client.attributes.ensure(["vip", "last_seen"])
            client.audiences.create(
                name="vips seen lately",
                definition=all_of(
                    Rule.custom(vip.uid, Condition.IS_TRUE),
                    Rule.custom(
                        seen.uid,
                        Condition.AFTER_TIME,
                        options=MatchOptions(
                            type_name="TimeMatchOptions", fields={"value": "2024-01-01T00:00:00Z"}
                        ),
                    ),
                ),
            )
            sync = Sync(
                client,
                match_on="user_id",
                mapping={"vip": "vip", "seen": "last_seen"},
                type_check="coerce",
            )
            result = sync.run(
                [
                    {"user_id": "1", "vip": "true", "seen": dt.datetime(2024, 5, 1, 8, 0)},
                    {"user_id": "2", "vip": 1, "seen": "2024-05-01T08:00:00Z"},
                    {"user_id": "3", "vip": "yes please", "seen": "last tuesday"},
                ]
            )
        assert emulator.user_attributes("1") == {"vip": True, "last_seen": "2024-05-01T08:00:00"}
        assert emulator.user_attributes("2")["vip"] is True
        assert result.invalid == 1
        assert result.invalid_rows[0].column == "vip"

    def test_declared_type_alone_reports_mixed_columns(self, client: Any) -> None:
        sync = Sync(client, match_on="user_id", mapping={"v": "v"})
        with sync.plan([{"user_id": "1", "v": 10}, {"user_id": "2", "v": "10"}]) as plan:
            issues = plan.extras["type_issues"]
        assert [i.problem for i in issues] == ["mixed"]
        assert "mixes value types" in plan.warnings[-1]

    def test_type_check_off(self, client: Any) -> None:
        sync = Sync(client, match_on="user_id", mapping={"v": "v"}, type_check="off")
        with sync.plan([{"user_id": "1", "v": 10}, {"user_id": "2", "v": "10"}]) as plan:
            assert plan.extras["type_issues"] == []
