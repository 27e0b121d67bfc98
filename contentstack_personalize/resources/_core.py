"""The sans-I/O core every resource shares: a :class:`Call` describes one request, an
*operation* is a generator that yields calls and receives their responses, and two tiny
drivers run an operation over a blocking or an async client.

A resource knows its client only through the small :class:`Requester` (or
:class:`AsyncRequester`) protocol below, which both client shells implement: resources never
import the client module, the client imports them.

All of a resource's logic (validation, request building, read-merge-write, 409 races,
response parsing) lives once, in ``_ops.py``, as operations; the sync and async resource
classes only pick the driver. API errors are thrown back into the operation, so it can
recover from them (``attributes.ensure`` re-lists after a 409).
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import attrs
import httpx

from .._http import ClientApi
from .._types import NOT_GIVEN
from ..errors import APIStatusError, ValidationError

__all__ = [
    "AsyncRequester",
    "Call",
    "Op",
    "Requester",
    "json_body",
    "path_uid",
    "run_async",
    "run_blocking",
]

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class Call:
    """One request: which API, the method and path, and what goes with them."""

    api: ClientApi
    method: str
    path: str
    json: Any = NOT_GIVEN
    params: list[tuple[str, Any]] | None = None
    headers: Mapping[str, str] | None = None
    project_scoped: bool = True
    organization_scoped: bool = False


Op = Generator[Call, httpx.Response, T]


class Requester(Protocol):
    """What a blocking resource needs of its client (a ``PersonalizeClient`` is one)."""

    def _execute(self, call: Call, /) -> httpx.Response:
        """Send ``call`` with the client's URLs, auth, retries and hooks; return the 2xx
        answer or raise a typed :class:`~contentstack_personalize.errors.PersonalizeError`."""
        ...


class AsyncRequester(Protocol):
    """What an async resource needs of its client (an ``AsyncPersonalizeClient`` is one)."""

    async def _execute(self, call: Call, /) -> httpx.Response:
        """See :meth:`Requester._execute`."""
        ...


def run_blocking(client: Requester, op: Op[T]) -> T:
    """Run ``op`` with blocking I/O."""
    try:
        call = next(op)
        while True:
            try:
                response = client._execute(call)
            except APIStatusError as exc:
                call = op.throw(exc)
            else:
                call = op.send(response)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        op.close()


async def run_async(client: AsyncRequester, op: Op[T]) -> T:
    """Run ``op`` with async I/O."""
    try:
        call = next(op)
        while True:
            try:
                response = await client._execute(call)
            except APIStatusError as exc:
                call = op.throw(exc)
            else:
                call = op.send(response)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        op.close()


def json_body(response: httpx.Response) -> Any:
    """The parsed JSON body of a 2xx answer; ``None`` when it has none (204, empty)."""
    if response.status_code == 204 or not response.content.strip():
        return None
    try:
        return json.loads(response.content)
    except ValueError as exc:
        raise unexpected(response, "the body is not JSON") from exc


def unexpected(response: httpx.Response, why: str) -> APIStatusError:
    """An error for a 2xx answer this library cannot read."""
    try:
        request: httpx.Request | None = response.request
    except RuntimeError:
        request = None
    snippet = response.text[:200]
    return APIStatusError(
        f"unexpected response: {why}: {snippet!r}",
        status_code=response.status_code,
        request=request,
        response=response,
        body=snippet,
    )


def path_uid(uid: object, what: str) -> str:
    """``uid`` checked and escaped for use as a path segment."""
    if not isinstance(uid, str) or not uid:
        raise ValidationError(f"{what} uid must be a non-empty string, not {uid!r}")
    if uid != uid.strip() or any(ord(c) < 0x21 or ord(c) == 0x7F for c in uid):
        raise ValidationError(
            f"{what} uid {uid!r} contains spaces or control characters; pass the uid exactly "
            "as the API returned it (e.g. from .list())"
        )
    return quote(uid, safe="")
