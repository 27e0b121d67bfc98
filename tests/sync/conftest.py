"""Fixtures for the sync engine tests: an emulator and clients wired to it in process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from contentstack_personalize import (
    AsyncPersonalizeClient,
    AuthToken,
    PersonalizeClient,
    RetryPolicy,
)
from contentstack_personalize.testing import PersonalizeEmulator

FAST_RETRY = RetryPolicy(sleep=False, max_attempts=4)


@pytest.fixture
def emulator() -> PersonalizeEmulator:
    return PersonalizeEmulator(seed=1, management_rate_limit=None)


def make_client(emulator: PersonalizeEmulator, **kwargs: Any) -> PersonalizeClient:
    kwargs.setdefault("retry", FAST_RETRY)
    kwargs.setdefault("management_rate_limit", None)
    return PersonalizeClient(
        emulator.project_uid, transport=emulator.transport(), read_env=False, **kwargs
    )


def make_async_client(emulator: PersonalizeEmulator, **kwargs: Any) -> AsyncPersonalizeClient:
    kwargs.setdefault("retry", FAST_RETRY)
    kwargs.setdefault("management_rate_limit", None)
    return AsyncPersonalizeClient(
        emulator.project_uid, transport=emulator.async_transport(), read_env=False, **kwargs
    )


@pytest.fixture
def client(emulator: PersonalizeEmulator) -> Iterator[PersonalizeClient]:
    with make_client(emulator) as c:
        yield c


@pytest.fixture
def admin_client(emulator: PersonalizeEmulator) -> Iterator[PersonalizeClient]:
    """A client with Management credentials (pre-flight attribute checks run)."""
    with make_client(emulator, auth=AuthToken(emulator.authtoken)) as c:
        yield c


def patches(emulator: PersonalizeEmulator) -> list[tuple[str, dict[str, Any]]]:
    """The (user uid, JSON body) of every PATCH /user-attributes the emulator received."""
    out = []
    for r in emulator.requests:
        if r.method == "PATCH" and r.path == "/user-attributes":
            out.append((r.user_uid, json.loads(r.body)))
    return out


def people(n: int, start: int = 1) -> list[dict[str, Any]]:
    return [
        {"user_id": i, "plan": "gold" if i % 2 else "silver", "ltv": i * 10}
        for i in range(start, start + n)
    ]
