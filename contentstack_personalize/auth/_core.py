"""The sans-I/O core of the credential calls (login, logout, code exchange).

A :class:`Call` describes one request; an *operation* (:data:`Op`) is a generator that checks
its arguments, yields calls, receives their answers and returns the result (an ``AuthToken``,
an ``OAuth``) or raises the typed error. :func:`run_blocking` and :func:`run_async` run an operation
over a blocking or an async httpx client: they are the only code that differs between
``login`` and ``alogin``. Both send through the package's one request pipeline
(:func:`~contentstack_personalize._http.send_with_retries` and its async twin): ``AUTH_RETRY``
unless ``retry=`` is given, every attempt observed by ``on_exchange`` with the call's secrets
masked. An answer of any status is handed to the operation, which decides what it means; a
call that got no answer raises ``APITimeoutError`` / ``APIConnectionError`` from the driver.

This is the same shape as the resources' ``Op`` core, kept separate because auth sits below
the client: it sends with a bare httpx client, not through ``PersonalizeClient``.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import TypeVar

import attrs
import httpx

from .._http import (
    AUTH_RETRY,
    Attempt,
    ExchangeHook,
    Observer,
    RetryPolicy,
    asend_with_retries,
    make_exchange,
    send_with_retries,
)
from ..errors import ConfigurationError
from ._secrets import LOG, encoded_forms, redacted_repr, transport_error

__all__ = ["Call", "Op", "run_async", "run_blocking"]

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class Call:
    """One credential request and how to report it.

    ``what`` names the call in errors ("login timed out"); ``auth`` is put on the request
    (logout sends the token it ends); ``secrets`` are masked in the exchange records.
    """

    request: httpx.Request
    what: str
    auth: httpx.Auth | None = None
    secrets: tuple[str | None, ...] = attrs.field(default=(), repr=redacted_repr)


Op = Generator[Call, httpx.Response, T]
"""A credential operation: yields :class:`Call` s, receives their answers, returns ``T``."""


def run_blocking(
    op: Op[T],
    *,
    http_client: httpx.Client | None = None,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 30.0,
    retry: RetryPolicy | None = None,
    on_exchange: ExchangeHook | None = None,
) -> T:
    """Run ``op`` with blocking I/O.

    Example::

        token = run_blocking(login_op("me@example.com", password, base=cma), timeout=10)
    """
    try:
        call = next(op)
        while True:
            call = op.send(
                _send(
                    call,
                    http_client=http_client,
                    transport=transport,
                    timeout=timeout,
                    retry=retry,
                    on_exchange=on_exchange,
                )
            )
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        op.close()


async def run_async(
    op: Op[T],
    *,
    http_client: httpx.AsyncClient | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 30.0,
    retry: RetryPolicy | None = None,
    on_exchange: ExchangeHook | None = None,
) -> T:
    """Run ``op`` with async I/O (the same operation :func:`run_blocking` runs).

    Example::

        token = await run_async(login_op("me@example.com", password, base=cma))
    """
    try:
        call = next(op)
        while True:
            call = op.send(
                await _asend(
                    call,
                    http_client=http_client,
                    transport=transport,
                    timeout=timeout,
                    retry=retry,
                    on_exchange=on_exchange,
                )
            )
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        op.close()


# -- the two I/O edges -------------------------------------------------------------------------


def _check_client_args(http_client: object, transport: object) -> None:
    if http_client is not None and transport is not None:
        raise ConfigurationError("pass http_client or transport, not both")


def _prepared(call: Call, timeout: float) -> httpx.Request:
    request = call.request
    request.extensions["timeout"] = httpx.Timeout(timeout).as_dict()
    return request


def _answer(response: httpx.Response) -> Attempt:
    return Attempt(
        response, status=response.status_code, retry_after=response.headers.get("retry-after")
    )


def _observer(on_exchange: ExchangeHook | None, call: Call) -> Observer | None:
    """Exchange records of a credential call for ``on_exchange`` (a debugger's hook, say), with
    the password, codes and tokens masked."""
    if on_exchange is None:
        return None
    request = call.request
    # Longest first, and in every form an echo of it may take in a body.
    masks: Iterable[str] = sorted(
        {form for value in call.secrets if value for form in encoded_forms(value)},
        key=len,
        reverse=True,
    )
    api = "oauth" if request.method == "POST" and request.url.path.endswith("/token") else "cma"

    def observe(
        number: int, attempt: Attempt, started_at: float, duration: float, will_retry: bool
    ) -> None:
        exchange = make_exchange(
            api=api,
            request=request,
            response=attempt.response,
            started_at=started_at,
            duration=duration,
            attempt=number,
            error=attempt.error,
            will_retry=will_retry,
            max_body_bytes=4096,
            secrets=masks,
        )
        try:
            on_exchange(exchange)
        except Exception:
            LOG.exception("exchange hook %r failed; ignoring it", on_exchange)

    return observe


def _send(
    call: Call,
    *,
    http_client: httpx.Client | None,
    transport: httpx.BaseTransport | None,
    timeout: float,
    retry: RetryPolicy | None,
    on_exchange: ExchangeHook | None,
) -> httpx.Response:
    """Send ``call`` through the package's one request pipeline; return the (read) answer."""
    _check_client_args(http_client, transport)
    client = http_client if http_client is not None else httpx.Client(transport=transport)
    request = _prepared(call, timeout)

    def send(number: int) -> Attempt:
        try:
            response = client.send(request, auth=call.auth)
            response.read()
        except httpx.TransportError as exc:
            return Attempt(error=exc)
        return _answer(response)

    try:
        last, attempts = send_with_retries(
            retry or AUTH_RETRY,
            send,
            observe=_observer(on_exchange, call),
            discard=lambda attempt: attempt.response.close(),
        )
    finally:
        if http_client is None:
            client.close()
    if last.error is not None:
        raise transport_error(last.error, call.what, attempts) from last.error
    response: httpx.Response = last.response
    return response


async def _asend(
    call: Call,
    *,
    http_client: httpx.AsyncClient | None,
    transport: httpx.AsyncBaseTransport | None,
    timeout: float,
    retry: RetryPolicy | None,
    on_exchange: ExchangeHook | None,
) -> httpx.Response:
    """The async edge: :func:`_send` over an ``httpx.AsyncClient``."""
    _check_client_args(http_client, transport)
    client = http_client if http_client is not None else httpx.AsyncClient(transport=transport)
    request = _prepared(call, timeout)

    async def send(number: int) -> Attempt:
        try:
            response = await client.send(request, auth=call.auth)
            await response.aread()
        except httpx.TransportError as exc:
            return Attempt(error=exc)
        return _answer(response)

    async def discard(attempt: Attempt) -> None:
        await attempt.response.aclose()

    try:
        last, attempts = await asend_with_retries(
            retry or AUTH_RETRY,
            send,
            observe=_observer(on_exchange, call),
            discard=discard,
        )
    finally:
        if http_client is None:
            await client.aclose()
    if last.error is not None:
        raise transport_error(last.error, call.what, attempts) from last.error
    response: httpx.Response = last.response
    return response
