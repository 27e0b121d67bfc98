"""contentstack-personalize: sync data from any source into Contentstack Personalize users, with a
typed, fast client for the Personalize Edge and Management APIs.

Example::

    from contentstack_personalize import PersonalizeClient

    with PersonalizeClient("<project uid>") as client:
        client.users.set_attributes("user-42", {"plan": "gold"})
"""

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
from .debugger import Debugger, DebugRecord, read_jsonl
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    DestinationMismatchError,
    NotFoundError,
    PermissionDeniedError,
    PersonalizeError,
    RateLimitError,
    ServerError,
    StateStoreError,
    SyncAbortedError,
    SyncInProgressError,
    TransportError,
    ValidationError,
)
from .membership import encode_membership, membership, membership_flags, membership_rule
from .models import (
    Attribute,
    Audience,
    CustomEvent,
    Event,
    Experience,
    Impression,
    Manifest,
    ManifestExperience,
    Project,
    TrackedEvent,
)
from .regions import Region
from .rules import (
    Condition,
    CustomAttributeRef,
    MatchOptions,
    NumberMatchOptions,
    PresetAttributeRef,
    Rule,
    RuleCombination,
    StringMatchOptions,
    all_of,
    any_of,
)
from .sync import (
    Field,
    MemoryState,
    Plan,
    RowIssue,
    SQLiteState,
    Sync,
    SyncResult,
    from_csv,
    from_sql,
)

# A library logs, it does not print: without the application configuring logging, nothing shows.
_logging.getLogger("contentstack_personalize").addHandler(_logging.NullHandler())

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncPersonalizeClient",
    "Attribute",
    "Audience",
    "AuthToken",
    "AuthenticationError",
    "BadRequestError",
    "Condition",
    "ConfigurationError",
    "ConflictError",
    "CustomAttributeRef",
    "CustomEvent",
    "DebugRecord",
    "Debugger",
    "DestinationMismatchError",
    "Event",
    "Exchange",
    "Experience",
    "Field",
    "Impression",
    "ManagementToken",
    "Manifest",
    "ManifestExperience",
    "MatchOptions",
    "MemoryState",
    "NOT_GIVEN",
    "NotFoundError",
    "NotGiven",
    "NumberMatchOptions",
    "OAuth",
    "OAuthTokens",
    "PKCE",
    "PermissionDeniedError",
    "PersonalizeClient",
    "PersonalizeError",
    "Plan",
    "PresetAttributeRef",
    "Project",
    "RateLimitError",
    "RateLimiter",
    "Region",
    "RetryPolicy",
    "RowIssue",
    "Rule",
    "RuleCombination",
    "SQLiteState",
    "ServerError",
    "StateStoreError",
    "StringMatchOptions",
    "Sync",
    "SyncAbortedError",
    "SyncInProgressError",
    "SyncResult",
    "TrackedEvent",
    "TransportError",
    "ValidationError",
    "__version__",
    "aexchange_code",
    "all_of",
    "alogin",
    "alogout",
    "any_of",
    "auth_from_env",
    "authorization_url",
    "encode_membership",
    "exchange_code",
    "from_csv",
    "from_sql",
    "login",
    "logout",
    "membership",
    "membership_flags",
    "membership_rule",
    "read_jsonl",
]
