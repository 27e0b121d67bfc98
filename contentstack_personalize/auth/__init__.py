"""Authentication for the Personalize Management API: authtokens, OAuth, login and PKCE.

This package owns every credential the library handles: the ``httpx.Auth`` classes that put them
on requests (:class:`AuthToken`, :class:`OAuth`), the refusal of management tokens
(:class:`ManagementToken`), the CMA login/logout calls that mint authtokens, the OAuth
authorization-code helpers (:class:`PKCE`, :func:`authorization_url`, :func:`exchange_code`) and
the resolution of credentials from environment variables (:func:`auth_from_env`).

The Edge API needs no authentication; nothing here is used for it.

Secrets (authtokens, access and refresh tokens, client secrets, PKCE verifiers, passwords) never
appear in a ``repr``, a ``str``, a log record or an exception message.

Inside, one module per concern, importing only the core (``_http``, ``errors``, ``regions``):

- ``_secrets``: checking credentials and keeping them out of reprs and errors (pure);
- ``_tokens``: ``AuthToken``, ``ManagementToken``, ``OAuthTokens``;
- ``_oauth``: ``OAuth``, its refresh flow written once and the thread / event-loop shells;
- ``_pkce``: ``PKCE`` and ``authorization_url`` (pure);
- ``_core``: credential calls as generator operations, run by a blocking or an async driver
  through the common request pipeline;
- ``_login``: CMA login and logout; ``_exchange``: the authorization-code exchange;
- ``_env``: ``auth_from_env``.
"""

from __future__ import annotations

# Names public here before the package was split stay importable (outside __all__, as before).
from ._env import ENV_AUTHTOKEN as ENV_AUTHTOKEN
from ._env import ENV_MANAGEMENT_TOKEN as ENV_MANAGEMENT_TOKEN
from ._env import ENV_OAUTH_ACCESS_TOKEN as ENV_OAUTH_ACCESS_TOKEN
from ._env import ENV_OAUTH_APP_ID as ENV_OAUTH_APP_ID
from ._env import ENV_OAUTH_CLIENT_ID as ENV_OAUTH_CLIENT_ID
from ._env import ENV_OAUTH_CLIENT_SECRET as ENV_OAUTH_CLIENT_SECRET
from ._env import ENV_OAUTH_EXPIRES_AT as ENV_OAUTH_EXPIRES_AT
from ._env import ENV_OAUTH_REFRESH_TOKEN as ENV_OAUTH_REFRESH_TOKEN
from ._env import ENV_ORGANIZATION_UID as ENV_ORGANIZATION_UID
from ._env import ENV_REGION as ENV_REGION
from ._env import auth_from_env
from ._exchange import aexchange_code, exchange_code
from ._login import alogin, alogout, login, logout
from ._oauth import OAuth
from ._pkce import DEFAULT_SCOPE as DEFAULT_SCOPE
from ._pkce import PKCE, authorization_url
from ._tokens import AuthToken, ManagementToken, OAuthTokens
from ._tokens import OnRefresh as OnRefresh

__all__ = [
    "PKCE",
    "AuthToken",
    "ManagementToken",
    "OAuth",
    "OAuthTokens",
    "aexchange_code",
    "alogin",
    "alogout",
    "auth_from_env",
    "authorization_url",
    "exchange_code",
    "login",
    "logout",
]
