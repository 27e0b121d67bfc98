"""pytest fixtures for users' tests, registered through the ``pytest11`` entry point.

- ``personalize_emulator``: a fresh ``PersonalizeEmulator`` per test.
- ``personalize_emulator_server``: that emulator served on 127.0.0.1 (a random port) for the
  test; use ``.edge_url``, ``.management_url``... on it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._emulator import PersonalizeEmulator
from ._server import EmulatorServer


@pytest.fixture
def personalize_emulator() -> PersonalizeEmulator:
    """A fresh in-memory Personalize (seed 0, default switches) for one test."""
    return PersonalizeEmulator()


@pytest.fixture
def personalize_emulator_server(
    personalize_emulator: PersonalizeEmulator,
) -> Iterator[EmulatorServer]:
    """``personalize_emulator`` served over HTTP on 127.0.0.1 for the duration of the test."""
    with personalize_emulator.serve() as server:
        yield server
