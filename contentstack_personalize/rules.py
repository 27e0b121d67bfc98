"""Audience rule builder: typed values for an audience ``definition`` that parse from and
serialise back to the API's JSON without losing anything.

A definition is a tree of :class:`RuleCombination` (``AND``/``OR``) nodes whose leaves are
:class:`Rule` objects. Everything the API may add later is kept: unknown keys in ``extra``,
unknown conditions as plain strings, unknown match options as :class:`MatchOptions`, unknown
attribute references as :class:`AttributeRef`, and unknown nodes as :class:`RawNode`.

Example::

    from contentstack_personalize.rules import Condition, Rule, all_of, any_of

    definition = all_of(
        Rule.custom(plan_attribute.uid, Condition.STRING_EQUALS, value="gold"),
        any_of(
            Rule.preset("COUNTRY", Condition.STRING_EQUALS, value="FR"),
            Rule.custom(ltv_attribute.uid, Condition.NUMBER_GREATER_THAN, value=1000),
        ),
    )
    client.audiences.create(name="Gold in France or big spenders", definition=definition)
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal, Protocol, TypeAlias

import attrs

from ._types import NOT_GIVEN, NotGiven
from .errors import ConfigurationError, ValidationError

__all__ = [
    "AttributeLike",
    "AttributeReference",
    "AttributeRef",
    "Condition",
    "CustomAttributeRef",
    "MatchOptions",
    "MembershipEncoding",
    "NumberMatchOptions",
    "Options",
    "PresetAttributeRef",
    "RawNode",
    "Rule",
    "RuleCombination",
    "RuleNode",
    "StringMatchOptions",
    "all_of",
    "any_of",
    "membership_rule",
    "parse_definition",
]


class AttributeLike(Protocol):
    """What the rule builders read of an attribute: a
    :class:`~contentstack_personalize.models.Attribute` from ``client.attributes`` is one.

    (A protocol rather than the model class itself, so that this module, which the models
    build on, needs nothing from them.)
    """

    @property
    def uid(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def is_preset(self) -> bool: ...


class Condition(str, enum.Enum):
    """The documented ``attributeMatchCondition`` values.

    Conditions the API adds later are kept as plain strings on :attr:`Rule.condition`.
    ``value_kind`` tells what an attribute compared with this condition holds.

    Example::

        Rule.preset("COUNTRY", Condition.STRING_EQUALS, value="FR")
        Condition.NUMBER_GREATER_THAN.value_kind  # 'number'
    """

    STRING_EQUALS = "STRING_EQUALS"
    CONTAINS_SUBSTRING = "CONTAINS_SUBSTRING"
    NUMBER_EQUAL_TO = "NUMBER_EQUAL_TO"
    NUMBER_GREATER_THAN = "NUMBER_GREATER_THAN"
    NUMBER_LESS_THAN = "NUMBER_LESS_THAN"
    IS_TRUE = "IS_TRUE"
    IS_FALSE = "IS_FALSE"
    HAS_ANY_VALUE = "HAS_ANY_VALUE"
    BEFORE_TIME = "BEFORE_TIME"
    AFTER_TIME = "AFTER_TIME"
    BETWEEN_TIME = "BETWEEN_TIME"
    JSON_MATCH = "JSON_MATCH"

    @property
    def value_kind(self) -> Literal["string", "number", "boolean", "time", "json", "any"]:
        """What the compared attribute must hold: used to type-check a sync's mapping."""
        return _VALUE_KINDS[self]

    def __str__(self) -> str:
        return self.value


_VALUE_KINDS: dict[Condition, Literal["string", "number", "boolean", "time", "json", "any"]] = {
    Condition.STRING_EQUALS: "string",
    Condition.CONTAINS_SUBSTRING: "string",
    Condition.NUMBER_EQUAL_TO: "number",
    Condition.NUMBER_GREATER_THAN: "number",
    Condition.NUMBER_LESS_THAN: "number",
    Condition.IS_TRUE: "boolean",
    Condition.IS_FALSE: "boolean",
    Condition.HAS_ANY_VALUE: "any",
    Condition.BEFORE_TIME: "time",
    Condition.AFTER_TIME: "time",
    Condition.BETWEEN_TIME: "time",
    Condition.JSON_MATCH: "json",
}

