"""``client.events``: the project's event catalogue (what conversions refer to).

Example::

    client.events.create(key="clickCTA", description="Clicked the main call to action")
"""

from __future__ import annotations

import builtins

from .._types import NOT_GIVEN, NotGiven
from ..models import Event
from . import _ops
from ._base import AsyncResource, BlockingResource

__all__ = ["AsyncEvents", "Events"]


class Events(BlockingResource):
    """Events (Management API), reached as ``client.events``.

    Example::

        keys = {event.key for event in client.events.list()}
        if "clickCTA" not in keys:
            client.events.create(key="clickCTA")
    """

    def list(self) -> builtins.list[Event]:
        """Every event of the project."""
        return self._run(_ops.events_list())

    def get(self, uid: str) -> Event:
        """One event by uid (listed and picked; :class:`NotFoundError` when missing)."""
        return self._run(_ops.events_get(uid))

    def create(self, *, key: str, description: str | None = None) -> Event:
        """Create an event; ``key`` is letters, digits, ``_`` and ``-``."""
        return self._run(_ops.events_create(key, description))

    def update(
        self,
        uid: str | Event,
        *,
        key: str | NotGiven = NOT_GIVEN,
        description: str | NotGiven | None = NOT_GIVEN,
    ) -> Event:
        """Change an event; fields not passed are kept (``description=None`` clears it)."""
        return self._run(_ops.events_update(uid, key, description))

    def delete(self, uid: str | Event) -> None:
        """Delete an event."""
        return self._run(_ops.events_delete(uid))


class AsyncEvents(AsyncResource):
    """Events (async), reached as ``client.events``.

    Example::

        event = await client.events.create(key="clickCTA")
    """

    async def list(self) -> builtins.list[Event]:
        """See :meth:`Events.list`."""
        return await self._run(_ops.events_list())

    async def get(self, uid: str) -> Event:
        """See :meth:`Events.get`."""
        return await self._run(_ops.events_get(uid))

    async def create(self, *, key: str, description: str | None = None) -> Event:
        """See :meth:`Events.create`."""
        return await self._run(_ops.events_create(key, description))

    async def update(
        self,
        uid: str | Event,
        *,
        key: str | NotGiven = NOT_GIVEN,
        description: str | NotGiven | None = NOT_GIVEN,
    ) -> Event:
        """See :meth:`Events.update`."""
        return await self._run(_ops.events_update(uid, key, description))

    async def delete(self, uid: str | Event) -> None:
        """See :meth:`Events.delete`."""
        return await self._run(_ops.events_delete(uid))
