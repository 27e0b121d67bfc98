"""The API resources (users on the Edge API; attributes, audiences, events, projects and
experiences on the Management API), each a sync/async pair over shared pure helpers."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..client import AsyncPersonalizeClient, PersonalizeClient

__all__ = ["attach_async_resources", "attach_sync_resources"]


def attach_sync_resources(client: PersonalizeClient) -> None:
    """Give a blocking client its resource attributes."""


def attach_async_resources(client: AsyncPersonalizeClient) -> None:
    """Give an async client its resource attributes."""
