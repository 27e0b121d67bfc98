"""``client.attributes``: the project's attribute catalogue (Management API).

Example::

    attributes = client.attributes.ensure({"plan": "Plan", "ltv": "Lifetime value"})
    custom = [a for a in client.attributes.list() if a.is_custom]
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping

from .._types import NOT_GIVEN, NotGiven
from ..models import Attribute
from . import _ops
from ._base import AsyncResource, BlockingResource

__all__ = ["AsyncAttributes", "Attributes"]


class Attributes(BlockingResource):
    """Custom and preset attributes, reached as ``client.attributes``.

    Example::

        plan, ltv = client.attributes.ensure(["plan", "ltv"])
        client.attributes.update(plan, description="Subscription tier")
    """

    def list(self) -> builtins.list[Attribute]:
        """Every attribute, custom and preset (``Attribute.is_custom`` / ``is_preset``)."""
        return self._run(_ops.attributes_list())

    def get(self, uid: str) -> Attribute:
        """One attribute by uid. The API has no GET by uid: this lists and picks it, and raises
        :class:`NotFoundError` when it is missing."""
        return self._run(_ops.attributes_get(uid))

    def create(
        self, *, key: str, name: str | None = None, description: str | None = None
    ) -> Attribute:
        """Create a custom attribute; ``name`` defaults to ``key``. A duplicate key raises
        :class:`ConflictError`; a key with spaces or punctuation raises ValidationError."""
        return self._run(_ops.attributes_create(key, name, description))

    def update(
        self,
        uid: str | Attribute,
        *,
        key: str | NotGiven = NOT_GIVEN,
        name: str | NotGiven = NOT_GIVEN,
        description: str | NotGiven | None = NOT_GIVEN,
    ) -> Attribute:
        """Change a custom attribute. ``PUT`` sends the full object: fields not passed are read
        first and kept (pass the ``Attribute`` itself to skip that read); ``description=None``
        clears it."""
        return self._run(_ops.attributes_update(uid, key, name, description))

    def delete(self, uid: str | Attribute) -> None:
        """Delete a custom attribute."""
        return self._run(_ops.attributes_delete(uid))

    def ensure(self, keys: Iterable[str] | Mapping[str, str]) -> builtins.list[Attribute]:
        """Make sure custom attributes exist for ``keys`` (or ``{key: name}``) and return them,
        in the order given. Lists once and creates only the missing ones; tolerates another
        process creating one meanwhile (409); a key taken by a preset raises
        :class:`ConfigurationError`. Existing attributes are not renamed. Idempotent."""
        return self._run(_ops.attributes_ensure(keys))


class AsyncAttributes(AsyncResource):
    """Custom and preset attributes (async), reached as ``client.attributes``.

    Example::

        attributes = await client.attributes.ensure({"plan": "Plan"})
    """

    async def list(self) -> builtins.list[Attribute]:
        """See :meth:`Attributes.list`."""
        return await self._run(_ops.attributes_list())

    async def get(self, uid: str) -> Attribute:
        """See :meth:`Attributes.get`."""
        return await self._run(_ops.attributes_get(uid))

    async def create(
        self, *, key: str, name: str | None = None, description: str | None = None
    ) -> Attribute:
        """See :meth:`Attributes.create`."""
        return await self._run(_ops.attributes_create(key, name, description))

    async def update(
        self,
        uid: str | Attribute,
        *,
        key: str | NotGiven = NOT_GIVEN,
        name: str | NotGiven = NOT_GIVEN,
        description: str | NotGiven | None = NOT_GIVEN,
    ) -> Attribute:
        """See :meth:`Attributes.update`."""
        return await self._run(_ops.attributes_update(uid, key, name, description))

    async def delete(self, uid: str | Attribute) -> None:
        """See :meth:`Attributes.delete`."""
        return await self._run(_ops.attributes_delete(uid))

    async def ensure(self, keys: Iterable[str] | Mapping[str, str]) -> builtins.list[Attribute]:
        """See :meth:`Attributes.ensure`."""
        return await self._run(_ops.attributes_ensure(keys))