_STRING_CONDITIONS = frozenset({Condition.STRING_EQUALS, Condition.CONTAINS_SUBSTRING})
_NUMBER_CONDITIONS = frozenset(
    {Condition.NUMBER_EQUAL_TO, Condition.NUMBER_GREATER_THAN, Condition.NUMBER_LESS_THAN}
)
# HAS_ANY_VALUE has no match options [doc]; IS_TRUE / IS_FALSE compare with nothing either, so
# the builder sends none (pass ``options=`` to override).
_NO_OPTION_CONDITIONS = frozenset({Condition.IS_TRUE, Condition.IS_FALSE, Condition.HAS_ANY_VALUE})


def _parse_condition(value: str) -> Condition | str:
    try:
        return Condition(value)
    except ValueError:
        return value


def _condition_str(value: Condition | str) -> str:
    return value.value if isinstance(value, Condition) else value


def _extra(data: Mapping[str, Any], known: Iterable[str]) -> dict[str, Any]:
    """Keys this library does not model, plus documented keys the API sent as explicit nulls
    (kept so that ``to_api()`` writes them back as it read them)."""
    known = frozenset(known)
    return {k: v for k, v in data.items() if k not in known or v is None}


def _merge(known: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        known.setdefault(key, value)
    return known


# ----------------------------------------------------------------------------- attribute refs


@attrs.frozen(kw_only=True)
class CustomAttributeRef:
    """A custom attribute, referenced by its **uid** (not its key).

    Example::

        CustomAttributeRef(uid="6a1f...").to_api()
        # {'__type': 'CustomAttributeReference', 'ref': '6a1f...'}
    """

    uid: str
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    def to_api(self) -> dict[str, Any]:
        """The reference as the API's JSON."""
        return _merge({"__type": "CustomAttributeReference", "ref": self.uid}, self.extra)


@attrs.frozen(kw_only=True)
class PresetAttributeRef:
    """A preset attribute, referenced by its name (``COUNTRY``, ``DEVICE_TYPE``...).

    Example::

        PresetAttributeRef(name="COUNTRY").to_api()
        # {'__type': 'PresetAttributeReference', 'ref': 'COUNTRY'}
    """

    name: str
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    def to_api(self) -> dict[str, Any]:
        """The reference as the API's JSON."""
        return _merge({"__type": "PresetAttributeReference", "ref": self.name}, self.extra)


@attrs.frozen(kw_only=True)
class AttributeRef:
    """An attribute reference of a kind this library does not know, kept verbatim.

    Example::

        AttributeRef(type_name="SegmentReference", fields={"ref": "abc"}).to_api()
        # {'__type': 'SegmentReference', 'ref': 'abc'}
    """

    type_name: str | None
    fields: Mapping[str, Any] = attrs.field(factory=dict)

    def to_api(self) -> dict[str, Any]:
        """The reference as the API's JSON (``__type`` plus the kept fields)."""
        out: dict[str, Any] = {} if self.type_name is None else {"__type": self.type_name}
        return _merge(out, self.fields)


AttributeReference: TypeAlias = CustomAttributeRef | PresetAttributeRef | AttributeRef


def _parse_attribute_ref(data: Mapping[str, Any]) -> AttributeReference:
    kind = data.get("__type")
    ref = data.get("ref")
    if isinstance(ref, str):
        if kind == "CustomAttributeReference":
            return CustomAttributeRef(uid=ref, extra=_extra(data, ("__type", "ref")))
        if kind == "PresetAttributeReference":
            return PresetAttributeRef(name=ref, extra=_extra(data, ("__type", "ref")))
    type_name = kind if isinstance(kind, str) else None
    fields = {k: v for k, v in data.items() if k != "__type" or type_name is None}
    return AttributeRef(type_name=type_name, fields=fields)


# ----------------------------------------------------------------------------- match options


@attrs.frozen(kw_only=True)
class StringMatchOptions:
    """``{"__type": "StringMatchOptions", "value": ...}`` for string conditions.

    Example::

        Rule.preset("COUNTRY", Condition.STRING_EQUALS, options=StringMatchOptions(value="FR"))
    """

    value: str
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    def to_api(self) -> dict[str, Any]:
        """The options as the API's JSON."""
        return _merge({"__type": "StringMatchOptions", "value": self.value}, self.extra)


@attrs.frozen(kw_only=True)
class NumberMatchOptions:
    """``{"__type": "NumberMatchOptions", "value": ...}`` for number conditions.

    Example::

        Rule.custom(ltv.uid, Condition.NUMBER_LESS_THAN, options=NumberMatchOptions(value=10))
    """

    value: int | float
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    def to_api(self) -> dict[str, Any]:
        """The options as the API's JSON."""
        return _merge({"__type": "NumberMatchOptions", "value": self.value}, self.extra)


@attrs.frozen(kw_only=True)
class MatchOptions:
    """Match options of an undocumented kind (time, JSON...), sent and kept verbatim.

    Example: ``MatchOptions(type_name="TimeMatchOptions", fields={"value": "2024-01-01"})``.
    """

    type_name: str | None
    fields: Mapping[str, Any] = attrs.field(factory=dict)

    def to_api(self) -> dict[str, Any]:
        """The options as the API's JSON (``__type`` plus the kept fields)."""
        out: dict[str, Any] = {} if self.type_name is None else {"__type": self.type_name}
        return _merge(out, self.fields)


Options: TypeAlias = StringMatchOptions | NumberMatchOptions | MatchOptions


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_options(data: Mapping[str, Any]) -> Options:
    kind = data.get("__type")
    value = data.get("value")
    if kind == "StringMatchOptions" and isinstance(value, str):
        return StringMatchOptions(value=value, extra=_extra(data, ("__type", "value")))
    if kind == "NumberMatchOptions" and isinstance(value, (int, float)) and _is_number(value):
        return NumberMatchOptions(value=value, extra=_extra(data, ("__type", "value")))
    type_name = kind if isinstance(kind, str) else None
    fields = {k: v for k, v in data.items() if k != "__type" or type_name is None}
    return MatchOptions(type_name=type_name, fields=fields)


# ----------------------------------------------------------------------------- nodes


@attrs.frozen(kw_only=True)
class Rule:
    """One comparison: ``attribute`` ``condition`` ``options``, optionally inverted.

    Build one with :meth:`custom`, :meth:`preset`, :meth:`for_attribute` or :meth:`for_key`.

    Example::

        gold = Rule.custom(plan.uid, Condition.STRING_EQUALS, value="gold")
        not_gold = ~gold  # the same rule with invertCondition set
    """

    attribute: AttributeReference
    condition: Condition | str
    options: Options | None = None
    invert: bool = False
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    _KEYS = ("__type", "attribute", "attributeMatchCondition", "attributeMatchOptions")

    # -- builders --------------------------------------------------------------------------

    @classmethod
    def custom(
        cls,
        attribute_uid: str,
        condition: Condition | str,
        value: Any = NOT_GIVEN,
        *,
        options: Options | None = None,
        invert: bool = False,
    ) -> Rule:
        """A rule on a custom attribute, by uid. ``value`` becomes the matching options.

        Example: ``Rule.custom(ltv.uid, Condition.NUMBER_GREATER_THAN, value=1000)``.
        """
        if not isinstance(attribute_uid, str) or not attribute_uid:
            raise ValidationError(
                f"attribute uid must be a non-empty string: {attribute_uid!r}; pass the uid "
                "of an Attribute from client.attributes (not its key), or use Rule.for_key"
            )
        return cls(
            attribute=CustomAttributeRef(uid=attribute_uid),
            condition=condition,
            options=_options_for(condition, value, options),
            invert=invert,
        )

    @classmethod
    def preset(
        cls,
        name: str,
        condition: Condition | str,
        value: Any = NOT_GIVEN,
        *,
        options: Options | None = None,
        invert: bool = False,
    ) -> Rule:
        """A rule on a preset attribute, by name (``"COUNTRY"``...)."""
        if not isinstance(name, str) or not name:
            raise ValidationError(
                f"preset attribute name must be a non-empty string: {name!r}; pass a preset "
                "key such as 'COUNTRY' (see client.attributes.list())"
            )
        return cls(
            attribute=PresetAttributeRef(name=name),
            condition=condition,
            options=_options_for(condition, value, options),
            invert=invert,
        )

    @classmethod
    def for_attribute(
        cls,
        attribute: AttributeLike,
        condition: Condition | str,
        value: Any = NOT_GIVEN,
        *,
        options: Options | None = None,
        invert: bool = False,
    ) -> Rule:
        """A rule on an :class:`~contentstack_personalize.models.Attribute` read from the API:
        custom attributes are referenced by uid, presets by their key (their reference name)."""
        if attribute.is_preset:
            return cls.preset(attribute.key, condition, value, options=options, invert=invert)
        return cls.custom(attribute.uid, condition, value, options=options, invert=invert)

    @classmethod
    def for_key(
        cls,
        key: str,
        attributes: Iterable[AttributeLike],
        condition: Condition | str,
        value: Any = NOT_GIVEN,
        *,
        options: Options | None = None,
        invert: bool = False,
    ) -> Rule:
        """A rule on the attribute whose key is ``key``, resolved to its uid through
        ``attributes`` (e.g. ``client.attributes.list()``)."""
        known = list(attributes)
        for attribute in known:
            if attribute.key == key:
                return cls.for_attribute(
                    attribute, condition, value, options=options, invert=invert
                )
        keys = ", ".join(sorted(a.key for a in known)) or "none"
        raise ValidationError(
            f"no attribute with key {key!r} (known keys: {keys}); create it first, e.g. with "
            "client.attributes.ensure([...])"
        )

    def inverted(self) -> Rule:
        """The same rule with ``invertCondition`` flipped."""
        return attrs.evolve(self, invert=not self.invert)

    def __invert__(self) -> Rule:
        return self.inverted()

    # -- API ---------------------------------------------------------------------------------

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Rule:
        """Read a ``{"__type": "Rule", ...}`` node; raise ``ValueError`` if it is malformed."""
        attribute = data.get("attribute")
        condition = data.get("attributeMatchCondition")
        options = data.get("attributeMatchOptions")
        invert = data.get("invertCondition", False)
        if not (
            isinstance(attribute, Mapping)
            and isinstance(condition, str)
            and (options is None or isinstance(options, Mapping))
            and isinstance(invert, bool)
        ):
            raise ValueError("not a well-formed Rule")
        return cls(
            attribute=_parse_attribute_ref(attribute),
            condition=_parse_condition(condition),
            options=None if options is None else _parse_options(options),
            invert=invert,
            extra=_extra(data, (*cls._KEYS, "invertCondition")),
        )

    def to_api(self) -> dict[str, Any]:
        """The rule as the API's JSON."""
        out: dict[str, Any] = {
            "__type": "Rule",
            "attribute": self.attribute.to_api(),
            "attributeMatchCondition": _condition_str(self.condition),
        }
        if self.options is not None:
            out["attributeMatchOptions"] = self.options.to_api()
        out["invertCondition"] = self.invert
        return _merge(out, self.extra)

    @property
    def value(self) -> Any:
        """The compared value (``options.value``), or ``None``."""
        if isinstance(self.options, (StringMatchOptions, NumberMatchOptions)):
            return self.options.value
        if isinstance(self.options, MatchOptions):
            return self.options.fields.get("value")
        return None


def _options_for(condition: Condition | str, value: Any, options: Options | None) -> Options | None:
    if options is not None:
        if not isinstance(value, NotGiven):
            raise ValidationError("pass value= or options=, not both; drop one of them")
        return options
    cond = _parse_condition(condition) if isinstance(condition, str) else condition
    if cond in _NO_OPTION_CONDITIONS:
        if not isinstance(value, NotGiven):
            raise ValidationError(f"{_condition_str(cond)} compares with no value; drop value=")
        return None
    if isinstance(value, NotGiven):
        raise ValidationError(
            f"{_condition_str(cond)} needs value= (or options=MatchOptions(...) for "
            "undocumented option kinds)"
        )
    if cond in _STRING_CONDITIONS:
        if not isinstance(value, str):
            raise ValidationError(
                f"{_condition_str(cond)} compares strings; value {value!r} is "
                f"{type(value).__name__}; pass a str (e.g. str(value))"
            )
        return StringMatchOptions(value=value)
    if cond in _NUMBER_CONDITIONS:
        if not _is_number(value):
            raise ValidationError(
                f"{_condition_str(cond)} compares numbers; value {value!r} is "
                f"{type(value).__name__}; pass an int or float"
            )
        return NumberMatchOptions(value=value)
    raise ValidationError(
        f"the match options of {_condition_str(cond)} are not documented; pass "
        "options=MatchOptions(type_name=..., fields={...}) explicitly"
    )


@attrs.frozen(kw_only=True)
class RawNode:
    """A definition node this library cannot read (unknown ``__type``), kept verbatim.

    Example::

        node = parse_definition({"__type": "SomethingNew", "x": 1})
        assert isinstance(node, RawNode) and node.to_api() == {"__type": "SomethingNew", "x": 1}
    """

    data: Any

    def to_api(self) -> Any:
        """The node exactly as it was read."""
        return self.data


def _nodes(items: Iterable[RuleNode]) -> tuple[RuleNode, ...]:
    return tuple(items)


@attrs.frozen(kw_only=True)
class RuleCombination:
    """``AND`` / ``OR`` over rules and nested combinations; an audience's ``definition``.

    :func:`all_of` and :func:`any_of` build one.

    Example::

        RuleCombination(combination_type="OR", rules=[rule_a, rule_b])  # same as any_of(a, b)
    """

    combination_type: Literal["AND", "OR"] | str = "AND"
    rules: tuple[RuleNode, ...] = attrs.field(default=(), converter=_nodes)
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> RuleCombination:
        """Read a ``{"__type": "RuleCombination", ...}`` node; raise ``ValueError`` if malformed."""
        rules = data.get("rules", ())
        kind = data.get("combinationType")
        if not isinstance(rules, list) or not isinstance(kind, str):
            raise ValueError("not a well-formed RuleCombination")
        return cls(
            combination_type=kind,
            rules=tuple(_parse_node(r) for r in rules),
            extra=_extra(data, ("__type", "combinationType", "rules")),
        )

    def to_api(self) -> dict[str, Any]:
        """The combination (and its nested nodes) as the API's JSON."""
        out: dict[str, Any] = {
            "__type": "RuleCombination",
            "combinationType": self.combination_type,
            "rules": [r.to_api() for r in self.rules],
        }
        return _merge(out, self.extra)

    def walk(self) -> Iterator[Rule]:
        """Every :class:`Rule` in this tree, depth first."""
        for node in self.rules:
            if isinstance(node, Rule):
                yield node
            elif isinstance(node, RuleCombination):
                yield from node.walk()

    def expected_value_kinds(self) -> dict[str, set[str]]:
        """``{custom attribute uid: {"string", "number", ...}}`` from the conditions used.

        The conditions are the only place an attribute's type shows; a sync can check its
        mapping against this.
        """
        kinds: dict[str, set[str]] = {}
        for rule in self.walk():
            if isinstance(rule.attribute, CustomAttributeRef) and isinstance(
                rule.condition, Condition
            ):
                kinds.setdefault(rule.attribute.uid, set()).add(rule.condition.value_kind)
        return kinds


RuleNode: TypeAlias = Rule | RuleCombination | RawNode


def _parse_node(data: Any) -> RuleNode:
    if isinstance(data, Mapping):
        kind = data.get("__type")
        try:
            if kind == "RuleCombination":
                return RuleCombination.from_api(data)
            if kind == "Rule":
                return Rule.from_api(data)
        except ValueError:
            pass
    return RawNode(data=data)


def parse_definition(data: Mapping[str, Any]) -> RuleCombination | RawNode:
    """Read an audience ``definition``; an unreadable one is kept verbatim as :class:`RawNode`.

    Example::

        definition = parse_definition(audience_json["definition"])
        rules = list(definition.walk()) if isinstance(definition, RuleCombination) else []
    """
    node = _parse_node(data)
    if isinstance(node, Rule):  # pragma: no cover - a definition's root is a combination
        return RawNode(data=data)
    return node


def all_of(*rules: RuleNode) -> RuleCombination:
    """``AND`` of the given rules and combinations.

    Example::

        all_of(
            Rule.custom(plan.uid, Condition.STRING_EQUALS, value="gold"),
            Rule.preset("COUNTRY", Condition.STRING_EQUALS, value="FR"),
        )
    """
    return RuleCombination(combination_type="AND", rules=rules)


def any_of(*rules: RuleNode) -> RuleCombination:
    """``OR`` of the given rules and combinations.

    Example::

        any_of(
            Rule.preset("COUNTRY", Condition.STRING_EQUALS, value="FR"),
            Rule.preset("COUNTRY", Condition.STRING_EQUALS, value="BE"),
        )
    """
    return RuleCombination(combination_type="OR", rules=rules)


# ----------------------------------------------------------------------------- membership rules

#: How audience membership is written into attributes (see
#: :mod:`contentstack_personalize.membership`): ``"delimited"``, one text attribute holding every
#: audience between delimiters, or ``"boolean"``, one true/false attribute per audience.
MembershipEncoding = Literal["delimited", "boolean"]

#: The delimiter around each member of a ``"delimited"`` membership attribute.
DEFAULT_MEMBERSHIP_DELIMITER = "|"


def check_membership_delimiter(delimiter: str) -> None:
    """Refuse a delimiter a membership attribute cannot use (empty, blank or too long)."""
    if not delimiter or delimiter.isspace() or len(delimiter) > 3:
        raise ConfigurationError(
            f"delimiter must be 1 to 3 visible characters, e.g. '|', not {delimiter!r}"
        )


def flag_key(audience: str, prefix: str = "in_") -> str:
    """The boolean attribute key for ``audience`` (non key characters become ``_``).

    Example::

        flag_key("churn-risk")  # 'in_churn_risk'
    """
    return prefix + re.sub(r"[^A-Za-z0-9_]", "_", audience)


def membership_rule(
    attribute: AttributeLike,
    member_id: str,
    *,
    encoding: MembershipEncoding = "delimited",
    delimiter: str = DEFAULT_MEMBERSHIP_DELIMITER,
) -> RuleCombination:
    """The audience definition that matches users whose membership attribute holds
    ``member_id``.

    Example::

        attribute = client.attributes.ensure(["audiences"])[0]
        definition = membership_rule(attribute, "vip")  # CONTAINS_SUBSTRING "|vip|"
        client.audiences.create(name="VIP", definition=definition)
    """
    if encoding == "boolean":
        return all_of(Rule.custom(attribute.uid, Condition.IS_TRUE))
    check_membership_delimiter(delimiter)
    if not member_id or delimiter in member_id:
        raise ValidationError(
            f"audience identifier {member_id!r} must be non-empty and not contain {delimiter!r}; "
            "pass another member_id, or another delimiter= (the same one the sync uses)"
        )
    return all_of(
        Rule.custom(
            attribute.uid, Condition.CONTAINS_SUBSTRING, f"{delimiter}{member_id}{delimiter}"
        )
    )
