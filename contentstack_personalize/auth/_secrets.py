"""Checking credentials and keeping them out of sight: the pure helpers every auth module uses.

Nothing here does I/O. A credential is checked without echoing it (:func:`clean_secret`), shown
as ``'[REDACTED]'`` in a ``repr`` (:func:`redacted_repr`), and blanked out of any error built
from a credential call's answer (:func:`safe_error`, :func:`transport_error`).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from collections.abc import Iterable
from typing import Any

import httpx

from .._http import REDACTED, describe_exception, encoded_forms, scrub
from ..errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ConfigurationError,
    PersonalizeError,
    RateLimitError,
    ServerError,
    error_from_response,
)

__all__ = [
    "LOG",
    "base_url",
    "clean_secret",
    "encoded_forms",
    "epoch",
    "json_object",
    "optional_text",
    "redacted_repr",
    "safe_error",
    "transport_error",
]

LOG = logging.getLogger("contentstack_personalize.auth")
"""The one logger of the auth package (refreshes, failed callbacks; never a secret)."""


def clean_secret(value: object, what: str) -> str:
    """Strip a credential and check it can travel in a header, never echoing it."""
    if not isinstance(value, str):
        raise ConfigurationError(f"{what} must be a string, not {type(value).__name__}")
    cleaned = value.strip()
    if not cleaned:
        raise ConfigurationError(
            f"{what} is empty; pass the credential itself (check the variable or environment "
            "variable it was read from)"
        )
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in cleaned):
        raise ConfigurationError(
            f"{what} contains control characters and cannot be sent; remove any line break or "
            "tab copied along with it"
        )
    return cleaned


def optional_text(value: str | None, what: str) -> str | None:
    """A stripped non-secret header value, ``None`` when absent or blank."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"{what} must be a string, not {type(value).__name__}")
    cleaned = value.strip()
    if not cleaned:
        return None
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in cleaned):
        raise ConfigurationError(f"{what} contains control characters and cannot be sent")
    return cleaned


def base_url(value: str, what: str) -> str:
    """An ``http(s)://`` base URL without its trailing slash."""
    text = value.strip().rstrip("/")
    if not (text.startswith("http://") or text.startswith("https://")):
        raise ConfigurationError(f"{what} must start with http:// or https://, got {value!r}")
    return text


def epoch(value: float | _dt.datetime | None, what: str = "expires_at") -> float | None:
    """Epoch seconds from a number or an aware datetime."""
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ConfigurationError(f"{what} must be timezone-aware (e.g. datetime.UTC)")
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{what} must be epoch seconds or an aware datetime")
    return float(value)


def redacted_repr(value: object) -> str:
    """How a secret shows in a ``repr``: ``None`` stays visible, anything else is redacted."""
    return "None" if value is None else repr(REDACTED)


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The answer's body as a JSON object, ``None`` when it is not one."""
    try:
        data = json.loads(response.content)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _redact_bytes(content: bytes, secret_values: Iterable[str | None]) -> bytes:
    forms = [f for v in secret_values if v for f in encoded_forms(v)]
    if not content or not forms:
        return content
    return scrub(content.decode("utf-8", errors="replace"), secrets=forms).encode("utf-8")


def safe_error(
    response: httpx.Response,
    *,
    secret_values: Iterable[str | None],
    as_auth_error: bool = False,
) -> APIStatusError:
    """The typed error for a failed credential call, carrying no secret.

    The request the error keeps is a bare copy (method and URL): the original carried a password,
    a refresh token or a client secret in its body. Any secret the server echoed back is blanked
    out of the body before it is parsed into the message.
    """
    try:
        original_request: httpx.Request | None = response.request
    except RuntimeError:
        original_request = None
    bare_request = (
        httpx.Request(original_request.method, original_request.url)
        if original_request is not None
        else None
    )
    extensions = {
        k: v for k, v in response.extensions.items() if k in ("http_version", "reason_phrase")
    }
    clean = httpx.Response(
        response.status_code,
        headers=response.headers,
        content=_redact_bytes(response.content, secret_values),
        request=bare_request,
        extensions=extensions,
    )
    error = error_from_response(clean)
    # A refused refresh or code exchange means "authenticate again", whatever status the token
    # endpoint chose (400 invalid_grant is usual). Rate limits and 5xx stay what they are:
    # those are transient and a retry may succeed.
    if as_auth_error and not isinstance(error, (AuthenticationError, RateLimitError, ServerError)):
        error = error._rebuilt(AuthenticationError)
    return error


def transport_error(exc: BaseException, what: str, attempts: int = 1) -> PersonalizeError:
    """The typed error for a credential call that got no answer."""
    # The original request is not attached: it may carry a password or a token in its body.
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(
            f"{what} timed out{tries} ({type(exc).__name__}); try again, or pass a larger timeout=",
            attempts=attempts,
        )
    return APIConnectionError(
        f"{what} failed{tries}: no answer ({describe_exception(exc)}); check the network, any "
        "proxy and the region",
        attempts=attempts,
    )
