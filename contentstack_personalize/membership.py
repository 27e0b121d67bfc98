"""Audience membership through a custom attribute.

Personalize audiences are rules over user attributes, so "user X is in audience Y" is written by
syncing an attribute that an audience's rule matches. This module owns the encoding of that
attribute and the idempotent creation of the attribute and the audiences that read it.

**The encoding, and why.** Among the documented rule conditions, only ``CONTAINS_SUBSTRING``
can test one attribute for one of many members; lists have no documented condition at all, and
one boolean attribute per audience spends the project's custom-attribute budget (100 by
default) one audience at a time. Plain substring matching is unsafe (``"vip"`` is inside
``"vip-lapsed"``), so every member is wrapped in delimiters, and so is the whole value::

    {"vip", "churn-risk"}  ->  "|churn-risk|vip|"      rule: CONTAINS_SUBSTRING "|vip|"

An identifier may not contain the delimiter (such a row is invalid), members are de-duplicated
and sorted (the same set always gives the same text, so an unchanged membership sends nothing),
and a user in no audience gets the empty string, never ``null``: ``null`` is skipped by default,
which would leave a removed user in the audience. ``encoding="boolean"`` (one attribute per
audience, rule ``IS_TRUE``) is offered for the few cases where exact, independent attributes
matter more than the budget.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

from ._values import is_null
from .errors import ConfigurationError, ValidationError
from .rules import Condition, Rule, RuleCombination, all_of
from .sync._fields import Field

if TYPE_CHECKING:
    from .client import AsyncPersonalizeClient, PersonalizeClient
    from .models import Attribute, Audience

__all__ = [
    "MembershipEncoding",
    "encode_membership",
    "membership",
    "membership_flags",
    "membership_rule",
]

MembershipEncoding = Literal["delimited", "boolean"]

_DEFAULT_DELIMITER = "|"


def _members(value: Any, split: str | None) -> list[str]:
    if value is None or (not isinstance(value, (list, tuple, set, frozenset)) and is_null(value)):
        return []
    if isinstance(value, str):
        if split is not None:
            return [part.strip() for part in value.split(split) if part.strip()]
        return [value] if value.strip() else []
    if isinstance(value, (list, tuple, set, frozenset)) or type(value).__name__ == "ndarray":
        items = list(value)
    else:
        raise ValueError(
            f"a membership value must be an audience identifier or a list of them, "
            f"not {type(value).__name__}"
        )
    out = []
    for item in items:
        if item is None:
            continue
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise ValueError(f"audience identifier {item!r} must be text or an integer")
        text = str(item).strip()
        if text:
            out.append(text)
    return out


def encode_membership(
    value: Any, *, delimiter: str = _DEFAULT_DELIMITER, split: str | None = None
) -> str:
    """The attribute text for a membership value (one identifier, or a list of them).

    >>> encode_membership(["vip", "churn-risk", "vip"])
    '|churn-risk|vip|'
    >>> encode_membership(None)
    ''
    """
    members = _members(value, split)
    for member in members:
        if delimiter in member:
            raise ValueError(
                f"audience identifier {member!r} contains the delimiter {delimiter!r}; "
                "choose another delimiter"
            )
    if not members:
        return ""
    return delimiter + delimiter.join(sorted(set(members))) + delimiter


def membership(
    key: str = "audiences",
    *,
    column: str | None = None,
    delimiter: str = _DEFAULT_DELIMITER,
    split: str | None = None,
) -> Field:
    """A mapping field syncing a membership column (one audience per row, or a list per row)
    into the custom attribute ``key``, in the encoding the rules of
    :func:`membership_rule` and ``audiences.ensure_membership`` match.

    ``split`` reads a delimited text column (``"vip,churn"`` with ``split=","``).

    Example::

        Sync(client, match_on="user_id", mapping={
            "plan": "plan",
            "segments": membership("audiences"),
        })
    """
    _check_delimiter(delimiter)

    def encode(value: Any) -> str:
        return encode_membership(value, delimiter=delimiter, split=split)

    # A user in no audience gets "" (never null, which is skipped and would keep them in).
    return Field(key, column=column, transform=encode, type=str, default="")


def membership_flags(column: str, audiences: Iterable[str], *, prefix: str = "in_") -> list[Field]:
    """The ``encoding="boolean"`` alternative: one boolean attribute per audience
    (``<prefix><audience>``), true when the row's membership column contains it.

    Example: ``mapping=[Field("plan", column="plan"), *membership_flags("segments", ["vip"])]``
    """
    fields = []
    for audience in audiences:
        key = flag_key(audience, prefix)

        def compute(row: Any, _audience: str = audience) -> bool:
            return _audience in _members(row.get(column), None)

        fields.append(Field(key, compute=compute, type=bool))
    return fields


def flag_key(audience: str, prefix: str = "in_") -> str:
    """The boolean attribute key for ``audience`` (non key characters become ``_``).

    Example::

        flag_key("churn-risk")  # 'in_churn_risk'
    """
    return prefix + re.sub(r"[^A-Za-z0-9_]", "_", audience)


def _check_delimiter(delimiter: str) -> None:
    if not delimiter or delimiter.isspace() or len(delimiter) > 3:
        raise ConfigurationError(
            f"delimiter must be 1 to 3 visible characters, e.g. '|', not {delimiter!r}"
        )


def membership_rule(
    attribute: Attribute,
    member_id: str,
    *,
    encoding: MembershipEncoding = "delimited",
    delimiter: str = _DEFAULT_DELIMITER,
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
    _check_delimiter(delimiter)
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


def _plan(
    attributes: list[Attribute],
    audiences: list[Audience],
    *,
    name: str,
    member_id: str,
    attribute_key: str,
    encoding: MembershipEncoding,
    delimiter: str,
    update: bool,
) -> tuple[str, RuleCombination, Audience | None]:
    """Pure decision: ``("create" | "update" | "keep", definition, existing audience)``."""
    attribute = next((a for a in attributes if a.key == attribute_key), None)
    if attribute is None:  # pragma: no cover - ensure() ran just before
        raise ConfigurationError(
            f"attribute {attribute_key!r} is missing; create it with "
            f"client.attributes.ensure([{attribute_key!r}])"
        )
    definition = membership_rule(attribute, member_id, encoding=encoding, delimiter=delimiter)
    existing = [a for a in audiences if a.name == name]
    if not existing:
        return "create", definition, None
    audience = existing[0]
    if audience.is_read_only:
        raise ConfigurationError(
            f"audience {name!r} is synced from Lytics and cannot be changed; choose another name"
        )
    current = audience.definition.to_api() if audience.definition is not None else None
    if current == definition.to_api():
        return "keep", definition, audience
    if not update:
        raise ConfigurationError(
            f"audience {name!r} exists with a different definition; pass update=True to "
            "replace it with the membership rule"
        )
    return "update", definition, audience


def _names(
    name: str, member_id: str | None, attribute_key: str, encoding: MembershipEncoding
) -> tuple[str, str]:
    member = member_id if member_id is not None else name
    key = (
        flag_key(member)
        if encoding == "boolean" and attribute_key == "audiences"
        else attribute_key
    )
    return member, key


def ensure_membership(
    client: PersonalizeClient,
    name: str,
    *,
    member_id: str | None = None,
    attribute_key: str = "audiences",
    encoding: MembershipEncoding = "delimited",
    delimiter: str = _DEFAULT_DELIMITER,
    description: str | None = None,
    update: bool = False,
) -> Audience:
    """Create (once) the membership attribute and an audience ``name`` whose rule matches the
    users whose attribute holds ``member_id`` (default: ``name``). Running it again changes
    nothing; an existing audience with another definition is replaced only with
    ``update=True``. Also available as ``client.audiences.ensure_membership(...)``.

    Example::

        vip = ensure_membership(client, "VIP", member_id="vip")
        sync = Sync(client, match_on="user_id", mapping={"segments": membership("audiences")})
    """
    member, key = _names(name, member_id, attribute_key, encoding)
    attributes = client.attributes.ensure([key])
    action, definition, existing = _plan(
        attributes,
        client.audiences.list(),
        name=name,
        member_id=member,
        attribute_key=key,
        encoding=encoding,
        delimiter=delimiter,
        update=update,
    )
    if action == "create":
        return client.audiences.create(name=name, definition=definition, description=description)
    assert existing is not None
    if action == "update":
        return client.audiences.update(existing, definition=definition)
    return existing


async def aensure_membership(
    client: AsyncPersonalizeClient,
    name: str,
    *,
    member_id: str | None = None,
    attribute_key: str = "audiences",
    encoding: MembershipEncoding = "delimited",
    delimiter: str = _DEFAULT_DELIMITER,
    description: str | None = None,
    update: bool = False,
) -> Audience:
    """The async twin of :func:`ensure_membership`.

    Example::

        vip = await aensure_membership(async_client, "VIP", member_id="vip")
    """
    member, key = _names(name, member_id, attribute_key, encoding)
    attributes = await client.attributes.ensure([key])
    action, definition, existing = _plan(
        attributes,
        await client.audiences.list(),
        name=name,
        member_id=member,
        attribute_key=key,
        encoding=encoding,
        delimiter=delimiter,
        update=update,
    )
    if action == "create":
        return await client.audiences.create(
            name=name, definition=definition, description=description
        )
    assert existing is not None
    if action == "update":
        return await client.audiences.update(existing, definition=definition)
    return existing
