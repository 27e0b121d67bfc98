"""The credentials themselves: :class:`AuthToken` (an ``httpx.Auth`` that sends a user
authtoken), :class:`ManagementToken` (refused, with a message that says what to use instead) and
:class:`OAuthTokens` (what the OAuth token endpoint issued).

Secrets never show in a ``repr`` or ``str``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from typing import Any

import attrs
import httpx

from .._http import REDACTED
from ..errors import ConfigurationError
from ._secrets import clean_secret, optional_text, redacted_repr

__all__ = ["MANAGEMENT_TOKEN_MESSAGE", "AuthToken", "ManagementToken", "OAuthTokens", "OnRefresh"]

MANAGEMENT_TOKEN_MESSAGE = (
    "Contentstack Personalize does not accept management tokens. Authenticate with a user "
    "authtoken (AuthToken(...), or login(email, password)) or with an OAuth user token "
    "(OAuth(...), exchange_code(...))."
)


class AuthToken(httpx.Auth):
    """A Contentstack user authtoken, sent as the ``authtoken`` header.

    Get one with :func:`login` (or copy it from an existing CMA session). The token never shows
    in ``repr`` or ``str``; read it with :attr:`token` when you must store it.

    ``organization_uid`` is sent as the ``organization_uid`` header when given: the Management
    API needs it on organization calls (``/projects``). A request that already carries that
    header keeps its own value.

    Example::

        client = PersonalizeClient(project_uid="...", auth=AuthToken("blt..."))
    """

    def __init__(self, token: str, *, organization_uid: str | None = None) -> None:
        self._token = clean_secret(token, "authtoken")
        self._organization_uid = optional_text(organization_uid, "organization_uid")

    @property
    def token(self) -> str:
        """The authtoken itself (a secret: do not log it)."""
        return self._token

    @property
    def organization_uid(self) -> str | None:
        """The organization UID sent with each request, if known."""
        return self._organization_uid

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Put the ``authtoken`` (and ``organization_uid``) headers on the request."""
        request.headers["authtoken"] = self._token
        if self._organization_uid is not None:
            request.headers.setdefault("organization_uid", self._organization_uid)
        yield request

    def __repr__(self) -> str:
        return f"AuthToken(token={REDACTED!r}, organization_uid={self._organization_uid!r})"


class ManagementToken(httpx.Auth):
    """Refused on purpose: Contentstack Personalize does not accept stack management tokens.

    Constructing it raises :class:`~contentstack_personalize.errors.ConfigurationError` that
    says what to use instead: :class:`AuthToken` (see :func:`login`) or :class:`OAuth`. It
    exists so that the mistake fails at once, with a useful message, instead of as a 401 later.

    Example::

        ManagementToken("cs...")            # raises ConfigurationError: use AuthToken or OAuth
        auth = login(email, password)       # do this instead
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise ConfigurationError(MANAGEMENT_TOKEN_MESSAGE)


@attrs.frozen(kw_only=True)
class OAuthTokens:
    """A set of OAuth tokens as the Developer Hub token endpoint issued them.

    Handed to ``on_refresh`` callbacks so that callers can persist the (rotated) refresh token.
    ``expires_at`` is in epoch seconds, ``None`` when the server gave no ``expires_in``. The
    tokens are hidden from ``repr``.

    Example::

        def save_tokens(tokens: OAuthTokens) -> None:
            vault.store(tokens.access_token, tokens.refresh_token, tokens.expires_at)

        auth = OAuth(access_token=..., refresh_token=..., client_id=..., app_id=...,
                     on_refresh=save_tokens)
    """

    access_token: str = attrs.field(repr=redacted_repr)
    refresh_token: str | None = attrs.field(default=None, repr=redacted_repr)
    expires_at: float | None = None
    organization_uid: str | None = None
    user_uid: str | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any], *, now: float) -> OAuthTokens:
        """Build from a token endpoint answer; ``now`` is when the request was sent."""
        access = data.get("access_token")
        if not isinstance(access, str) or not access.strip():
            raise ValueError("the token endpoint answered without an access_token")
        refresh = data.get("refresh_token")
        expires_in = data.get("expires_in")
        expires_at: float | None = None
        if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool):
            expires_at = now + float(expires_in)
        elif isinstance(expires_in, str):
            try:
                expires_at = now + float(expires_in)
            except ValueError:
                expires_at = None
        org = data.get("organization_uid")
        user = data.get("user_uid")
        return cls(
            access_token=access.strip(),
            refresh_token=refresh.strip() if isinstance(refresh, str) and refresh.strip() else None,
            expires_at=expires_at,
            organization_uid=org if isinstance(org, str) and org else None,
            user_uid=user if isinstance(user, str) and user else None,
        )


OnRefresh = Callable[[OAuthTokens], None]
"""An ``on_refresh`` callback: receives the new tokens after each refresh."""
