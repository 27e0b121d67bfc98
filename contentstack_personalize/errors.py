"""The exception tree: one root, split by what the caller can do about it.

::

    PersonalizeError
    ├── ConfigurationError            bad arguments, raised before any request is sent
    │   ├── ValidationError           a value that cannot be sent (user UID, attribute value)
    │   └── DestinationMismatchError  a sync's state was written for another project or edge
    ├── StateStoreError               the state store cannot be read or written (disk, lock...)
    ├── SyncInProgressError           another run of the same sync holds its lock
    ├── TransportError                no HTTP answer: the request may or may not have arrived
    │   ├── APITimeoutError
    │   └── APIConnectionError
    ├── APIStatusError                the API answered with a non-2xx status
    │   ├── BadRequestError           400, 422
    │   ├── AuthenticationError       401
    │   ├── PermissionDeniedError     403
    │   ├── NotFoundError             404
    │   ├── ConflictError             409
    │   ├── RateLimitError            429 (with ``retry_after``)
    │   └── ServerError               5xx
    └── SyncAbortedError              a sync stopped early (systemic failure, Ctrl-C, SIGTERM)

Messages never contain credentials: request headers are not part of ``str(error)`` and the
request/response objects kept on the error are the ones the caller already had.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "DestinationMismatchError",
    "NotFoundError",
    "PermissionDeniedError",
    "PersonalizeError",
    "RateLimitError",
    "ServerError",
    "StateStoreError",
    "SyncAbortedError",
    "SyncInProgressError",
    "TransportError",
    "ValidationError",
]

_MAX_BODY_IN_MESSAGE = 500


class PersonalizeError(Exception):
    """Root of every error this library raises on purpose.

    Example::

        try:
            client.users.set_attributes("user-1", {"plan": "gold"})
        except PersonalizeError as exc:
            log.error("personalize failed: %s", exc)
    """


class ConfigurationError(PersonalizeError, ValueError):
    """The library was configured or called in a way that cannot work; nothing was sent.

    Example: ``PersonalizeClient(project_uid="")`` raises it, naming the missing project UID.
    """


class ValidationError(ConfigurationError):
    """A value cannot be sent as given (a user UID that is no valid header, a value that is
    not JSON); nothing was sent.

    Example: ``client.users.set_attributes("bad\\nuid", {})`` raises it, quoting the UID.
    """


class TransportError(PersonalizeError):
    """The request got no HTTP answer (timeout, refused or dropped connection).

    ``attempts`` tells how many times it was tried before giving up.

    Example::

        try:
            client.users.set_attributes("user-42", {"plan": "gold"})
        except TransportError as exc:
            log.warning("no answer after %d attempts; will retry later: %s", exc.attempts, exc)
    """

    def __init__(self, message: str, *, request: httpx.Request | None = None, attempts: int = 1):
        super().__init__(message)
        self.message = message
        self.request = request
        self.attempts = attempts


class APITimeoutError(TransportError):
    """The request timed out (connect, read, write or pool).

    Example::

        try:
            client.attributes.list()
        except APITimeoutError:
            client = PersonalizeClient(project_uid, auth=auth, timeout=60)  # allow longer
    """


class APIConnectionError(TransportError):
    """The connection could not be made or was dropped before an answer arrived.

    Example::

        try:
            client.users.manifest("user-42")
        except APIConnectionError as exc:
            print("check the network, proxy and region:", exc)
    """


class APIStatusError(PersonalizeError):
    """The API answered with a non-success status.

    Attributes a caller can act on:

    - ``status_code``: the HTTP status.
    - ``code``: the API's error code, e.g. ``personalize.MANIFEST.PROJECT_NOT_FOUND``.
    - ``message``: the API's human message (or a summary of the body when it had none).
    - ``field_errors``: ``{field: [messages]}`` for validation failures.
    - ``request_id``: the server's request id header, when it sent one.
    - ``attempts``: how many attempts were made (retries included).
    - ``request`` / ``response``: the httpx objects.

    Example::

        try:
            client.attributes.create(key="plan", name="Plan")
        except ConflictError as exc:
            print(exc.code, exc.field_errors)
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        field_errors: Mapping[str, list[str]] | None = None,
        request_id: str | None = None,
        request: httpx.Request | None = None,
        response: httpx.Response | None = None,
        body: Any = None,
        attempts: int = 1,
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.code = code
        self.field_errors: dict[str, list[str]] = dict(field_errors or {})
        self.request_id = request_id
        self.request = request
        self.response = response
        self.body = body
        self.attempts = attempts
        super().__init__(self._render())

    def _rebuilt(
        self,
        cls: type[APIStatusError] | None = None,
        *,
        message: str | None = None,
        attempts: int | None = None,
    ) -> APIStatusError:
        """The same answer as another error class, message or attempt count (everything else
        kept), e.g. a refused token refresh as an :class:`AuthenticationError`."""
        return (cls or type(self))(
            self.message if message is None else message,
            status_code=self.status_code,
            code=self.code,
            field_errors=self.field_errors,
            request_id=self.request_id,
            request=self.request,
            response=self.response,
            body=self.body,
            attempts=self.attempts if attempts is None else attempts,
        )

    def _render(self) -> str:
        parts = [f"{self.status_code}"]
        if self.code:
            parts.append(f"[{self.code}]")
        parts.append(self.message)
        text = " ".join(parts)
        if self.field_errors:
            fields = "; ".join(f"{k}: {', '.join(v)}" for k, v in self.field_errors.items())
            text += f" ({fields})"
        if self.request is not None:
            text += f" — {self.request.method} {self.request.url.copy_with(query=None)}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable across processes (multiprocessing, Dask): keep the data, drop httpx objects.
        return (
            _rebuild_status_error,
            (
                type(self),
                self.message,
                self.status_code,
                self.code,
                self.field_errors,
                self.request_id,
                self.body,
                self.attempts,
            ),
        )


