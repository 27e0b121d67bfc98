"""The client shells: headers, retries, rate limiting, error mapping, hooks, lifecycle."""

from __future__ import annotations

import json
import logging
from collections.abc import Generator
from typing import Any

import httpx
import pytest
import respx

from contentstack_personalize import (
    APIConnectionError,
    APITimeoutError,
    AsyncPersonalizeClient,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    Exchange,
    NotFoundError,
    PersonalizeClient,
    RetryPolicy,
    ServerError,
    ValidationError,
    __version__,
)

EDGE = "https://personalize-edge.contentstack.com"
MGMT = "https://personalize-api.contentstack.com"
PROJECT = "65f0a1b2c3d4e5f6a7b8c9d0"
NO_SLEEP = RetryPolicy(sleep=False, max_attempts=4)


class HeaderAuth(httpx.Auth):
    """A stand-in credential (the real ones are tested in test_auth.py)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["authtoken"] = self.secret
        yield request

    def __repr__(self) -> str:
        return "HeaderAuth(***)"


def make_client(**kwargs: Any) -> PersonalizeClient:
    kwargs.setdefault("retry", NO_SLEEP)
    kwargs.setdefault("read_env", False)
    kwargs.setdefault("management_rate_limit", None)
    return PersonalizeClient(PROJECT, **kwargs)


def make_async_client(**kwargs: Any) -> AsyncPersonalizeClient:
    kwargs.setdefault("retry", NO_SLEEP)
    kwargs.setdefault("read_env", False)
    kwargs.setdefault("management_rate_limit", None)
    return AsyncPersonalizeClient(PROJECT, **kwargs)


@respx.mock
def test_edge_request_headers_and_body() -> None:
    route = respx.patch(f"{EDGE}/user-attributes").respond(
        200, text="User Attributes added successfully"
    )
    with make_client() as client:
        response = client._request(
            "edge",
            "PATCH",
            "/user-attributes",
            json={"plan": "gold"},
            headers={"x-cs-personalize-user-uid": "u1"},
        )
    assert response.text == "User Attributes added successfully"
    request = route.calls.last.request
    assert request.headers["x-project-uid"] == PROJECT
    assert request.headers["x-cs-personalize-user-uid"] == "u1"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-user-agent"] == f"contentstack-personalize-python/{__version__}"
    assert request.headers["user-agent"].startswith("contentstack-personalize-python/")
    assert "authtoken" not in request.headers and "authorization" not in request.headers
    assert json.loads(request.content) == {"plan": "gold"}


@respx.mock
def test_get_has_no_content_type_and_management_sends_auth() -> None:
    route = respx.get(f"{MGMT}/attributes").respond(200, json=[])
    with make_client(auth=HeaderAuth("tok-1"), organization_uid="org-1") as client:
        client._request("management", "GET", "/attributes")
    request = route.calls.last.request
    assert "content-type" not in request.headers
    assert request.headers["authtoken"] == "tok-1"
    assert request.headers["organization_uid"] == "org-1"


def test_management_without_auth_is_a_configuration_error() -> None:
    with make_client() as client, pytest.raises(ConfigurationError, match="AuthToken"):
        client._request("management", "GET", "/attributes")


def test_project_calls_need_a_project() -> None:
    client = PersonalizeClient(read_env=False)
    with pytest.raises(ConfigurationError, match="project_uid"):
        client._request("edge", "GET", "/manifest")


def test_organization_scoped_calls_need_an_organization() -> None:
    with (
        make_client(auth=HeaderAuth("t")) as client,
        pytest.raises(ConfigurationError, match="organization"),
    ):
        client._request(
            "management", "GET", "/projects", project_scoped=False, organization_scoped=True
        )


@respx.mock
def test_retries_then_succeeds_and_hooks_see_every_attempt() -> None:
    route = respx.patch(f"{EDGE}/user-attributes")
    route.side_effect = [
        httpx.Response(503, text="busy"),
        httpx.Response(429, headers={"Retry-After": "2"}, json={"message": "slow down"}),
        httpx.ConnectError("refused"),
        httpx.Response(200, text="ok"),
    ]
    seen: list[Exchange] = []
    with make_client(on_exchange=seen.append) as client:
        response = client._request(
            "edge",
            "PATCH",
            "/user-attributes",
            json={"a": 1},
            headers={"x-cs-personalize-user-uid": "u1"},
        )
    assert response.status_code == 200
    assert route.call_count == 4
    assert [e.attempt for e in seen] == [1, 2, 3, 4]
    assert [e.status for e in seen] == [503, 429, None, 200]
    assert [e.will_retry for e in seen] == [True, True, True, False]
    assert seen[2].error is not None and "ConnectError" in seen[2].error
    assert all(e.user_uid == "u1" for e in seen)
    assert seen[0].request_body == '{"a":1}'


@respx.mock
def test_gives_up_after_max_attempts_with_attempt_count() -> None:
    route = respx.get(f"{EDGE}/manifest").respond(502, text="bad gateway")
    with make_client() as client, pytest.raises(ServerError) as info:
        client._request("edge", "GET", "/manifest")
    assert route.call_count == 4
    assert info.value.attempts == 4 and info.value.status_code == 502


@respx.mock
@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_never_retries_other_4xx(status: int) -> None:
    route = respx.get(f"{EDGE}/manifest").respond(status, json={"error": "E", "message": "m"})
    with make_client() as client, pytest.raises(Exception) as info:
        client._request("edge", "GET", "/manifest")
    assert route.call_count == 1
    assert getattr(info.value, "status_code", None) == status


@respx.mock
def test_unknown_project_maps_to_not_found() -> None:
    respx.get(f"{EDGE}/manifest").respond(
        404,
        json={"error": "personalize.MANIFEST.PROJECT_NOT_FOUND", "message": "Project not found"},
    )
    with make_client() as client, pytest.raises(NotFoundError) as info:
        client._request("edge", "GET", "/manifest")
    assert info.value.code == "personalize.MANIFEST.PROJECT_NOT_FOUND"


@respx.mock
def test_timeouts_become_api_timeout_error() -> None:
    route = respx.get(f"{EDGE}/manifest").mock(side_effect=httpx.ReadTimeout("slow"))
    with make_client() as client, pytest.raises(APITimeoutError) as info:
        client._request("edge", "GET", "/manifest")
    assert route.call_count == 4 and info.value.attempts == 4
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert "after 4 attempts" in str(info.value)


@respx.mock
def test_dropped_connection_becomes_connection_error() -> None:
    respx.get(f"{EDGE}/manifest").mock(side_effect=httpx.RemoteProtocolError("peer closed"))
    with make_client(retry=RetryPolicy.disabled()) as client, pytest.raises(APIConnectionError):
        client._request("edge", "GET", "/manifest")


def test_invalid_json_body_sends_nothing() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.patch(f"{EDGE}/user-attributes").respond(200)
        with make_client() as client, pytest.raises(ValidationError, match="ltv"):
            client._request("edge", "PATCH", "/user-attributes", json={"ltv": float("nan")})
        assert route.call_count == 0


@respx.mock
def test_secrets_absent_from_exchanges_errors_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    marker = "SECRET-MARKER-7f3a"
    respx.get(f"{MGMT}/attributes").respond(
        401, json={"error": "UNAUTHORIZED", "message": "bad token"}
    )
    seen: list[Exchange] = []
    caplog.set_level(logging.DEBUG, logger="contentstack_personalize")
    with make_client(auth=HeaderAuth(marker), on_exchange=seen.append) as client:
        with pytest.raises(AuthenticationError) as info:
            client._request("management", "GET", "/attributes")
        assert marker not in repr(client)
    assert seen and seen[0].request_headers["authtoken"] == "[REDACTED]"
    produced = [repr(e.to_dict()) for e in seen] + [str(info.value), repr(info.value), caplog.text]
    assert not [p for p in produced if marker in p]


@respx.mock
def test_failing_hook_does_not_break_the_request(caplog: pytest.LogCaptureFixture) -> None:
    respx.get(f"{EDGE}/manifest").respond(200, json={"experiences": []})

    def broken(_: Exchange) -> None:
        raise RuntimeError("observer bug")

    with make_client(on_exchange=broken) as client:
        assert client._request("edge", "GET", "/manifest").json() == {"experiences": []}
    assert "observer bug" in caplog.text


@respx.mock
def test_response_body_truncated_in_exchange() -> None:
    respx.get(f"{EDGE}/manifest").respond(200, text="x" * 100)
    seen: list[Exchange] = []
    with make_client(on_exchange=seen.append, max_body_bytes=10) as client:
        client._request("edge", "GET", "/manifest")
    assert seen[0].response_body == "x" * 10 + "... [90 more bytes]"


def test_urls_can_be_overridden_and_are_validated() -> None:
    client = make_client(edge_url="http://127.0.0.1:9999/edge/", region="eu")
    assert client.config.edge_url == "http://127.0.0.1:9999/edge"
    assert client.config.management_url == "https://eu-personalize-api.contentstack.com"
    with pytest.raises(ConfigurationError, match="edge_url"):
        make_client(edge_url="not a url")


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTENTSTACK_PERSONALIZE_PROJECT_UID", "proj-env")
    monkeypatch.setenv("CONTENTSTACK_REGION", "azure-eu")
    monkeypatch.setenv("CONTENTSTACK_PERSONALIZE_EDGE_URL", "http://localhost:1/edge")
    monkeypatch.delenv("CONTENTSTACK_AUTHTOKEN", raising=False)
    monkeypatch.delenv("CONTENTSTACK_OAUTH_ACCESS_TOKEN", raising=False)
    monkeypatch.delenv("CONTENTSTACK_MANAGEMENT_TOKEN", raising=False)
    client = PersonalizeClient()
    assert client.project_uid == "proj-env"
    assert client.config.edge_url == "http://localhost:1/edge"
    assert client.config.management_url == "https://azure-eu-personalize-api.contentstack.com"
    # explicit arguments win over the environment
    assert PersonalizeClient("proj-arg").project_uid == "proj-arg"


@pytest.mark.parametrize("bad", ["", "a\nb"])
def test_bad_project_uid(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        PersonalizeClient(bad or " ", read_env=False)


def test_timeout_none_refused() -> None:
    with pytest.raises(ConfigurationError, match="hang"):
        make_client(timeout=None)


def test_closed_client_refuses_requests() -> None:
    client = make_client()
    client.close()
    client.close()  # idempotent
    with pytest.raises(ConfigurationError, match="closed"):
        client._request("edge", "GET", "/manifest")


def test_injected_http_client_is_not_closed() -> None:
    http = httpx.Client()
    with make_client(http_client=http):
        pass
    assert not http.is_closed
    http.close()
    with pytest.raises(ConfigurationError, match="not both"):
        make_client(
            http_client=httpx.Client(), transport=httpx.MockTransport(lambda r: httpx.Response(200))
        )


def test_tls_verification_is_on_by_default() -> None:
    assert make_client().config.verify is True
    assert make_client(verify=False).config.verify is False


@respx.mock
def test_management_rate_limit_spaces_requests() -> None:
    respx.get(f"{MGMT}/attributes").respond(200, json=[])
    import time

    with make_client(
        auth=HeaderAuth("t"), organization_uid="org-rate-test", management_rate_limit=20.0
    ) as client:
        start = time.monotonic()
        for _ in range(25):
            client._request("management", "GET", "/attributes")
        elapsed = time.monotonic() - start
    # 20 per second: the 21st request waits for the window to move.
    assert elapsed >= 1.0


class TestAsync:
    @respx.mock
    async def test_retry_and_error_mapping(self) -> None:
        route = respx.patch(f"{EDGE}/user-attributes")
        route.side_effect = [
            httpx.Response(500),
            httpx.ReadTimeout("t"),
            httpx.Response(200, text="ok"),
        ]
        seen: list[Exchange] = []
        async with make_async_client(on_exchange=seen.append) as client:
            response = await client._request("edge", "PATCH", "/user-attributes", json={"a": 1})
        assert response.text == "ok" and route.call_count == 3
        assert [e.status for e in seen] == [500, None, 200]

    @respx.mock
    async def test_bad_request_not_retried(self) -> None:
        route = respx.post(f"{MGMT}/attributes").respond(400, json={"errors": {"key": ["invalid"]}})
        async with make_async_client(auth=HeaderAuth("t")) as client:
            with pytest.raises(BadRequestError) as info:
                await client._request("management", "POST", "/attributes", json={"key": "a b"})
        assert route.call_count == 1 and info.value.field_errors == {"key": ["invalid"]}

    async def test_closed(self) -> None:
        client = make_async_client()
        await client.aclose()
        with pytest.raises(ConfigurationError):
            await client._request("edge", "GET", "/manifest")


def test_repr_shows_the_urls_in_use() -> None:
    from contentstack_personalize import PersonalizeClient as Client

    default = Client("p" * 24, read_env=False)
    assert "region='aws-na'" in repr(default)
    assert "edge_url='https://personalize-edge.contentstack.com'" in repr(default)
    default.close()
    custom = Client("p" * 24, edge_url="http://user:s3cret-pw@127.0.0.1:8080/edge", read_env=False)
    shown = repr(custom)
    assert "region=" not in shown  # the region's URLs are not the ones in use
    assert "edge_url='http://[REDACTED]@127.0.0.1:8080/edge'" in shown
    assert "management_url='https://personalize-api.contentstack.com'" in shown
    assert "s3cret" not in shown
    custom.close()
