"""``PersonalizeClient`` and ``AsyncPersonalizeClient``: the thin I/O shells over the pure core.

Each holds one resolved :class:`~contentstack_personalize._config.ClientConfig`, one httpx client
(its own, or one the caller injected), the Management API auth, and the resources. Sending,
retrying, rate limiting and observing happen here; building requests, deciding retries and
redacting happen in ``_http.py``.

Imports point one way: this module builds on the resources, which know a client only as a
:class:`~contentstack_personalize.resources._core.Requester` and never import it.

**The internal interface.** No other module of the package reads a private attribute of a
client, except these members, made for it (``tests/test_client_interface.py`` checks this):

- ``_execute(call)``: run one resource :class:`~contentstack_personalize.resources._core.Call`
  (the ``Requester`` protocol the resources use).
- ``_sender_settings()``: a :class:`SenderSettings`, everything the sync engine's senders
  need to talk to the edge as this client does.
- ``_async_twin(max_connections=...)``: an :class:`AsyncPersonalizeClient` with this client's
  settings, built by ``__init__`` (:meth:`AsyncPersonalizeClient.from_settings`).
- ``_send_user_attributes(user_uid, body)``: one ``PATCH /user-attributes`` with an encoded
  body, through this client's retries and hooks (the senders' hot path).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import httpx

from ._config import ClientConfig, VerifyTypes, process_environ, resolve_config
from ._http import (
    Attempt,
    ClientApi,
    Exchange,
    ExchangeHook,
    RateLimiter,
    RetryPolicy,
    asend_with_retries,
    encode_json,
    make_exchange,
    sanitized,
    send_with_retries,
    shared_rate_limiter,
    status_error,
    transport_error,
)
from ._types import NOT_GIVEN, NotGiven
from .auth import AuthToken, auth_from_env
from .errors import ConfigurationError
from .regions import Region
from .resources import (
    AsyncAttributes,
    AsyncAudiences,
    AsyncEvents,
    AsyncExperiences,
    AsyncProjects,
    AsyncUsers,
    Attributes,
    Audiences,
    Call,
    Events,
    Experiences,
    Projects,
    Users,
)

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

__all__ = ["AsyncPersonalizeClient", "PersonalizeClient"]

logger = logging.getLogger("contentstack_personalize.http")


_NO_AUTH = httpx.Auth()  # the base class passes requests through untouched


def _resolve_auth(
    auth: httpx.Auth | str | None, environ: Mapping[str, str] | None
) -> httpx.Auth | None:
    if isinstance(auth, str):
        return AuthToken(auth)
    if auth is not None:
        if not isinstance(auth, httpx.Auth):
            raise ConfigurationError(
                f"auth must be an AuthToken, OAuth or other httpx.Auth, not {type(auth).__name__}"
            )
        return auth
    if environ is None:
        return None
    return auth_from_env(environ)


def _shown_url(url: str) -> str:
    """``url`` without any user:password part (a proxy-style URL may carry one)."""
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    if "@" in host:
        host = "[REDACTED]@" + host.rsplit("@", 1)[1]
    return f"{scheme}{sep}{host}{slash}{path}"


class ExchangeHooks:
    """The exchange hooks of a client: called in order with every redacted :class:`Exchange`.

    Shared by the async twins made from the client (:meth:`PersonalizeClient._async_twin`), so
    their exchanges reach the client's hooks, including hooks added later. A hook that raises
    is logged and otherwise ignored: observing never breaks a request.
    """

    def __init__(self, hooks: Iterable[ExchangeHook] = ()) -> None:
        self._hooks = tuple(hooks)
        self._lock = threading.Lock()

    def add(self, hook: ExchangeHook) -> None:
        """Call ``hook`` too, after the hooks already there."""
        with self._lock:
            self._hooks = (*self._hooks, hook)

    def remove(self, hook: ExchangeHook) -> None:
        """Stop calling ``hook``; unknown hooks are ignored."""
        with self._lock:
            self._hooks = tuple(h for h in self._hooks if h is not hook)

    def __bool__(self) -> bool:
        """Whether any hook is registered (so that nobody builds an exchange for no one)."""
        return bool(self._hooks)

    def __call__(self, exchange: Exchange) -> None:
        """Give ``exchange`` to every hook."""
        for hook in self._hooks:
            try:
                hook(exchange)
            except Exception:
                logger.exception("exchange hook %r failed; ignoring it", hook)

    def __repr__(self) -> str:
        return f"ExchangeHooks({list(self._hooks)!r})"


@attrs.frozen(kw_only=True)
class SenderSettings:
    """Everything a sender needs to talk to the edge as a client does, and everything
    :meth:`AsyncPersonalizeClient.from_settings` needs to build that client's async twin.

    The sync engine's senders (``sync/_sender.py``, ``sync/_fast.py``) read a client only
    through this value (``client._sender_settings()``), never through its attributes.

    Example::

        settings = client._sender_settings()
        settings.config.edge_url, settings.config.retry, settings.base_headers
        if settings.hooks:
            settings.hooks(exchange)
    """

    #: The resolved configuration: base URLs, timeouts, retry policy, TLS verification, extra
    #: headers, the exchange body limit, the project.
    config: ClientConfig
    #: The Management API credentials (the edge needs none).
    auth: httpx.Auth | None = attrs.field(repr=False)
    #: The client's exchange hooks (live: hooks added to the client later are in it).
    hooks: ExchangeHooks
    #: The httpx transport the caller gave the client, if any.
    transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None
    #: Whether the caller gave the client its own httpx client (which cannot be shared).
    user_http_client: bool

    @property
    def base_headers(self) -> dict[str, str]:
        """The headers of every request (user agent, accept, the configured extra headers)."""
        return self.config.base_headers()

    @property
    def own_connections(self) -> bool:
        """Whether the client opens its own connections (no transport nor httpx client of the
        caller's in the way), so a sender may open its own too."""
        return self.transport is None and not self.user_http_client


class _ClientCore:
    """State and pure helpers shared by both clients."""

    _config: ClientConfig
    _auth: httpx.Auth | None
    _hooks: ExchangeHooks
    _transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None

    def _setup(
        self,
        *,
        project_uid: str | None,
        region: Region | str | None,
        auth: httpx.Auth | str | None,
        organization_uid: str | None,
        edge_url: str | None,
        management_url: str | None,
        cma_url: str | None,
        timeout: float | httpx.Timeout | None,
        retry: RetryPolicy | None,
        management_rate_limit: float | None,
        max_body_bytes: int,
        verify: VerifyTypes,
        headers: Mapping[str, str] | None,
        on_exchange: ExchangeHook | None,
        read_env: bool,
    ) -> None:
        environ = process_environ() if read_env else None
        self._config = resolve_config(
            project_uid=project_uid,
            region=region,
            organization_uid=organization_uid,
            edge_url=edge_url,
            management_url=management_url,
            cma_url=cma_url,
            timeout=timeout,
            retry=retry,
            management_rate_limit=management_rate_limit,
            max_body_bytes=max_body_bytes,
            verify=verify,
            headers=headers,
            environ=environ,
        )
        self._auth = _resolve_auth(auth, environ)
        if isinstance(on_exchange, ExchangeHooks):
            self._hooks = on_exchange  # an async twin reports to its client's hooks
        else:
            self._hooks = ExchangeHooks(() if on_exchange is None else (on_exchange,))
        self._limiter: RateLimiter | None = None
        self._base_headers = self._config.base_headers()

    def _adopt(
        self,
        http_client: object | None,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None,
    ) -> None:
        """Record who owns the connections (an injected ``http_client`` stays the caller's)."""
        if http_client is not None and transport is not None:
            raise ConfigurationError("pass http_client or transport, not both")
        self._owns_http = http_client is None
        self._user_http_client = http_client is not None
        self._transport = transport
        self._closed = False

    # -- the internal interface (see the module docs) -------------------------------------------

    def _sender_settings(self) -> SenderSettings:
        """What a sender needs to talk to the edge as this client does (and what
        :meth:`AsyncPersonalizeClient.from_settings` needs to build this client's twin)."""
        return SenderSettings(
            config=self._config,
            auth=self._auth,
            hooks=self._hooks,
            transport=self._transport,
            user_http_client=self._user_http_client,
        )

    def _async_twin(self, *, max_connections: int) -> AsyncPersonalizeClient:
        """An :class:`AsyncPersonalizeClient` with this client's settings, credentials,
        transport and hooks, and connections of its own (up to ``max_connections``): what the
        sync engine uses to fan out from a blocking client, or to run an async client on an
        event loop of its own. The caller closes it (``await twin.aclose()``).

        Refused with :class:`ConfigurationError` when this client has an httpx client of the
        caller's (it cannot be shared) or a transport that cannot serve async requests."""
        settings = self._sender_settings()
        if settings.user_http_client:
            raise ConfigurationError(
                "this client has its own httpx client, which an async twin cannot share"
            )
        transport = settings.transport
        if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
            raise ConfigurationError(
                f"this client's transport ({type(transport).__name__}) cannot serve async "
                "requests; give it one that can (an httpx.AsyncBaseTransport)"
            )
        return AsyncPersonalizeClient.from_settings(
            settings, transport=transport, max_connections=max_connections
        )

    def _http_options(self, max_connections: int) -> dict[str, Any]:
        """The httpx client settings every client (and fan-out twin) of ours uses."""
        return {
            "verify": self._config.verify,
            "timeout": self._config.timeout,
            "limits": httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            "follow_redirects": False,
        }

    # -- public, shared ------------------------------------------------------------------------

    @property
    def config(self) -> ClientConfig:
        """The resolved configuration (URLs, timeout, retry policy...); contains no secret."""
        return self._config

    @property
    def project_uid(self) -> str | None:
        """The project this client talks to."""
        return self._config.project_uid

    @property
    def has_management_auth(self) -> bool:
        """Whether Management API calls can be authenticated (an authtoken or OAuth is set)."""
        return self._auth is not None

    @property
    def organization_uid(self) -> str | None:
        """The organization, from the arguments, the environment or the OAuth tokens."""
        return self._config.organization_uid or getattr(self._auth, "organization_uid", None)

    def add_exchange_hook(self, hook: ExchangeHook) -> None:
        """Call ``hook(exchange)`` after every attempt (secrets already redacted).

        A hook that raises is logged and otherwise ignored: observing never breaks a request.
        """
        self._hooks.add(hook)

    def remove_exchange_hook(self, hook: ExchangeHook) -> None:
        """Stop calling ``hook``; unknown hooks are ignored."""
        self._hooks.remove(hook)

    def __repr__(self) -> str:
        """The project, the URLs actually in use (the region only when they are its own), and
        the auth with its secret hidden."""
        config = self._config
        region = config.region
        parts = [f"project_uid={config.project_uid!r}"]
        if (config.edge_url, config.management_url) == (region.edge_url, region.management_url):
            parts.append(f"region={region.value!r}")
        parts.append(f"edge_url={_shown_url(config.edge_url)!r}")
        parts.append(f"management_url={_shown_url(config.management_url)!r}")
        parts.append(f"auth={self._auth!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    # -- pure request building -----------------------------------------------------------------

    def _build_request(
        self,
        http: httpx.Client | httpx.AsyncClient,
        api: ClientApi,
        method: str,
        path: str,
        *,
        json: Any = NOT_GIVEN,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        project_scoped: bool = True,
        organization_scoped: bool = False,
    ) -> httpx.Request:
        config = self._config
        all_headers = dict(self._base_headers)
        if project_scoped:
            all_headers["x-project-uid"] = config.require_project()
        if api == "management":
            if self._auth is None:
                raise ConfigurationError(
                    "Management API calls need credentials: pass auth=AuthToken(...) (or "
                    "login(...)) or auth=OAuth(...), or set CONTENTSTACK_AUTHTOKEN"
                )
            org = self.organization_uid
            if org:
                all_headers["organization_uid"] = org
            elif organization_scoped:
                raise ConfigurationError(
                    "this call is organization-scoped: pass organization_uid=... to the client, "
                    "set CONTENTSTACK_ORGANIZATION_UID, or use OAuth (its tokens carry it)"
                )
        content: bytes | None = None
        if not isinstance(json, NotGiven):
            content = encode_json(json)
            all_headers["Content-Type"] = "application/json"
        if headers:
            all_headers.update(headers)
        url = config.base_url(api) + path
        return http.build_request(
            method, url, content=content, params=params, headers=all_headers, timeout=config.timeout
        )

    def _user_attributes_request(
        self, http: httpx.Client | httpx.AsyncClient, user_uid: str, body: bytes
    ) -> httpx.Request:
        """``PATCH /user-attributes`` for one user with an already-encoded JSON body (the sync
        engine's hot path: no per-request header merging beyond the essentials)."""
        headers = dict(self._base_headers)
        headers["x-project-uid"] = self._config.require_project()
        headers["x-cs-personalize-user-uid"] = user_uid
        headers["Content-Type"] = "application/json"
        return http.build_request(
            "PATCH",
            self._config.edge_url + "/user-attributes",
            content=body,
            headers=headers,
            timeout=self._config.timeout,
        )

    def _auth_for(self, api: ClientApi) -> httpx.Auth:
        if api == "management" and self._auth is not None:
            return self._auth
        return _NO_AUTH

    def _rate_limiter(self, api: ClientApi) -> RateLimiter | None:
        rate = self._config.management_rate_limit
        if api != "management" or rate is None:
            return None
        if self._limiter is None:
            org = self.organization_uid or f"project:{self._config.project_uid}"
            self._limiter = shared_rate_limiter(self._config.management_url, org, rate)
        return self._limiter

    def _observe(
        self,
        api: ClientApi,
        request: httpx.Request,
        response: httpx.Response | None,
        error: BaseException | None,
        started_at: float,
        duration: float,
        attempt: int,
        will_retry: bool,
    ) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %s in %.1f ms (attempt %d%s)",
                request.method,
                request.url.copy_with(query=None),
                response.status_code if response is not None else type(error).__name__,
                duration * 1000,
                attempt,
                ", will retry" if will_retry else "",
            )
        if not self._hooks:
            return
        exchange = make_exchange(
            api=api,
            request=request,
            response=response,
            started_at=started_at,
            duration=duration,
            attempt=attempt,
            error=error,
            will_retry=will_retry,
            max_body_bytes=self._config.max_body_bytes,
        )
        self._hooks(exchange)

    def _observer(
        self, api: ClientApi, request: httpx.Request
    ) -> Callable[[int, Attempt, float, float, bool], None]:
        def observe(
            number: int, attempt: Attempt, started_at: float, duration: float, will_retry: bool
        ) -> None:
            self._observe(
                api,
                request,
                attempt.response,
                attempt.error,
                started_at,
                duration,
                number,
                will_retry,
            )

        return observe

    @staticmethod
    def _outcome(response: httpx.Response) -> Attempt:
        return Attempt(
            response, status=response.status_code, retry_after=response.headers.get("retry-after")
        )

    @staticmethod
    def _raise_for(last: Attempt, request: httpx.Request, attempts: int) -> httpx.Response:
        error = last.error
        if error is not None:
            assert isinstance(error, httpx.HTTPError)
            raise transport_error(error, request, attempts) from sanitized(error, request)
        response: httpx.Response = last.response
        if not response.is_success:
            raise status_error(response, attempts)
        return response


class PersonalizeClient(_ClientCore):
    """A blocking client for the Contentstack Personalize Edge and Management APIs.

    Arguments (all keyword-only except ``project_uid``; environment variables fill what is not
    given, see the Authentication docs):

    - ``project_uid``: the Personalize project (``CONTENTSTACK_PERSONALIZE_PROJECT_UID``).
    - ``region``: ``"aws-na"`` (default), ``"eu"``, ``"azure-na"``... (``CONTENTSTACK_REGION``).
    - ``auth``: ``AuthToken``, ``OAuth``, any ``httpx.Auth``, or an authtoken string. Only the
      Management API needs it; the Edge API is unauthenticated.
    - ``edge_url`` / ``management_url`` / ``cma_url``: override a base URL (proxy, emulator).
    - ``timeout``: seconds (or an ``httpx.Timeout``) per attempt; default 30.
    - ``retry``: a :class:`RetryPolicy`; ``RetryPolicy.disabled()`` turns retries off.
    - ``management_rate_limit``: requests per second per organization (default 10, the API's
      limit), shared by every client in the process; ``None`` disables it.
    - ``http_client`` or ``transport``: bring your own ``httpx.Client`` or transport.
    - ``verify``: TLS verification, on by default; ``verify=False`` turns it off explicitly.
    - ``on_exchange``: a callback receiving every redacted :class:`Exchange`.

    Example::

        from contentstack_personalize import PersonalizeClient, AuthToken

        with PersonalizeClient("65f1...", auth=AuthToken(token), region="eu") as client:
            client.users.set_attributes("user-42", {"plan": "gold"})
    """

    _transport: httpx.BaseTransport | None

    users: Users
    attributes: Attributes
    audiences: Audiences
    events: Events
    projects: Projects
    experiences: Experiences

    def __init__(
        self,
        project_uid: str | None = None,
        *,
        region: Region | str | None = None,
        auth: httpx.Auth | str | None = None,
        organization_uid: str | None = None,
        edge_url: str | None = None,
        management_url: str | None = None,
        cma_url: str | None = None,
        timeout: float | httpx.Timeout | None = 30.0,
        retry: RetryPolicy | None = None,
        management_rate_limit: float | None = 10.0,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        verify: VerifyTypes = True,
        max_connections: int = 100,
        max_body_bytes: int = 4096,
        headers: Mapping[str, str] | None = None,
        on_exchange: ExchangeHook | None = None,
        read_env: bool = True,
    ) -> None:
        self._setup(
            project_uid=project_uid,
            region=region,
            auth=auth,
            organization_uid=organization_uid,
            edge_url=edge_url,
            management_url=management_url,
            cma_url=cma_url,
            timeout=timeout,
            retry=retry,
            management_rate_limit=management_rate_limit,
            max_body_bytes=max_body_bytes,
            verify=verify,
            headers=headers,
            on_exchange=on_exchange,
            read_env=read_env,
        )
        self._adopt(http_client, transport)
        self._http = http_client or httpx.Client(
            transport=transport, **self._http_options(max_connections)
        )
        self.users = Users(self)
        self.attributes = Attributes(self)
        self.audiences = Audiences(self)
        self.events = Events(self)
        self.projects = Projects(self)
        self.experiences = Experiences(self)

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connections this client opened (an injected ``http_client`` stays open)."""
        if not self._closed:
            self._closed = True
            if self._owns_http:
                self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- sending -------------------------------------------------------------------------------

    def _request(
        self,
        api: ClientApi,
        method: str,
        path: str,
        *,
        json: Any = NOT_GIVEN,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        project_scoped: bool = True,
        organization_scoped: bool = False,
    ) -> httpx.Response:
        """Send one API call with retries; return the 2xx response or raise a typed error."""
        if self._closed:
            raise ConfigurationError("this client is closed; create a new one")
        request = self._build_request(
            self._http,
            api,
            method,
            path,
            json=json,
            params=params,
            headers=headers,
            project_scoped=project_scoped,
            organization_scoped=organization_scoped,
        )
        return self._send(api, request)

    def _execute(self, call: Call, /) -> httpx.Response:
        """Run one resource call (the resources' ``Requester`` protocol)."""
        return self._request(
            call.api,
            call.method,
            call.path,
            json=call.json,
            params=call.params,
            headers=call.headers,
            project_scoped=call.project_scoped,
            organization_scoped=call.organization_scoped,
        )

    def _send_user_attributes(self, user_uid: str, body: bytes) -> None:
        """``PATCH /user-attributes`` for one user with an encoded JSON body, with retries;
        raise a typed error when it fails (the senders' hot path)."""
        request = self._user_attributes_request(self._http, user_uid, body)
        self._send("edge", request).close()

    def _send(self, api: ClientApi, request: httpx.Request) -> httpx.Response:
        auth = self._auth_for(api)
        limiter = self._rate_limiter(api)

        def send(number: int) -> Attempt:
            if limiter is not None:
                limiter.acquire()
            try:
                return self._outcome(self._http.send(request, auth=auth))
            except httpx.HTTPError as exc:  # transport failures, bodies that cannot decode
                return Attempt(error=exc)

        last, attempts = send_with_retries(
            self._config.retry,
            send,
            observe=self._observer(api, request),
            discard=lambda attempt: attempt.response.close(),
        )
        return self._raise_for(last, request, attempts)


class AsyncPersonalizeClient(_ClientCore):
    """The asyncio twin of :class:`PersonalizeClient`, with the same arguments.

    Example::

        async with AsyncPersonalizeClient("65f1...", auth=AuthToken(token)) as client:
            await client.users.set_attributes("user-42", {"plan": "gold"})
    """

    _transport: httpx.AsyncBaseTransport | None

    users: AsyncUsers
    attributes: AsyncAttributes
    audiences: AsyncAudiences
    events: AsyncEvents
    projects: AsyncProjects
    experiences: AsyncExperiences

    def __init__(
        self,
        project_uid: str | None = None,
        *,
        region: Region | str | None = None,
        auth: httpx.Auth | str | None = None,
        organization_uid: str | None = None,
        edge_url: str | None = None,
        management_url: str | None = None,
        cma_url: str | None = None,
        timeout: float | httpx.Timeout | None = 30.0,
        retry: RetryPolicy | None = None,
        management_rate_limit: float | None = 10.0,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: VerifyTypes = True,
        max_connections: int = 100,
        max_body_bytes: int = 4096,
        headers: Mapping[str, str] | None = None,
        on_exchange: ExchangeHook | None = None,
        read_env: bool = True,
    ) -> None:
        self._setup(
            project_uid=project_uid,
            region=region,
            auth=auth,
            organization_uid=organization_uid,
            edge_url=edge_url,
            management_url=management_url,
            cma_url=cma_url,
            timeout=timeout,
            retry=retry,
            management_rate_limit=management_rate_limit,
            max_body_bytes=max_body_bytes,
            verify=verify,
            headers=headers,
            on_exchange=on_exchange,
            read_env=read_env,
        )
        self._adopt(http_client, transport)
        self._http = http_client or httpx.AsyncClient(
            transport=transport, **self._http_options(max_connections)
        )
        self.users = AsyncUsers(self)
        self.attributes = AsyncAttributes(self)
        self.audiences = AsyncAudiences(self)
        self.events = AsyncEvents(self)
        self.projects = AsyncProjects(self)
        self.experiences = AsyncExperiences(self)

    @classmethod
    def from_settings(
        cls,
        settings: SenderSettings,
        *,
        transport: httpx.AsyncBaseTransport | None,
        max_connections: int,
    ) -> AsyncPersonalizeClient:
        """A client built by ``__init__`` from a client's :class:`SenderSettings` (see
        ``_async_twin``): the same resolved configuration, credentials and hooks (shared, so
        exchanges reach the original client's hooks, including hooks added later), with
        ``transport`` and connections of its own. The environment is not read again."""
        # Every ClientConfig field is the __init__ argument of the same name, already resolved.
        return cls(
            **attrs.asdict(settings.config, recurse=False),
            auth=settings.auth,
            on_exchange=settings.hooks,
            transport=transport,
            max_connections=max_connections,
            read_env=False,
        )

    async def aclose(self) -> None:
        """Close the connections this client opened (an injected ``http_client`` stays open)."""
        if not self._closed:
            self._closed = True
            if self._owns_http:
                await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _request(
        self,
        api: ClientApi,
        method: str,
        path: str,
        *,
        json: Any = NOT_GIVEN,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        project_scoped: bool = True,
        organization_scoped: bool = False,
    ) -> httpx.Response:
        """Send one API call with retries; return the 2xx response or raise a typed error."""
        if self._closed:
            raise ConfigurationError("this client is closed; create a new one")
        request = self._build_request(
            self._http,
            api,
            method,
            path,
            json=json,
            params=params,
            headers=headers,
            project_scoped=project_scoped,
            organization_scoped=organization_scoped,
        )
        return await self._send(api, request)

    async def _execute(self, call: Call, /) -> httpx.Response:
        """Run one resource call (the resources' ``AsyncRequester`` protocol)."""
        return await self._request(
            call.api,
            call.method,
            call.path,
            json=call.json,
            params=call.params,
            headers=call.headers,
            project_scoped=call.project_scoped,
            organization_scoped=call.organization_scoped,
        )

    async def _send_user_attributes(self, user_uid: str, body: bytes) -> None:
        """See :meth:`PersonalizeClient._send_user_attributes`."""
        request = self._user_attributes_request(self._http, user_uid, body)
        await (await self._send("edge", request)).aclose()

    async def _send(self, api: ClientApi, request: httpx.Request) -> httpx.Response:
        auth = self._auth_for(api)
        limiter = self._rate_limiter(api)

        async def send(number: int) -> Attempt:
            if limiter is not None:
                await limiter.aacquire()
            try:
                return self._outcome(await self._http.send(request, auth=auth))
            except httpx.HTTPError as exc:  # transport failures, bodies that cannot decode
                return Attempt(error=exc)

        async def discard(attempt: Attempt) -> None:
            await attempt.response.aclose()

        last, attempts = await asend_with_retries(
            self._config.retry, send, observe=self._observer(api, request), discard=discard
        )
        return self._raise_for(last, request, attempts)
