"""``client.experiences``: read access to experiences (``SEGMENTED`` or ``AB_TEST``).

Example::

    for experience in client.experiences.list():
        print(experience.short_uid, experience.type, experience.name)
"""

from __future__ import annotations

import builtins

from ..models import Experience
from . import _ops
from ._base import AsyncResource, BlockingResource

__all__ = ["AsyncExperiences", "Experiences"]


class Experiences(BlockingResource):
    """Experiences (read-only here), reached as ``client.experiences``.

    Example::

        experience = client.experiences.get("6540...")
        print(experience.short_uid, experience.is_ab_test)
    """

    def list(self) -> builtins.list[Experience]:
        """Every experience of the project."""
        return self._run(_ops.experiences_list())

    def get(self, uid: str) -> Experience:
        """One experience by uid (``GET /experiences/{uid}``)."""
        return self._run(_ops.experiences_get(uid))


class AsyncExperiences(AsyncResource):
    """Experiences (async), reached as ``client.experiences``.

    Example::

        experiences = await client.experiences.list()
    """

    async def list(self) -> builtins.list[Experience]:
        """See :meth:`Experiences.list`."""
        return await self._run(_ops.experiences_list())

    async def get(self, uid: str) -> Experience:
        """See :meth:`Experiences.get`."""
        return await self._run(_ops.experiences_get(uid))
