"""The interface between the sync engine and a sender: :class:`EdgeSender` sends one user's
``PATCH /user-attributes`` and answers a :class:`SendOutcome`.

Both the senders (``_sender.py``, ``_fast.py``) and the engine import it; it imports neither.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import attrs

from ..errors import PersonalizeError

__all__ = ["EdgeSender", "SendOutcome"]


@attrs.frozen
class SendOutcome:
    """What happened to one user's request: acknowledged (``ok``) or the error that ended it.

    Example::

        outcome = await sender.send("user-42", b'{"plan":"gold"}')
        if not outcome.ok:
            print(f"failed after {outcome.attempts} attempts: {outcome.error}")
    """

    ok: bool
    attempts: int
    error: PersonalizeError | None = None


@runtime_checkable
class EdgeSender(Protocol):
    """Sends ``PATCH /user-attributes`` requests; one call per user, many in flight.

    Any object with these two coroutines can be passed as ``Sync(..., sender=...)``.

    Example::

        class CountingSender:
            def __init__(self, inner: EdgeSender) -> None:
                self.inner, self.sent = inner, 0

            async def send(self, user_uid: str, body: bytes) -> SendOutcome:
                self.sent += 1
                return await self.inner.send(user_uid, body)

            async def aclose(self) -> None:
                await self.inner.aclose()
    """

    async def send(self, user_uid: str, body: bytes) -> SendOutcome:
        """Send one user's JSON body; never raises for API or transport failures."""
        ...

    async def aclose(self) -> None:
        """Release connections the sender opened."""
        ...
