"""The API resources (users on the Edge API; attributes, audiences, events, projects and
experiences on the Management API), each a sync/async pair with identical signatures over one
shared set of pure operations (``_ops.py``, run by the drivers in ``_core.py``)."""

from __future__ import annotations

from ._core import AsyncRequester, Call, Requester
from .attributes import AsyncAttributes, Attributes
from .audiences import AsyncAudiences, Audiences
from .events import AsyncEvents, Events
from .experiences import AsyncExperiences, Experiences
from .projects import AsyncProjects, Projects
from .users import AsyncUsers, Users

__all__ = [
    "Call",
    "AsyncAttributes",
    "AsyncAudiences",
    "AsyncEvents",
    "AsyncExperiences",
    "AsyncProjects",
    "AsyncRequester",
    "AsyncUsers",
    "Attributes",
    "Audiences",
    "Events",
    "Experiences",
    "Projects",
    "Requester",
    "Users",
    "attach_async_resources",
    "attach_sync_resources",
]

#: attribute name on the client -> (sync class, async class)
RESOURCES = {
    "users": (Users, AsyncUsers),
    "attributes": (Attributes, AsyncAttributes),
    "audiences": (Audiences, AsyncAudiences),
    "events": (Events, AsyncEvents),
    "projects": (Projects, AsyncProjects),
    "experiences": (Experiences, AsyncExperiences),
}


def attach_sync_resources(client: Requester) -> None:
    """Give a blocking client its resource attributes (``client.users``...).

    A ``PersonalizeClient`` has them from the start; you need this only for another object
    implementing the :class:`~contentstack_personalize.resources._core.Requester` protocol.

    Example::

        attach_sync_resources(client)
        client.users.set_attributes("user-42", {"plan": "gold"})
    """
    for name, (sync_cls, _) in RESOURCES.items():
        setattr(client, name, sync_cls(client))


def attach_async_resources(client: AsyncRequester) -> None:
    """Give an async client its resource attributes (``client.users``...).

    An ``AsyncPersonalizeClient`` has them from the start; you need this only for another
    object implementing the ``AsyncRequester`` protocol.

    Example::

        attach_async_resources(client)
        await client.users.set_attributes("user-42", {"plan": "gold"})
    """
    for name, (_, async_cls) in RESOURCES.items():
        setattr(client, name, async_cls(client))
