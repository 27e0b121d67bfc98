"""The two resource base classes: they hold the client (as a :class:`Requester`) and run
operations over it."""

from __future__ import annotations

from typing import TypeVar

from ._core import AsyncRequester, Op, Requester, run_async, run_blocking

T = TypeVar("T")


class BlockingResource:
    """A resource of a :class:`~contentstack_personalize.PersonalizeClient`."""

    def __init__(self, client: Requester) -> None:
        self._client = client

    def _run(self, op: Op[T]) -> T:
        return run_blocking(self._client, op)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._client!r}>"


class AsyncResource:
    """A resource of an :class:`~contentstack_personalize.AsyncPersonalizeClient`."""

    def __init__(self, client: AsyncRequester) -> None:
        self._client = client

    async def _run(self, op: Op[T]) -> T:
        return await run_async(self._client, op)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._client!r}>"
