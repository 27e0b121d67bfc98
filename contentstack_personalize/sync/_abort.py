"""Stage: the abort policy, which decides from the outcomes of requests when a run gives up."""

from __future__ import annotations

import collections

from .._http import connect_failure
from ..errors import (
    APIConnectionError,
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    PersonalizeError,
)

__all__ = ["CONNECT_FAILURES", "AbortRule", "is_systemic"]

#: Requests in a row that could not connect at all (after their retries) before a run stops.
CONNECT_FAILURES = 5


class AbortRule:
    """When a run should give up: more than ``ratio`` of the last ``window`` requests failed
    (judged on a recent window, so a late outage stops a long run quickly); the edge cannot be
    reached at all (connection refused, a host that does not resolve, a failed certificate
    check) before any request succeeded; or :data:`CONNECT_FAILURES` requests in a row could
    not connect after earlier ones did."""

    def __init__(self, ratio: float, window: int, url: str) -> None:
        self.ratio = ratio
        self.window = window
        self.url = url
        self.recent: collections.deque[bool] = collections.deque(maxlen=window)
        self.failed = 0
        self.unreachable = 0
        self.succeeded = False

    def _push(self, failed: bool) -> None:
        if len(self.recent) == self.window and self.recent[0]:
            self.failed -= 1
        self.recent.append(failed)
        self.failed += failed

    def success(self) -> None:
        self._push(False)
        self.unreachable = 0
        self.succeeded = True

    def failure(self, exc: PersonalizeError | None, reason: str) -> str | None:
        """Record a failed request; the reason to stop the run, if it should stop."""
        self._push(True)
        kind = connect_failure(exc) if isinstance(exc, APIConnectionError) else None
        if kind is not None:  # never connected (a drop after the work is not one of these)
            self.unreachable += 1
            if not self.succeeded:
                # Nothing ever got through and the sender already retried: the endpoint is
                # dead (or misnamed); failing every row one by one would only take longer.
                what = {
                    "refused": "refuses connections",
                    "dns": "does not resolve",
                    "tls": "fails the certificate check",
                }[kind]
                return f"cannot reach the Edge API at {self.url}: it {what}; last error: {reason}"
            if self.unreachable >= CONNECT_FAILURES:
                return (
                    f"cannot reach the Edge API at {self.url}: {self.unreachable} requests in a "
                    f"row failed to connect; last error: {reason}"
                )
        else:
            self.unreachable = 0
        if len(self.recent) >= self.window and self.failed / len(self.recent) > self.ratio:
            return (
                f"{self.failed} of the last {len(self.recent)} requests failed, more than "
                f"{self.ratio:.0%}; last error: {reason}"
            )
        return None


def is_systemic(exc: PersonalizeError | None) -> bool:
    """Failures that no other row can escape: bad credentials, no access, unknown project."""
    return isinstance(exc, (AuthenticationError, PermissionDeniedError, NotFoundError))
