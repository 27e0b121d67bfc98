"""contentstack-personalize: sync data from any source into Contentstack Personalize users, with a
typed, fast client for the Personalize Edge and Management APIs.

Example::

    from contentstack_personalize import PersonalizeClient

    with PersonalizeClient("<project uid>") as client:
        client.users.set_attributes("user-42", {"plan": "gold"})
"""

from __future__ import annotations

import logging as _logging

from ._http import Exchange, RateLimiter, RetryPolicy
from ._types import NOT_GIVEN, NotGiven
from ._version import __version__
from .auth import (
    PKCE,
    AuthToken,
    ManagementToken,
    OAuth,
    OAuthTokens,
    aexchange_code,
    alogin,
    alogout,
    auth_from_env,
    authorization_url,
    exchange_code,
    login,
    logout,
)
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

# A library logs, it does not print: without the application configuring logging, nothing shows.
_logging.getLogger("contentstack_personalize").addHandler(_logging.NullHandler())

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncPersonalizeClient",
    "AuthToken",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "Exchange",
    "ManagementToken",
    "NOT_GIVEN",
    "NotFoundError",
    "NotGiven",
    "OAuth",
    "OAuthTokens",
    "PKCE",
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
    "aexchange_code",
    "alogin",
    "alogout",
    "auth_from_env",
    "authorization_url",
    "exchange_code",
    "login",
    "logout",
]
