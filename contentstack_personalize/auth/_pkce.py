"""The authorization-code grant's first half: :class:`PKCE` pairs and :func:`authorization_url`.

Pure functions; the code that comes back is traded for tokens by ``exchange_code``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import urllib.parse
from collections.abc import Iterable

import attrs

from ..errors import ConfigurationError
from ..regions import Region
from ._secrets import base_url, redacted_repr

__all__ = ["DEFAULT_SCOPE", "PKCE", "authorization_url"]

DEFAULT_SCOPE: tuple[str, ...] = ("personalize:manage", "personalize:read")

_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@attrs.frozen(kw_only=True)
class PKCE:
    """A PKCE pair (RFC 7636): keep ``verifier`` secret, send ``challenge`` in the authorize URL.

    Example::

        pkce = PKCE.generate()
        url = authorization_url(app_uid=..., client_id=..., redirect_uri=...,
                                state=state, code_challenge=pkce.challenge)
        # ... later, with the code from the redirect:
        auth = exchange_code(code=code, client_id=..., app_id=..., redirect_uri=...,
                             code_verifier=pkce.verifier)
    """

    verifier: str = attrs.field(repr=redacted_repr)
    challenge: str
    method: str = "S256"

    @classmethod
    def generate(cls, length: int = 64) -> PKCE:
        """A fresh random verifier of ``length`` (43 to 128) unreserved characters."""
        if not 43 <= length <= 128:
            raise ConfigurationError("a PKCE verifier is 43 to 128 characters long (RFC 7636)")
        verifier = "".join(secrets.choice(_UNRESERVED) for _ in range(length))
        return cls(verifier=verifier, challenge=_s256(verifier))

    @classmethod
    def from_verifier(cls, verifier: str) -> PKCE:
        """The pair for an existing verifier (checked against RFC 7636's rules)."""
        if not 43 <= len(verifier) <= 128 or any(ch not in _UNRESERVED for ch in verifier):
            raise ConfigurationError(
                "a PKCE verifier is 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_', '~'"
            )
        return cls(verifier=verifier, challenge=_s256(verifier))


def authorization_url(
    *,
    app_uid: str,
    client_id: str,
    redirect_uri: str,
    state: str,
    scope: Iterable[str] | str = DEFAULT_SCOPE,
    code_challenge: str | None = None,
    region: Region | str | None = None,
    app_url: str | None = None,
) -> str:
    """The URL of the Contentstack page where a user authorizes your Developer Hub app.

    ``state`` is required: generate it per attempt (``secrets.token_urlsafe(16)``), keep it, and
    check that the redirect brings it back unchanged. ``scope`` is a sequence of scopes (joined
    with spaces) or one space-separated string. Pass ``code_challenge`` (``PKCE.challenge``) for
    the PKCE flow; the method is always S256. ``app_url`` overrides the region's app host.

    Example::

        authorization_url(app_uid="6400...", client_id="abc", state="xyz",
                          redirect_uri="http://localhost:8184/callback")
        # 'https://app.contentstack.com/#!/apps/6400.../authorize?response_type=code&...'
    """
    for name, value in (("app_uid", app_uid), ("client_id", client_id), ("state", state)):
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(f"authorization_url needs a non-empty {name}")
    if not isinstance(redirect_uri, str) or not redirect_uri.strip():
        raise ConfigurationError("authorization_url needs a non-empty redirect_uri")
    scopes = scope.split() if isinstance(scope, str) else [s for s in scope if s]
    base = base_url(app_url, "app_url") if app_url else Region.parse(region).app_url
    params: list[tuple[str, str]] = [
        ("response_type", "code"),
        ("client_id", client_id.strip()),
        ("redirect_uri", redirect_uri.strip()),
        ("scope", " ".join(scopes)),
        ("state", state),
    ]
    if code_challenge is not None:
        if not code_challenge.strip():
            raise ConfigurationError(
                "code_challenge is empty; pass PKCE.generate().challenge, or leave it out"
            )
        params.append(("code_challenge", code_challenge.strip()))
        params.append(("code_challenge_method", "S256"))
    query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    app = urllib.parse.quote(app_uid.strip(), safe="")
    return f"{base}/#!/apps/{app}/authorize?{query}"
