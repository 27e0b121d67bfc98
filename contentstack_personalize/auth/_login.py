"""CMA login and logout: minting and ending user authtokens.

:func:`login_op` and :func:`logout_op` are the operations (see ``_core``); :func:`login`,
:func:`alogin`, :func:`logout` and :func:`alogout` run them with blocking or async I/O.
"""

from __future__ import annotations

import httpx

from .._http import USER_AGENT, ExchangeHook, RetryPolicy
from ..errors import AuthenticationError, ConfigurationError
from ..regions import Region
from ._core import Call, Op, run_async, run_blocking
from ._secrets import base_url, clean_secret, json_object, safe_error
from ._tokens import AuthToken

__all__ = ["alogin", "alogout", "login", "login_op", "logout", "logout_op"]


def _cma_base(region: Region | str | None, cma_url: str | None) -> str:
    if cma_url is not None:
        return base_url(cma_url, "cma_url")
    return Region.parse(region).cma_url


def _login_request(email: str, password: str, tfa_token: str | None, base: str) -> httpx.Request:
    if not isinstance(email, str) or not email.strip():
        raise ConfigurationError("login needs an email")
    if not isinstance(password, str) or not password:
        raise ConfigurationError("login needs a password")
    user: dict[str, str] = {"email": email.strip(), "password": password}
    if tfa_token is not None:
        user["tfa_token"] = clean_secret(tfa_token, "tfa_token")
    return httpx.Request(
        "POST",
        f"{base}/v3/user-session",
        json={"user": user},
        headers={"accept": "application/json", "user-agent": USER_AGENT},
    )


def login_op(
    email: str,
    password: str,
    *,
    tfa_token: str | None = None,
    organization_uid: str | None = None,
    region: Region | str | None = None,
    cma_url: str | None = None,
) -> Op[AuthToken]:
    """Login as an operation: ``POST {cma}/v3/user-session``, then the user's authtoken.

    Example::

        token = run_blocking(login_op("me@example.com", password, region="eu"))
    """
    request = _login_request(email, password, tfa_token, _cma_base(region, cma_url))
    secrets = (password, tfa_token)
    response = yield Call(request=request, what="login", secrets=secrets)
    if not response.is_success:
        raise safe_error(response, secret_values=secrets)
    data = json_object(response) or {}
    user = data.get("user")
    token = user.get("authtoken") if isinstance(user, dict) else None
    if not isinstance(token, str) or not token.strip():
        # The CMA answers 294 (a 2xx) with no authtoken when a two-factor token is required.
        error = safe_error(response, secret_values=secrets)
        raise AuthenticationError(
            f"login gave no authtoken: {error.message}"
            + (" (pass tfa_token=...)" if response.status_code == 294 else ""),
            status_code=response.status_code,
            code=error.code,
            request_id=error.request_id,
            request=error.request,
            response=error.response,
            body=error.body,
        )
    return AuthToken(token, organization_uid=organization_uid)


def logout_op(
    token: AuthToken, *, region: Region | str | None = None, cma_url: str | None = None
) -> Op[None]:
    """Logout as an operation: ``DELETE {cma}/v3/user-session`` with the token it ends.

    Example::

        run_blocking(logout_op(token, region="eu"))
    """
    if not isinstance(token, AuthToken):
        raise ConfigurationError("logout needs the AuthToken that login() returned")
    request = httpx.Request(
        "DELETE",
        f"{_cma_base(region, cma_url)}/v3/user-session",
        headers={"accept": "application/json", "user-agent": USER_AGENT},
    )
    response = yield Call(request=request, what="logout", auth=token, secrets=(token.token,))
    if not response.is_success:
        raise safe_error(response, secret_values=[token.token])


def login(
    email: str,
    password: str,
    *,
    tfa_token: str | None = None,
    organization_uid: str | None = None,
    region: Region | str | None = None,
    cma_url: str | None = None,
    http_client: httpx.Client | None = None,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 30.0,
    retry: RetryPolicy | None = None,
    on_exchange: ExchangeHook | None = None,
) -> AuthToken:
    """Log in to the Content Management API and return the user's :class:`AuthToken`.

    ``POST {cma}/v3/user-session``. ``tfa_token`` is the two-factor code, when the account has
    2FA. ``organization_uid`` is stored on the returned token (needed on organization calls).
    Wrong credentials raise ``BadRequestError`` (422) with the API's message; network failures
    raise ``APITimeoutError`` / ``APIConnectionError``. No error carries the password.

    At most 20 authtokens per user are valid at once: the 21st login silently expires the
    oldest. Reuse a token (or :func:`logout` when done) rather than logging in on every run.
    SSO users get no authtoken unless they own the organization: use :class:`OAuth` then.

    Example::

        auth = login("me@example.com", password, organization_uid="blt...", region="eu")
        with PersonalizeClient(project_uid, auth=auth, region="eu") as client:
            client.attributes.list()
        logout(auth, region="eu")
    """
    op = login_op(
        email,
        password,
        tfa_token=tfa_token,
        organization_uid=organization_uid,
        region=region,
        cma_url=cma_url,
    )
    return run_blocking(
        op,
        http_client=http_client,
        transport=transport,
        timeout=timeout,
        retry=retry,
        on_exchange=on_exchange,
    )


async def alogin(
    email: str,
    password: str,
    *,
    tfa_token: str | None = None,
    organization_uid: str | None = None,
    region: Region | str | None = None,
    cma_url: str | None = None,
    http_client: httpx.AsyncClient | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 30.0,
    retry: RetryPolicy | None = None,
    on_exchange: ExchangeHook | None = None,
) -> AuthToken:
    """Async twin of :func:`login` (same 20-authtokens-per-user limit).

    Example::

        auth = await alogin("me@example.com", password, tfa_token="123456")
    """
    op = login_op(
        email,
        password,
        tfa_token=tfa_token,
        organization_uid=organization_uid,
        region=region,
        cma_url=cma_url,
    )
    return await run_async(
        op,
        http_client=http_client,
        transport=transport,
        timeout=timeout,
        retry=retry,
        on_exchange=on_exchange,
    )


def logout(
    token: AuthToken,
    *,
    region: Region | str | None = None,
    cma_url: str | None = None,
    http_client: httpx.Client | None = None,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 30.0,
) -> None:
    """End the CMA session of ``token`` (``DELETE {cma}/v3/user-session``).

    Frees one of the user's 20 concurrent authtoken slots; the token is invalid afterwards.

    Example::

        auth = login(email, password)
        try:
            run_the_sync(auth)
        finally:
            logout(auth)
    """
    op = logout_op(token, region=region, cma_url=cma_url)
    run_blocking(op, http_client=http_client, transport=transport, timeout=timeout)


async def alogout(
    token: AuthToken,
    *,
    region: Region | str | None = None,
    cma_url: str | None = None,
    http_client: httpx.AsyncClient | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 30.0,
) -> None:
    """Async twin of :func:`logout`.

    Example::

        await alogout(auth)
    """
    op = logout_op(token, region=region, cma_url=cma_url)
    await run_async(op, http_client=http_client, transport=transport, timeout=timeout)
