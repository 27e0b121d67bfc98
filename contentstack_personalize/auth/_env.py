"""Credentials from environment variables: :func:`auth_from_env`."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping

import httpx

from ..errors import ConfigurationError
from ._oauth import OAuth
from ._tokens import MANAGEMENT_TOKEN_MESSAGE, AuthToken

__all__ = [
    "ENV_AUTHTOKEN",
    "ENV_MANAGEMENT_TOKEN",
    "ENV_OAUTH_ACCESS_TOKEN",
    "ENV_OAUTH_APP_ID",
    "ENV_OAUTH_CLIENT_ID",
    "ENV_OAUTH_CLIENT_SECRET",
    "ENV_OAUTH_EXPIRES_AT",
    "ENV_OAUTH_REFRESH_TOKEN",
    "ENV_ORGANIZATION_UID",
    "ENV_REGION",
    "auth_from_env",
]

ENV_AUTHTOKEN = "CONTENTSTACK_AUTHTOKEN"
ENV_MANAGEMENT_TOKEN = "CONTENTSTACK_MANAGEMENT_TOKEN"
ENV_ORGANIZATION_UID = "CONTENTSTACK_ORGANIZATION_UID"
ENV_REGION = "CONTENTSTACK_REGION"
ENV_OAUTH_ACCESS_TOKEN = "CONTENTSTACK_OAUTH_ACCESS_TOKEN"
ENV_OAUTH_REFRESH_TOKEN = "CONTENTSTACK_OAUTH_REFRESH_TOKEN"
ENV_OAUTH_CLIENT_ID = "CONTENTSTACK_OAUTH_CLIENT_ID"
ENV_OAUTH_APP_ID = "CONTENTSTACK_OAUTH_APP_ID"
ENV_OAUTH_CLIENT_SECRET = "CONTENTSTACK_OAUTH_CLIENT_SECRET"
ENV_OAUTH_EXPIRES_AT = "CONTENTSTACK_OAUTH_EXPIRES_AT"


def _env(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def _parse_expires_at(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(
            f"{ENV_OAUTH_EXPIRES_AT} must be epoch seconds or an ISO 8601 time with a zone"
        ) from None
    if when.tzinfo is None:
        raise ConfigurationError(f"{ENV_OAUTH_EXPIRES_AT} needs a time zone (e.g. ...Z)")
    return when.timestamp()


def auth_from_env(environ: Mapping[str, str] | None = None) -> httpx.Auth | None:
    """Build the Management API auth from environment variables, or ``None`` if none is set.

    In order of preference:

    - ``CONTENTSTACK_AUTHTOKEN`` -> :class:`AuthToken`;
    - ``CONTENTSTACK_OAUTH_ACCESS_TOKEN`` (and/or ``CONTENTSTACK_OAUTH_REFRESH_TOKEN``, with
      ``CONTENTSTACK_OAUTH_CLIENT_ID``, ``CONTENTSTACK_OAUTH_APP_ID``, optional
      ``CONTENTSTACK_OAUTH_CLIENT_SECRET`` and ``CONTENTSTACK_OAUTH_EXPIRES_AT``, epoch seconds
      or ISO 8601) -> :class:`OAuth`;
    - ``CONTENTSTACK_MANAGEMENT_TOKEN`` alone -> ``ConfigurationError`` (not accepted).

    ``CONTENTSTACK_ORGANIZATION_UID`` fills ``organization_uid``; ``CONTENTSTACK_REGION`` picks
    the OAuth token endpoint's region. Empty variables count as unset.

    Example::

        auth = auth_from_env({"CONTENTSTACK_AUTHTOKEN": "blt..."})  # AuthToken
        auth_from_env({})                                          # None
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    org = _env(env, ENV_ORGANIZATION_UID)
    authtoken = _env(env, ENV_AUTHTOKEN)
    if authtoken is not None:
        return AuthToken(authtoken, organization_uid=org)
    access = _env(env, ENV_OAUTH_ACCESS_TOKEN)
    refresh = _env(env, ENV_OAUTH_REFRESH_TOKEN)
    if access is not None or refresh is not None:
        expires = _env(env, ENV_OAUTH_EXPIRES_AT)
        return OAuth(
            access_token=access,
            refresh_token=refresh,
            client_id=_env(env, ENV_OAUTH_CLIENT_ID),
            app_id=_env(env, ENV_OAUTH_APP_ID),
            client_secret=_env(env, ENV_OAUTH_CLIENT_SECRET),
            expires_at=_parse_expires_at(expires) if expires is not None else None,
            organization_uid=org,
            region=_env(env, ENV_REGION),
        )
    if _env(env, ENV_MANAGEMENT_TOKEN) is not None:
        raise ConfigurationError(f"{ENV_MANAGEMENT_TOKEN} is set, but {MANAGEMENT_TOKEN_MESSAGE}")
    return None
