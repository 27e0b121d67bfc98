"""Models and rule definitions read from the API write back the identical JSON."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest

from contentstack_personalize import ValidationError
from contentstack_personalize.models import (
    Attribute,
    Audience,
    Event,
    Experience,
    Manifest,
    Project,
)
from contentstack_personalize.rules import (
    AttributeRef,
    Condition,
    CustomAttributeRef,
    MatchOptions,
    NumberMatchOptions,
    PresetAttributeRef,
    RawNode,
    Rule,
    RuleCombination,
    StringMatchOptions,
    all_of,
    any_of,
)

#: The example of the API reference, verbatim (its "..." placeholder included).
REFERENCE = """{"__type": "RuleCombination", "combinationType": "AND",
 "rules": [
   {"__type": "Rule",
    "attribute": {"__type": "CustomAttributeReference", "ref": "<attribute uid>"},
    "attributeMatchCondition": "NUMBER_GREATER_THAN",
    "attributeMatchOptions": {"__type": "NumberMatchOptions", "value": 1000},
    "invertCondition": false},
   {"__type": "RuleCombination", "combinationType": "OR", "rules": ["..."]}]}"""


def canonical(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def test_reference_example_round_trips_byte_for_byte() -> None:
    data = json.loads(REFERENCE)
    definition = RuleCombination.from_api(data)
    assert canonical(definition.to_api()) == canonical(data)
    rule = definition.rules[0]
    assert isinstance(rule, Rule)
    assert rule.attribute == CustomAttributeRef(uid="<attribute uid>")
    assert rule.condition is Condition.NUMBER_GREATER_THAN
    assert rule.options == NumberMatchOptions(value=1000)
    assert rule.value == 1000
    nested = definition.rules[1]
    assert isinstance(nested, RuleCombination)
    assert nested.rules == (RawNode(data="..."),)


UNKNOWN: dict[str, Any] = {
    "__type": "RuleCombination",
    "combinationType": "XOR",
    "label": "future field",
    "rules": [
        {
            "__type": "Rule",
            "attribute": {"__type": "SegmentAttributeReference", "ref": "x", "scope": 2},
            "attributeMatchCondition": "REGEX_MATCH",
            "attributeMatchOptions": {"__type": "RegexMatchOptions", "pattern": "^a"},
            "invertCondition": False,
            "weight": 3,
        },
        {
            "__type": "Rule",
            "attribute": {"__type": "PresetAttributeReference", "ref": "COUNTRY", "v": 1},
            "attributeMatchCondition": "STRING_EQUALS",
            "attributeMatchOptions": {
                "__type": "StringMatchOptions",
                "value": "FR",
                "caseSensitive": False,
            },
            "invertCondition": True,
        },
        {
            "__type": "Rule",
            "attribute": {"__type": "CustomAttributeReference", "ref": "u1"},
            "attributeMatchCondition": "BETWEEN_TIME",
            "attributeMatchOptions": {
                "__type": "TimeRangeMatchOptions",
                "start": "09:00",
                "end": "17:00",
            },
            "invertCondition": False,
        },
        {
            "__type": "Rule",
            "attribute": {"__type": "CustomAttributeReference", "ref": "u1"},
            "attributeMatchCondition": "HAS_ANY_VALUE",
            "attributeMatchOptions": None,
            "invertCondition": False,
        },
        {"__type": "Rule", "attribute": "not-an-object", "attributeMatchCondition": 5},
        {"__type": "AudienceReference", "ref": "aud1"},
        {
            "__type": "Rule",
            "attribute": {"__type": "CustomAttributeReference", "ref": "u1"},
            "attributeMatchCondition": "NUMBER_EQUAL_TO",
            "attributeMatchOptions": {"__type": "NumberMatchOptions", "value": "12"},
            "invertCondition": False,
        },
    ],
}


def test_unknown_keys_conditions_and_options_round_trip() -> None:
    definition = RuleCombination.from_api(UNKNOWN)
    assert canonical(definition.to_api()) == canonical(UNKNOWN) or (definition.to_api() == UNKNOWN)
    assert definition.to_api() == UNKNOWN
    assert definition.combination_type == "XOR"
    assert definition.extra == {"label": "future field"}
    first, second, third, fourth, fifth, sixth, seventh = definition.rules
    assert isinstance(first, Rule)
    assert first.condition == "REGEX_MATCH" and not isinstance(first.condition, Condition)
    assert first.attribute == AttributeRef(
        type_name="SegmentAttributeReference", fields={"ref": "x", "scope": 2}
    )
    assert first.options == MatchOptions(type_name="RegexMatchOptions", fields={"pattern": "^a"})
    assert first.extra == {"weight": 3}
    assert isinstance(second, Rule)
    assert second.attribute == PresetAttributeRef(name="COUNTRY", extra={"v": 1})
    assert second.options == StringMatchOptions(value="FR", extra={"caseSensitive": False})
    assert isinstance(third, Rule) and isinstance(third.options, MatchOptions)
    assert isinstance(fourth, Rule) and fourth.options is None
    assert isinstance(fifth, RawNode) and isinstance(sixth, RawNode)
    assert isinstance(seventh, Rule) and isinstance(seventh.options, MatchOptions)


def test_builders_make_the_documented_json() -> None:
    definition = all_of(
        Rule.custom("u1", Condition.STRING_EQUALS, "gold"),
        any_of(
            Rule.custom("u2", Condition.NUMBER_LESS_THAN, 10.5),
            ~Rule.preset("DEVICE_TYPE", Condition.CONTAINS_SUBSTRING, "mob"),
            Rule.custom("u3", Condition.IS_TRUE),
            Rule.custom(
                "u4",
                Condition.BEFORE_TIME,
                options=MatchOptions(type_name="TimeMatchOptions", fields={"value": "2024"}),
            ),
        ),
    )
    assert definition.to_api() == {
        "__type": "RuleCombination",
        "combinationType": "AND",
        "rules": [
            {
                "__type": "Rule",
                "attribute": {"__type": "CustomAttributeReference", "ref": "u1"},
                "attributeMatchCondition": "STRING_EQUALS",
                "attributeMatchOptions": {"__type": "StringMatchOptions", "value": "gold"},
                "invertCondition": False,
            },
            {
                "__type": "RuleCombination",
                "combinationType": "OR",
                "rules": [
                    {
                        "__type": "Rule",
                        "attribute": {"__type": "CustomAttributeReference", "ref": "u2"},
                        "attributeMatchCondition": "NUMBER_LESS_THAN",
                        "attributeMatchOptions": {"__type": "NumberMatchOptions", "value": 10.5},
                        "invertCondition": False,
                    },
                    {
                        "__type": "Rule",
                        "attribute": {"__type": "PresetAttributeReference", "ref": "DEVICE_TYPE"},
                        "attributeMatchCondition": "CONTAINS_SUBSTRING",
                        "attributeMatchOptions": {"__type": "StringMatchOptions", "value": "mob"},
                        "invertCondition": True,
                    },
                    {
                        "__type": "Rule",
                        "attribute": {"__type": "CustomAttributeReference", "ref": "u3"},
                        "attributeMatchCondition": "IS_TRUE",
                        "invertCondition": False,
                    },
                    {
                        "__type": "Rule",
                        "attribute": {"__type": "CustomAttributeReference", "ref": "u4"},
                        "attributeMatchCondition": "BEFORE_TIME",
                        "attributeMatchOptions": {"__type": "TimeMatchOptions", "value": "2024"},
                        "invertCondition": False,
                    },
                ],
            },
        ],
    }
    assert RuleCombination.from_api(definition.to_api()) == definition
    assert definition.expected_value_kinds() == {
        "u1": {"string"},
        "u2": {"number"},
        "u3": {"boolean"},
        "u4": {"time"},
    }


@pytest.mark.parametrize(
    ("condition", "value", "message"),
    [
        (Condition.NUMBER_GREATER_THAN, "10", "compares numbers"),
        (Condition.NUMBER_GREATER_THAN, True, "compares numbers"),
        (Condition.STRING_EQUALS, 3, "compares strings"),
        (Condition.HAS_ANY_VALUE, 3, "no value"),
        (Condition.STRING_EQUALS, NotImplemented, "needs value"),
        (Condition.JSON_MATCH, "{}", "not documented"),
    ],
)
def test_builder_validation(condition: Condition, value: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        if value is NotImplemented:
            Rule.custom("u1", condition)
        else:
            Rule.custom("u1", condition, value)


def test_rules_from_attribute_objects_and_keys() -> None:
    plan = Attribute(uid="u1", key="plan", name="Plan")
    country = Attribute(uid="COUNTRY", key="COUNTRY", name="Country", type="PRESET")
    assert Rule.for_attribute(plan, Condition.STRING_EQUALS, "gold").attribute == (
        CustomAttributeRef(uid="u1")
    )
    assert Rule.for_attribute(country, Condition.STRING_EQUALS, "FR").attribute == (
        PresetAttributeRef(name="COUNTRY")
    )
    rule = Rule.for_key("plan", [country, plan], Condition.STRING_EQUALS, "gold")
    assert rule.attribute == CustomAttributeRef(uid="u1")
    with pytest.raises(
        ValidationError, match=r"no attribute with key 'ltv' \(known keys: COUNTRY, plan\)"
    ):
        Rule.for_key("ltv", [country, plan], Condition.NUMBER_EQUAL_TO, 1)


MODELS: list[tuple[type[Any], dict[str, Any]]] = [
    (
        Attribute,
        {
            "uid": "a1",
            "name": "Plan",
            "key": "plan",
            "description": None,
            "project": "p",
            "createdAt": "2024-05-01T10:00:00.000Z",
            "createdBy": "u",
            "updatedAt": "2024-05-01T10:00:00.000Z",
            "updatedBy": "u",
            "__type": "CUSTOM",
            "dataType": "STRING",
        },
    ),
    (
        Audience,
        {
            "uid": "au1",
            "name": "Gold",
            "description": "d",
            "definition": json.loads(REFERENCE),
            "project": "p",
            "status": "ACTIVE",
        },
    ),
    (Audience, {"uid": "au2", "name": "L", "source": "LYTICS", "definition": None}),
    (Audience, {"uid": "au3", "name": "Odd", "definition": {"__type": "Something"}}),
    (Event, {"uid": "e1", "key": "clickCTA", "description": "", "tags": ["x"]}),
    (Project, {"uid": "p1", "name": "P", "organization": "o", "connectedStacks": []}),
    (
        Experience,
        {
            "uid": "x1",
            "name": "E",
            "__type": "SEGMENTED",
            "shortUid": "a",
            "variants": [{"shortUid": "0", "audiences": ["au1"]}],
            "status": "DRAFT",
        },
    ),
]


@pytest.mark.parametrize(("cls", "data"), MODELS, ids=lambda v: getattr(v, "__name__", ""))
def test_models_round_trip(cls: type[Any], data: dict[str, Any]) -> None:
    obj = cls.from_api(data)
    assert obj.to_api() == data
    assert attrs.has(cls)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        obj.uid = "changed"
    changed = attrs.evolve(obj, name="New") if hasattr(obj, "name") else obj
    assert {k: v for k, v in changed.to_api().items() if k != "name"} == {
        k: v for k, v in data.items() if k != "name"
    }


def test_manifest_round_trip_keeps_unknown_keys() -> None:
    data = {
        "experiences": [{"shortUid": "a", "activeVariantShortUid": "0", "score": 1}],
        "version": 2,
    }
    manifest = Manifest.from_api(data, user_uid="u")
    assert manifest.to_api() == data
    assert manifest.experiences[0].extra == {"score": 1}


def test_unknown_source_audience_is_writable_and_lytics_is_not() -> None:
    assert Audience.from_api({"uid": "a", "name": "n", "source": "LYTICS"}).is_read_only
    assert not Audience.from_api({"uid": "a", "name": "n"}).is_read_only
