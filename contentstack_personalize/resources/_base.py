"""The two resource base classes: they hold the client and run operations over it."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from ._core import Op, run_async, run_sync

if TYPE_CHECKING:
    from ..client import AsyncPersonalizeClient, PersonalizeClient

T = TypeVar("T")


class SyncResource:
    """A resource of a :class:`~contentstack_personalize.PersonalizeClient`."""

    def __init__(self, client: PersonalizeClient) -> None:
        self._client = client

    def _run(self, op: Op[T]) -> T:
        return run_sync(self._client, op)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._client!r}>"


class AsyncResource:
    """A resource of an :class:`~contentstack_personalize.AsyncPersonalizeClient`."""

    def __init__(self, client: AsyncPersonalizeClient) -> None:
        self._client = client

    async def _run(self, op: Op[T]) -> T:
        return await run_async(self._client, op)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._client!r}>"
