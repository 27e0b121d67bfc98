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

The rule side (:func:`membership_rule`, :data:`MembershipEncoding`) lives with the other rule
builders in :mod:`contentstack_personalize.rules` and is re-exported here; creating the
attribute and the audience is ``client.audiences.ensure_membership(...)``. This module adds the
sync side: the encoding and the mapping fields that write the attribute.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ._values import is_null
from .rules import (
    DEFAULT_MEMBERSHIP_DELIMITER,
    MembershipEncoding,
    check_membership_delimiter,
    flag_key,
    membership_rule,
)
from .sync import Field

if TYPE_CHECKING:
    from .client import AsyncPersonalizeClient, PersonalizeClient
    from .models import Audience

__all__ = [
    "MembershipEncoding",
    "encode_membership",
    "membership",
    "membership_flags",
    "membership_rule",
]

_DEFAULT_DELIMITER = DEFAULT_MEMBERSHIP_DELIMITER


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
    check_membership_delimiter(delimiter)

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
    ``update=True``. The same as ``client.audiences.ensure_membership(...)``.

    Example::

        vip = ensure_membership(client, "VIP", member_id="vip")
        sync = Sync(client, match_on="user_id", mapping={"segments": membership("audiences")})
    """
    return client.audiences.ensure_membership(
        name,
        member_id=member_id,
        attribute_key=attribute_key,
        encoding=encoding,
        delimiter=delimiter,
        description=description,
        update=update,
    )


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
    """:func:`ensure_membership` for an async client (``await
    client.audiences.ensure_membership(...)``).

    Example::

        vip = await aensure_membership(async_client, "VIP", member_id="vip")
    """
    return await client.audiences.ensure_membership(
        name,
        member_id=member_id,
        attribute_key=attribute_key,
        encoding=encoding,
        delimiter=delimiter,
        description=description,
        update=update,
    )
