"""``client.projects``: the organization's projects. Organization-scoped: these calls send
``organization_uid`` and no ``x-project-uid``, so the client needs an organization (argument,
``CONTENTSTACK_ORGANIZATION_UID``, or OAuth) but no project.

Example::

    project = client.projects.create(name="Storefront")
"""

from __future__ import annotations

import builtins

from ..models import Project
from . import _ops
from ._base import AsyncResource, BlockingResource

__all__ = ["AsyncProjects", "Projects"]


class Projects(BlockingResource):
    """Projects of the organization, reached as ``client.projects``.

    Example::

        names = [project.name for project in client.projects.list()]
    """

    def list(self) -> builtins.list[Project]:
        """Every project of the organization."""
        return self._run(_ops.projects_list())

    def create(self, *, name: str, description: str | None = None) -> Project:
        """Create a project (an organization holds 3 by default)."""
        return self._run(_ops.projects_create(name, description))


class AsyncProjects(AsyncResource):
    """Projects of the organization (async), reached as ``client.projects``.

    Example::

        project = await client.projects.create(name="Storefront")
    """

    async def list(self) -> builtins.list[Project]:
        """See :meth:`Projects.list`."""
        return await self._run(_ops.projects_list())

    async def create(self, *, name: str, description: str | None = None) -> Project:
        """See :meth:`Projects.create`."""
        return await self._run(_ops.projects_create(name, description))
