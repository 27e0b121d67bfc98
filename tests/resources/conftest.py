"""Fixtures for the resource tests: a client of each kind (sync and async) behind one
``api.run(lambda c: c.resource.call(...))`` so every test covers both, and a respx router."""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import respx

from contentstack_personalize import AsyncPersonalizeClient, PersonalizeClient, RetryPolicy
from contentstack_personalize.auth import AuthToken

EDGE = "https://personalize-edge.contentstack.com"
MGMT = "https://personalize-api.contentstack.com"
PROJECT = "65f0a1b2c3d4e5f6a7b8c9d0"
ORG = "org"
TOKEN = "t"


def make_client(kind: str, **kwargs: Any) -> PersonalizeClient | AsyncPersonalizeClient:
    kwargs.setdefault("auth", AuthToken(TOKEN))
    kwargs.setdefault("organization_uid", ORG)
    kwargs.setdefault("retry", RetryPolicy(sleep=False))
    kwargs.setdefault("management_rate_limit", None)
    kwargs.setdefault("read_env", False)
    project = kwargs.pop("project_uid", PROJECT)
    cls = PersonalizeClient if kind == "sync" else AsyncPersonalizeClient
    return cls(project, **kwargs)


class Api:
    """Runs the same call on a sync or an async client."""

    def __init__(self, client: PersonalizeClient | AsyncPersonalizeClient) -> None:
        self.client = client
        self.is_async = isinstance(client, AsyncPersonalizeClient)

    async def run(self, call: Callable[[Any], Any]) -> Any:
        result = call(self.client)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def close(self) -> None:
        if isinstance(self.client, AsyncPersonalizeClient):
            await self.client.aclose()
        else:
            self.client.close()


@pytest.fixture(params=["sync", "async"])
async def api(request: pytest.FixtureRequest) -> AsyncIterator[Api]:
    wrapper = Api(make_client(request.param))
    yield wrapper
    await wrapper.close()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


def assert_management_headers(request: httpx.Request, *, project: bool = True) -> None:
    headers = request.headers
    assert headers["authtoken"] == TOKEN
    assert headers["organization_uid"] == ORG
    if project:
        assert headers["x-project-uid"] == PROJECT
    else:
        assert "x-project-uid" not in headers
    assert headers["x-user-agent"].startswith("contentstack-personalize-python/")
    assert "x-cs-personalize-user-uid" not in headers


def assert_edge_headers(request: httpx.Request, *, user: str | None) -> None:
    headers = request.headers
    assert headers["x-project-uid"] == PROJECT
    assert "authtoken" not in headers
    assert "authorization" not in headers
    assert "organization_uid" not in headers
    if user is None:
        assert "x-cs-personalize-user-uid" not in headers
    else:
        assert headers["x-cs-personalize-user-uid"] == user
