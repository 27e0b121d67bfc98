"""``client.users``: the Edge API (no credentials; the user is named by a header).

Example::

    client.users.set_attributes("user-42", {"plan": "gold", "ltv": 1250.5})
    client.users.track("user-42", [CustomEvent("clickCTA")])
    manifest = client.users.manifest("user-42")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..models import Manifest, TrackedEvent
from . import _ops
from ._base import AsyncResource, BlockingResource

__all__ = ["AsyncUsers", "Users"]


class Users(BlockingResource):
    """Personalize users on the Edge API, reached as ``client.users``.

    Example::

        client.users.set_attributes("user-42", {"plan": "gold"})
        client.users.merge(source_uid="anon-7f3a", target_uid="user-42")
    """

    def set_attributes(self, user_uid: str, attributes: Mapping[str, Any]) -> None:
        """Set attributes of one user (``PATCH /user-attributes``): sent keys overwrite, others
        stay. Keys must be non-empty strings and values JSON; a bad one raises
        :class:`ValidationError` naming it, and nothing is sent."""
        return self._run(_ops.set_attributes(user_uid, attributes))

    def merge(self, *, source_uid: str, target_uid: str) -> None:
        """Move an anonymous user's attributes onto a known user (the source's values win)."""
        return self._run(_ops.merge(source_uid, target_uid))

    def track(self, user_uid: str, events: Sequence[TrackedEvent]) -> None:
        """Send impressions and conversions (``POST /events``); at least one event."""
        return self._run(_ops.track(user_uid, events))

    def manifest(self, user_uid: str | None = None, tags: Iterable[str] | None = None) -> Manifest:
        """The user's active experiences in priority order (``GET /manifest``), filtered by at
        most 10 ``tags``. Without ``user_uid`` the edge makes one up: ``Manifest.user_uid``."""
        return self._run(_ops.manifest(user_uid, tags))


class AsyncUsers(AsyncResource):
    """Personalize users on the Edge API (async), reached as ``client.users``.

    Example::

        await client.users.set_attributes("user-42", {"plan": "gold"})
        manifest = await client.users.manifest("user-42")
    """

    async def set_attributes(self, user_uid: str, attributes: Mapping[str, Any]) -> None:
        """See :meth:`Users.set_attributes`."""
        return await self._run(_ops.set_attributes(user_uid, attributes))

    async def merge(self, *, source_uid: str, target_uid: str) -> None:
        """See :meth:`Users.merge`."""
        return await self._run(_ops.merge(source_uid, target_uid))

    async def track(self, user_uid: str, events: Sequence[TrackedEvent]) -> None:
        """See :meth:`Users.track`."""
        return await self._run(_ops.track(user_uid, events))

    async def manifest(
        self, user_uid: str | None = None, tags: Iterable[str] | None = None
    ) -> Manifest:
        """See :meth:`Users.manifest`."""
        return await self._run(_ops.manifest(user_uid, tags))
