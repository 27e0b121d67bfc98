"""contentstack-personalize: sync data from any source into Contentstack Personalize users, with a
typed, fast client for the Personalize Edge and Management APIs.

Example::

    from contentstack_personalize import PersonalizeClient

    with PersonalizeClient("<project uid>") as client:
        client.users.set_attributes("user-42", {"plan": "gold"})
"""

from __future__ import annotations

from ._http import Exchange, RateLimiter, RetryPolicy
from ._types import NOT_GIVEN, NotGiven
from ._version import __version__
from .client import AsyncPersonalizeClient, PersonalizeClient
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    PersonalizeError,
    RateLimitError,
    ServerError,
    SyncAbortedError,
    TransportError,
    ValidationError,
)
from .regions import Region

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncPersonalizeClient",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "Exchange",
    "NOT_GIVEN",
    "NotFoundError",
    "NotGiven",
    "PermissionDeniedError",
    "PersonalizeClient",
    "PersonalizeError",
    "RateLimitError",
    "RateLimiter",
    "Region",
    "RetryPolicy",
    "ServerError",
    "SyncAbortedError",
    "TransportError",
    "ValidationError",
    "__version__",
]
