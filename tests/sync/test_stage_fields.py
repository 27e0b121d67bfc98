"""Mapping and checking, alone: compile_mapping turns a mapping into converters that give
canonical JSON (or raise InvalidCell), and TypeChecker judges values against expectations."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from contentstack_personalize.errors import ConfigurationError
from contentstack_personalize.sync import Field, Sync
from contentstack_personalize.sync._fields import InvalidCell, compile_mapping
from contentstack_personalize.sync._typecheck import TypeChecker
from contentstack_personalize.testing import PersonalizeEmulator
from tests._invariants import assert_accounted


def convert(spec: Any, row: dict[str, Any]) -> Any:
    (field,) = compile_mapping({"col": spec} if not isinstance(spec, list) else spec)
    return field.convert(row)


class TestCompileMapping:
    def test_a_plain_column_gives_canonical_json(self) -> None:
        assert convert("key", {"col": "gold"}) == '"gold"'
        assert convert("key", {"col": 7}) == "7"
        assert convert("key", {"col": True}) == "true"
        assert convert("key", {"col": [1, "a"]}) == '[1,"a"]'

    def test_nulls_are_skipped_or_sent(self) -> None:
        skipped = convert("key", {"col": None})
        assert skipped != "null" and not isinstance(skipped, str)
        assert convert(Field("key", null="send"), {"col": None}) == "null"
        assert convert(Field("key", default=0), {"col": None}) == "0"

    def test_declared_types_coerce_or_refuse(self) -> None:
        assert convert(Field("key", type=int), {"col": "42"}) == "42"
        assert convert(Field("key", type=dt.date), {"col": "2024-01-31"}) == '"2024-01-31"'
        with pytest.raises(InvalidCell) as caught:
            convert(Field("key", type=int), {"col": "forty"})
        assert caught.value.column == "col"
        with pytest.raises(InvalidCell):
            convert(Field("key", type=int, coerce=False), {"col": "42"})

    def test_transform_compute_and_static(self) -> None:
        assert convert(Field("key", transform=str.upper), {"col": "a"}) == '"A"'
        computed = [Field("key", compute=lambda row: row["a"] + row["b"])]
        assert convert(computed, {"a": 1, "b": 2}) == "3"
        assert convert([Field("key", value="fixed")], {}) == '"fixed"'

    def test_a_failing_transform_makes_the_cell_invalid(self) -> None:
        with pytest.raises(InvalidCell, match="transform failed: ZeroDivisionError"):
            convert(Field("key", transform=lambda v: v / 0), {"col": 1})

    @pytest.mark.parametrize(
        ("mapping", "message"),
        [
            ({}, "mapping is empty"),
            ("plan", "mapping must be a"),
            ({"a": "k", "b": "k"}, "mapped more than once"),
            ({"a": "no spaces"}, "not a valid attribute key"),
            ({"a": "country"}, "preset attribute COUNTRY"),
            ([Field("k")], "needs exactly one of column=, value= or compute="),
            ([Field("k", value=object())], "value="),
        ],
    )
    def test_bad_mappings_are_refused(self, mapping: Any, message: str) -> None:
        with pytest.raises(ConfigurationError, match=message):
            compile_mapping(mapping)


class TestTypeChecker:
    def checker(self, mode: Any, expected: set[str] | None = None) -> TypeChecker:
        expectations = (
            {"ltv": (expected, ["audience 'X' compares it as number"])} if expected else {}
        )
        return TypeChecker(compile_mapping({"ltv": "ltv"}), expectations, mode)

    def test_warn_sends_as_is_and_reports(self) -> None:
        checker = self.checker("warn", {"number"})
        assert checker.check(1, "ltv", '"12"') == '"12"'
        (issue,) = checker.issues()
        assert (issue.problem, issue.attribute, issue.count) == ("mismatch", "ltv", 1)

    def test_coerce_converts_when_lossless_else_the_cell_is_invalid(self) -> None:
        checker = self.checker("coerce", {"number"})
        assert checker.check(1, "ltv", '"12"') == "12"
        with pytest.raises(InvalidCell, match="cannot be converted without loss"):
            checker.check(2, "ltv", '"twelve"')

    def test_reject_makes_the_cell_invalid(self) -> None:
        with pytest.raises(InvalidCell, match="is not number"):
            self.checker("reject", {"number"}).check(1, "ltv", '"12"')

    def test_a_mixed_column_is_reported_without_expectations(self) -> None:
        checker = self.checker("warn")
        checker.check(1, "ltv", "1")
        checker.check(2, "ltv", '"1"')
        (issue,) = checker.issues()
        assert issue.problem == "mixed"

    def test_off_checks_nothing(self) -> None:
        checker = self.checker("off", {"number"})
        assert not checker.active


# Through a whole Sync against the emulator.


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
