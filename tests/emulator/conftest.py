"""Shared fixtures for the emulator's own tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from contentstack_personalize.testing import PersonalizeEmulator

# The public fixtures, imported so they work whether or not the plugin is installed.
from contentstack_personalize.testing._pytest_plugin import (  # noqa: F401
    personalize_emulator,
    personalize_emulator_server,
)

EDGE = "https://personalize-edge.contentstack.com"
MANAGEMENT = "https://personalize-api.contentstack.com"
CMA = "https://api.contentstack.io"
DEVHUB = "https://developerhub-api.contentstack.com"


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def emulator() -> PersonalizeEmulator:
    """A fresh emulator (the same as the public ``personalize_emulator`` fixture)."""
    return PersonalizeEmulator()


@pytest.fixture
def edge(emulator: PersonalizeEmulator) -> Iterator[httpx.Client]:
    """A client for the Edge API, with the project header set."""
    with httpx.Client(
        transport=emulator.transport(),
        base_url=EDGE,
        headers={"x-project-uid": emulator.project_uid},
    ) as client:
        yield client


@pytest.fixture
def mgmt(emulator: PersonalizeEmulator) -> Iterator[httpx.Client]:
    """A client for the Management API, authenticated, with the project header set."""
    with httpx.Client(
        transport=emulator.transport(),
        base_url=MANAGEMENT,
        headers={"x-project-uid": emulator.project_uid, "authtoken": emulator.authtoken},
    ) as client:
        yield client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def clocked(clock: FakeClock) -> PersonalizeEmulator:
    """An emulator on a hand-moved clock (rate limit and token expiry)."""
    return PersonalizeEmulator(clock=clock)
