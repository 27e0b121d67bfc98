"""Client configuration: arguments, environment variables and region defaults resolved once into
one frozen value that the sync and async clients (and the sync engine's senders) share."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import Any

import attrs
import httpx

from ._http import DEFAULT_RETRY, USER_AGENT, RetryPolicy, header_problem, user_uid_problem
from .errors import ConfigurationError
from .regions import Region

__all__ = ["ClientConfig", "resolve_config"]


ENV_PROJECT_UID = "CONTENTSTACK_PERSONALIZE_PROJECT_UID"
ENV_REGION = "CONTENTSTACK_REGION"
ENV_ORGANIZATION_UID = "CONTENTSTACK_ORGANIZATION_UID"
ENV_EDGE_URL = "CONTENTSTACK_PERSONALIZE_EDGE_URL"
ENV_MANAGEMENT_URL = "CONTENTSTACK_PERSONALIZE_MANAGEMENT_URL"
ENV_CMA_URL = "CONTENTSTACK_CMA_URL"

VerifyTypes = bool | str | ssl.SSLContext


@attrs.frozen(kw_only=True)
class ClientConfig:
    """Everything a client needs to build and send requests, resolved and validated."""

    project_uid: str | None
    region: Region
    edge_url: str
    management_url: str
    cma_url: str
    organization_uid: str | None
    timeout: httpx.Timeout
    retry: RetryPolicy
    management_rate_limit: float | None
    max_body_bytes: int
    verify: VerifyTypes = attrs.field(repr=False)
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)

    def base_url(self, api: str) -> str:
        """The base URL of ``api`` (``"edge"``, ``"management"`` or ``"cma"``)."""
        if api == "edge":
            return self.edge_url
        if api == "management":
            return self.management_url
        if api == "cma":
            return self.cma_url
        raise ConfigurationError(f"unknown API {api!r}")

    def require_project(self) -> str:
        """The project UID, or a clear error when the client has none."""
        if not self.project_uid:
            raise ConfigurationError(
                "this call needs a project: pass project_uid=... to the client or set "
                f"{ENV_PROJECT_UID}"
            )
        return self.project_uid

    def base_headers(self) -> dict[str, str]:
        """Headers sent on every request."""
        headers = {
            "User-Agent": USER_AGENT,
            "X-User-Agent": USER_AGENT,
            "Accept": "application/json, text/plain;q=0.9, */*;q=0.1",
        }
        for name, value in self.headers.items():
            # A configured header replaces a default of the same name, whatever its casing
            # (never two User-Agent lines).
            for default in [k for k in headers if k.lower() == name.lower()]:
                del headers[default]
            headers[name] = value
        return headers


def _clean_url(name: str, value: str) -> str:
    url = value.strip().rstrip("/")
    try:
        parsed = httpx.URL(url)
    except Exception as exc:  # httpx raises InvalidURL and a few others
        raise ConfigurationError(f"{name} is not a valid URL: {value!r}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(f"{name} must be an absolute http(s) URL, got {value!r}")
    return url


def _timeout(value: float | httpx.Timeout | None) -> httpx.Timeout:
    if isinstance(value, httpx.Timeout):
        return value
    if value is None:
        raise ConfigurationError(
            "timeout=None would let a request hang forever; pass a number of seconds"
        )
    if value <= 0:
        raise ConfigurationError("timeout must be a positive number of seconds")
    return httpx.Timeout(float(value), connect=min(float(value), 10.0))


def resolve_config(
    *,
    project_uid: str | None,
    region: Region | str | None,
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
    environ: Mapping[str, str] | None,
) -> ClientConfig:
    """Merge arguments with environment variables (arguments win) and region defaults."""
    env: Mapping[str, Any] = environ if environ is not None else {}
    project_uid = project_uid if project_uid is not None else env.get(ENV_PROJECT_UID)
    if project_uid is not None:
        project_uid = str(project_uid).strip()
        problem = user_uid_problem(project_uid)
        if problem is not None:
            raise ConfigurationError(
                f"project_uid is not usable as a header value ({problem.replace('user UID', 'it')})"
            )
    reg = Region.parse(region if region is not None else env.get(ENV_REGION))
    organization_uid = organization_uid or env.get(ENV_ORGANIZATION_UID) or None
    if verify is False:
        pass  # explicit, documented opt-out; kept as given
    if management_rate_limit is not None and management_rate_limit <= 0:
        raise ConfigurationError("management_rate_limit must be positive, or None to disable it")
    if max_body_bytes < 0:
        raise ConfigurationError("max_body_bytes must not be negative")
    for name, value in (headers or {}).items():
        problem = header_problem(name, value)
        if problem is not None:
            raise ConfigurationError(f"{problem}; fix headers= (nothing was sent)")
    return ClientConfig(
        project_uid=project_uid or None,
        region=reg,
        edge_url=_clean_url("edge_url", edge_url or env.get(ENV_EDGE_URL) or reg.edge_url),
        management_url=_clean_url(
            "management_url", management_url or env.get(ENV_MANAGEMENT_URL) or reg.management_url
        ),
        cma_url=_clean_url("cma_url", cma_url or env.get(ENV_CMA_URL) or reg.cma_url),
        organization_uid=organization_uid,
        timeout=_timeout(timeout),
        retry=retry if retry is not None else DEFAULT_RETRY,
        management_rate_limit=management_rate_limit,
        max_body_bytes=max_body_bytes,
        verify=verify,
        headers=dict(headers or {}),
    )


def process_environ() -> Mapping[str, str]:
    """The process environment (a seam for tests)."""
    return os.environ