def _rebuild_status_error(
    cls: type[APIStatusError],
    message: str,
    status_code: int,
    code: str | None,
    field_errors: dict[str, list[str]],
    request_id: str | None,
    body: Any,
    attempts: int,
) -> APIStatusError:
    return cls(
        message,
        status_code=status_code,
        code=code,
        field_errors=field_errors,
        request_id=request_id,
        body=body,
        attempts=attempts,
    )


class BadRequestError(APIStatusError):
    """400 or 422: the API refused the request's content (see ``field_errors``).

    Example::

        try:
            client.audiences.create(name="", definition=all_of())
        except BadRequestError as exc:
            print(exc.field_errors)  # {'name': ['...']}
    """


class AuthenticationError(APIStatusError):
    """401: missing, expired or invalid credentials. Log in again or refresh the token.

    Example::

        try:
            client.attributes.list()
        except AuthenticationError:
            auth = login(email, password)  # then build the client again with it
    """


class PermissionDeniedError(APIStatusError):
    """403: the credentials are valid but may not do this (scope, role, organization).

    Example::

        try:
            client.projects.create(name="Storefront")
        except PermissionDeniedError as exc:
            print("ask an organization admin for access:", exc.message)
    """


class NotFoundError(APIStatusError):
    """404: unknown project (``personalize.*.PROJECT_NOT_FOUND``) or resource.

    Example::

        try:
            client.audiences.get("no-such-uid")
        except NotFoundError:
            audience = None
    """


class ConflictError(APIStatusError):
    """409: the resource already exists (e.g. a duplicate attribute key).

    Example::

        try:
            client.attributes.create(key="plan")
        except ConflictError:
            pass  # or use client.attributes.ensure(["plan"]), which tolerates it
    """


class RateLimitError(APIStatusError):
    """429: too many requests. ``retry_after`` holds the server's wait in seconds, if any.

    Raised once the client's :class:`~contentstack_personalize.RetryPolicy` gave up.

    Example::

        try:
            client.attributes.list()
        except RateLimitError as exc:
            time.sleep(exc.retry_after or 1.0)
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class ServerError(APIStatusError):
    """5xx: the service failed; usually transient and retried by the client's policy.

    Example::

        try:
            client.users.set_attributes("user-42", {"plan": "gold"})
        except ServerError as exc:
            log.warning("Personalize failed (%s, request id %s)", exc.status_code, exc.request_id)
    """


class DestinationMismatchError(ConfigurationError):
    """A sync's state describes another destination than the client points at (another
    project, or another Edge URL). Sending only the differences from that state would leave the
    new destination incomplete, so the run refuses to start.

    ``stored`` and ``current`` are ``{"project_uid": ..., "edge_url": ...}``.

    Example::

        try:
            sync.run(rows)
        except DestinationMismatchError:
            sync.reset()          # a fresh destination: the next run sends every user
            sync.run(rows)
    """

    def __init__(self, message: str, *, stored: Mapping[str, Any], current: Mapping[str, Any]):
        super().__init__(message)
        self.stored = dict(stored)
        self.current = dict(current)


class StateStoreError(PersonalizeError):
    """The state store failed (a full disk, a read-only or corrupted file, a lock held too long
    by another process, a lost database connection). The message says what to do; the original
    error is chained as ``__cause__``. During a run it stops the run: nothing more is sent than
    the store could record.

    Example::

        try:
            sync.run(rows)
        except SyncAbortedError as exc:
            if isinstance(exc.cause, StateStoreError):
                print("state store problem:", exc.cause)
    """


class SyncInProgressError(PersonalizeError):
    """Another run of the same sync (same name, same state store) holds its lock. Two runs at
    once would each commit what they believe the edge holds and overwrite each other.

    ``holder`` describes the other run (``host``, ``pid``, ``run_id``, ``since``, ``expires``);
    wait for it, or pass ``Sync(lock_timeout=seconds)`` to wait that long for the lock.

    Example::

        try:
            sync.run(rows)
        except SyncInProgressError as exc:
            print("skipped, already running:", exc.holder)
    """

    def __init__(self, message: str, *, holder: Mapping[str, Any]):
        super().__init__(message)
        self.holder = dict(holder)


class SyncAbortedError(PersonalizeError):
    """A sync run stopped early. ``result`` holds what was done before it stopped; everything the
    edge acknowledged before the abort is committed to the state store.

    Example::

        try:
            sync.run(rows)
        except SyncAbortedError as exc:
            print(exc.result.summary())
    """

    def __init__(self, message: str, *, result: Any = None, cause: BaseException | None = None):
        super().__init__(message)
        self.message = message
        self.result = result
        self.cause = cause


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: BadRequestError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The exception class that stands for ``status_code``."""
    if status_code in _STATUS_CLASSES:
        return _STATUS_CLASSES[status_code]
    if status_code >= 500:
        return ServerError
    if 400 <= status_code < 500:
        return BadRequestError
    return APIStatusError


