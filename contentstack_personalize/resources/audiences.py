"""``client.audiences``: audiences and their rule definitions (Management API).

Example::

    from contentstack_personalize.rules import Condition, Rule, all_of

    plan = client.attributes.ensure(["plan"])[0]
    gold = client.audiences.create(
        name="Gold", definition=all_of(Rule.for_attribute(plan, Condition.STRING_EQUALS, "gold"))
    )
"""

from __future__ import annotations

import builtins

from .._types import NOT_GIVEN, NotGiven
from ..models import Audience
from ..rules import MembershipEncoding, RuleCombination
from . import _ops
from ._base import AsyncResource, BlockingResource

__all__ = ["AsyncAudiences", "Audiences"]


class Audiences(BlockingResource):
    """Audiences, reached as ``client.audiences``. Those synced from Lytics are read-only
    (``Audience.is_read_only``).

    Example::

        gold = client.audiences.create(name="Gold", definition=all_of(rule))
        client.audiences.update(gold, description="Gold plan subscribers")
    """

    def list(self) -> builtins.list[Audience]:
        """Every audience of the project."""
        return self._run(_ops.audiences_list())

    def get(self, uid: str) -> Audience:
        """One audience by uid (listed and picked; :class:`NotFoundError` when missing)."""
        return self._run(_ops.audiences_get(uid))

    def create(
        self, *, name: str, definition: RuleCombination, description: str | None = None
    ) -> Audience:
        """Create an audience from a rule definition (see :mod:`contentstack_personalize.rules`)."""
        return self._run(_ops.audiences_create(name, definition, description))

    def update(
        self,
        uid: str | Audience,
        *,
        name: str | NotGiven = NOT_GIVEN,
        description: str | NotGiven | None = NOT_GIVEN,
        definition: RuleCombination | NotGiven = NOT_GIVEN,
    ) -> Audience:
        """Change an audience; fields not passed are kept. A Lytics audience raises
        :class:`ConfigurationError` before anything is written."""
        return self._run(_ops.audiences_update(uid, name, description, definition))

    def delete(self, uid: str | Audience) -> None:
        """Delete an audience (a Lytics one raises :class:`ConfigurationError`)."""
        return self._run(_ops.audiences_delete(uid))

    def ensure_membership(
        self,
        name: str,
        *,
        member_id: str | None = None,
        attribute_key: str = "audiences",
        encoding: MembershipEncoding = "delimited",
        delimiter: str = "|",
        description: str | None = None,
        update: bool = False,
    ) -> Audience:
        """An audience ``name`` whose members are the users whose ``attribute_key`` attribute
        holds ``member_id`` (default ``name``); created once, idempotent.

        Creates the attribute when it is missing; running it again changes nothing, and an
        existing audience with another definition is replaced only with ``update=True``. The
        encoding is that of :mod:`contentstack_personalize.membership`."""
        return self._run(
            _ops.audiences_ensure_membership(
                name, member_id, attribute_key, encoding, delimiter, description, update
            )
        )


class AsyncAudiences(AsyncResource):
    """Audiences (async), reached as ``client.audiences``.

    Example::

        vip = await client.audiences.ensure_membership("VIP")
    """

    async def list(self) -> builtins.list[Audience]:
        """See :meth:`Audiences.list`."""
        return await self._run(_ops.audiences_list())

    async def get(self, uid: str) -> Audience:
        """See :meth:`Audiences.get`."""
        return await self._run(_ops.audiences_get(uid))

    async def create(
        self, *, name: str, definition: RuleCombination, description: str | None = None
    ) -> Audience:
        """See :meth:`Audiences.create`."""
        return await self._run(_ops.audiences_create(name, definition, description))

    async def update(
        self,
        uid: str | Audience,
        *,
        name: str | NotGiven = NOT_GIVEN,
        description: str | NotGiven | None = NOT_GIVEN,
        definition: RuleCombination | NotGiven = NOT_GIVEN,
    ) -> Audience:
        """See :meth:`Audiences.update`."""
        return await self._run(_ops.audiences_update(uid, name, description, definition))

    async def delete(self, uid: str | Audience) -> None:
        """See :meth:`Audiences.delete`."""
        return await self._run(_ops.audiences_delete(uid))

    async def ensure_membership(
        self,
        name: str,
        *,
        member_id: str | None = None,
        attribute_key: str = "audiences",
        encoding: MembershipEncoding = "delimited",
        delimiter: str = "|",
        description: str | None = None,
        update: bool = False,
    ) -> Audience:
        """See :meth:`Audiences.ensure_membership`."""
        return await self._run(
            _ops.audiences_ensure_membership(
                name, member_id, attribute_key, encoding, delimiter, description, update
            )
        )
