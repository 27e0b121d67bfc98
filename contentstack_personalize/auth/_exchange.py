"""The authorization-code grant's second half: trading the code for tokens.

:func:`exchange_op` is the one operation (see ``_core``); :func:`exchange_code` and
:func:`aexchange_code` run it with blocking or async I/O.
"""

from __future__ import annotations

import time

import httpx

from .._http import USER_AGENT, ExchangeHook, RetryPolicy
from ..errors import AuthenticationError, ConfigurationError
from ..regions import Region
from ._core import Call, Op, run_async, run_blocking
from ._oauth import OAuth, oauth_from_tokens, token_endpoint
from ._secrets import clean_secret, json_object, safe_error
from ._tokens import OAuthTokens, OnRefresh

__all__ = ["aexchange_code", "exchange_code", "exchange_op"]


def _exchange_request(
    *,
    code: str,
    client_id: str,
    app_id: str,
    redirect_uri: str,
    client_secret: str | None,
    code_verifier: str | None,
    token_url: str,
) -> httpx.Request:
    if (client_secret is None) == (code_verifier is None):
        raise ConfigurationError(
            "exchange_code needs exactly one of client_secret (confidential apps) or "
            "code_verifier (PKCE)"
        )
    if not isinstance(redirect_uri, str) or not redirect_uri.strip():
        raise ConfigurationError("exchange_code needs the redirect_uri used to authorize")
    form = {
        "grant_type": "authorization_code",
        "code": clean_secret(code, "authorization code"),
        "redirect_uri": redirect_uri.strip(),
        "client_id": clean_secret(client_id, "client_id"),
        "app_id": clean_secret(app_id, "app_id"),
    }
    if client_secret is not None:
        form["client_secret"] = clean_secret(client_secret, "client_secret")
    if code_verifier is not None:
        form["code_verifier"] = clean_secret(code_verifier, "code_verifier")
    return httpx.Request(
        "POST",
        token_url,
        data=form,
        headers={"accept": "application/json", "user-agent": USER_AGENT},
    )


def exchange_op(
    *,
    code: str,
    client_id: str,
    app_id: str,
    redirect_uri: str,
    client_secret: str | None = None,
    code_verifier: str | None = None,
    region: Region | str | None = None,
    token_url: str | None = None,
    on_refresh: OnRefresh | None = None,
) -> Op[OAuth]:
    """The code exchange as an operation: ``POST {developerhub}/token``, then the OAuth object.

    Example::

        oauth = run_blocking(exchange_op(code=code, client_id="c", app_id="a",
                                     redirect_uri="http://localhost/cb", code_verifier=v))
    """
    url = token_endpoint(region, token_url)
    request = _exchange_request(
        code=code,
        client_id=client_id,
        app_id=app_id,
        redirect_uri=redirect_uri,
        client_secret=client_secret,
        code_verifier=code_verifier,
        token_url=url,
    )
    secrets = (code, client_secret, code_verifier)
    started = time.time()
    response = yield Call(request=request, what="OAuth code exchange", secrets=secrets)
    if not response.is_success:
        raise safe_error(response, secret_values=secrets, as_auth_error=True)
    try:
        tokens = OAuthTokens.from_api(json_object(response) or {}, now=started)
    except ValueError as exc:
        raise AuthenticationError(
            f"{exc} — POST {url}",
            status_code=response.status_code,
            request=httpx.Request("POST", url),
        ) from None
    return oauth_from_tokens(
        tokens,
        client_id=client_id,
        app_id=app_id,
        client_secret=client_secret,
        token_url=url,
        on_refresh=on_refresh,
    )


def exchange_code(
    *,
    code: str,
    client_id: str,
    app_id: str,
    redirect_uri: str,
    client_secret: str | None = None,
    code_verifier: str | None = None,
    region: Region | str | None = None,
    token_url: str | None = None,
    http_client: httpx.Client | None = None,
    transport: httpx.BaseTransport | None = None,
    on_refresh: OnRefresh | None = None,
    timeout: float = 30.0,
    retry: RetryPolicy | None = None,
    on_exchange: ExchangeHook | None = None,
) -> OAuth:
    """Trade the authorization code from the redirect for tokens; return a ready :class:`OAuth`.

    Give exactly one of ``client_secret`` (confidential app) or ``code_verifier`` (PKCE, the
    ``PKCE.verifier`` whose challenge went into :func:`authorization_url`). ``on_refresh`` is
    passed on to the OAuth object (it is not called for these first tokens: persist
    ``oauth.tokens`` yourself). A refused code raises ``AuthenticationError``.

    Example::

        auth = exchange_code(code=code, client_id="abc", app_id="6400...",
                             redirect_uri="http://localhost:8184/callback",
                             code_verifier=pkce.verifier)
        save_tokens(auth.tokens)
        client = PersonalizeClient(project_uid, auth=auth)
    """
    op = exchange_op(
        code=code,
        client_id=client_id,
        app_id=app_id,
        redirect_uri=redirect_uri,
        client_secret=client_secret,
        code_verifier=code_verifier,
        region=region,
        token_url=token_url,
        on_refresh=on_refresh,
    )
    return run_blocking(
        op,
        http_client=http_client,
        transport=transport,
        timeout=timeout,
        retry=retry,
        on_exchange=on_exchange,
    )


async def aexchange_code(
    *,
    code: str,
    client_id: str,
    app_id: str,
    redirect_uri: str,
    client_secret: str | None = None,
    code_verifier: str | None = None,
    region: Region | str | None = None,
    token_url: str | None = None,
    http_client: httpx.AsyncClient | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    on_refresh: OnRefresh | None = None,
    timeout: float = 30.0,
    retry: RetryPolicy | None = None,
    on_exchange: ExchangeHook | None = None,
) -> OAuth:
    """Async twin of :func:`exchange_code` (the same operation, run with async I/O).

    Example::

        auth = await aexchange_code(code=code, client_id="abc", app_id="6400...",
                                    redirect_uri="http://localhost:8184/callback",
                                    client_secret=client_secret)
    """
    op = exchange_op(
        code=code,
        client_id=client_id,
        app_id=app_id,
        redirect_uri=redirect_uri,
        client_secret=client_secret,
        code_verifier=code_verifier,
        region=region,
        token_url=token_url,
        on_refresh=on_refresh,
    )
    return await run_async(
        op,
        http_client=http_client,
        transport=transport,
        timeout=timeout,
        retry=retry,
        on_exchange=on_exchange,
    )