def parse_error_body(
    content: bytes, content_type: str | None = None
) -> tuple[str | None, str | None, dict[str, list[str]], Any]:
    """Read any documented error body shape.

    Returns ``(code, message, field_errors, parsed_body)``. Shapes handled:
    ``{"error": CODE, "message": MSG}``, ``{"error_message": MSG, "error_code": N}``,
    ``{"errors": {field: [msg, ...]}}`` (values may also be plain strings),
    ``{"message": MSG}``, and plain text or HTML (first line, shortened).
    """
    text = content.decode("utf-8", errors="replace").strip()
    body: Any
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    code: str | None = None
    message: str | None = None
    fields: dict[str, list[str]] = {}
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, str):
            code = err
        elif isinstance(err, dict):
            inner_code = err.get("code") or err.get("error")
            code = str(inner_code) if inner_code is not None else None
            inner_msg = err.get("message")
            message = str(inner_msg) if inner_msg is not None else None
        for key in ("message", "error_message", "errorMessage", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value:
                message = value
                break
        if code is None:
            for key in ("code", "error_code", "errorCode"):
                value = body.get(key)
                if value is not None and not isinstance(value, (dict, list)):
                    code = str(value)
                    break
        raw_fields = body.get("errors")
        if isinstance(raw_fields, dict):
            for field, msgs in raw_fields.items():
                if isinstance(msgs, list):
                    fields[str(field)] = [str(m) for m in msgs]
                else:
                    fields[str(field)] = [str(msgs)]
        elif isinstance(raw_fields, list):
            fields["_"] = [str(m) for m in raw_fields]
        if message is None and fields:
            message = "validation failed"
        if message is None and code is not None:
            message = code
    elif isinstance(body, str) and body:
        message = body
    if message is None and text:
        first = text.splitlines()[0] if text.splitlines() else text
        message = first[:_MAX_BODY_IN_MESSAGE]
    return code, message, fields, body if body is not None else (text or None)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        import email.utils
        import time

        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000" means UTC with no zone information
            import datetime

            when = when.replace(tzinfo=datetime.timezone.utc)
        current = time.time() if now is None else now
        return max(0.0, when.timestamp() - current)
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return seconds


_REQUEST_ID_HEADERS = ("x-request-id", "x-cs-request-id", "request-id", "x-amzn-requestid")


def error_from_response(response: httpx.Response, *, attempts: int = 1) -> APIStatusError:
    """Build the typed error for a non-2xx ``response`` (its body must have been read)."""
    code, message, fields, body = parse_error_body(
        response.content, response.headers.get("content-type")
    )
    if not message:
        message = response.reason_phrase or "request failed"
    request_id = next(
        (response.headers[h] for h in _REQUEST_ID_HEADERS if h in response.headers), None
    )
    try:
        request: httpx.Request | None = response.request
    except RuntimeError:  # a Response built by hand has no request
        request = None
    cls = status_error_class(response.status_code)
    kwargs: dict[str, Any] = {
        "status_code": response.status_code,
        "code": code,
        "field_errors": fields,
        "request_id": request_id,
        "request": request,
        "response": response,
        "body": body,
        "attempts": attempts,
    }
    if cls is RateLimitError:
        kwargs["retry_after"] = parse_retry_after(response.headers.get("retry-after"))
    return cls(message, **kwargs)
