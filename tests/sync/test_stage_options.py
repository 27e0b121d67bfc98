"""A sync's options: validated when the Sync is made and on every later assignment, with the
same messages; ``sync.<option>`` reads and writes ``sync.options``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from contentstack_personalize import PersonalizeClient
from contentstack_personalize.debugger import Debugger
from contentstack_personalize.errors import ConfigurationError
from contentstack_personalize.sync import Sync
from contentstack_personalize.sync._options import OPTION_NAMES, SyncOptions

BAD = [
    ("match_on", "", "match_on must name the column"),
    ("on_duplicate", "keep", "on_duplicate must be 'reject_all', 'first' or 'last'"),
    ("concurrency", 0, "concurrency must be a positive integer"),
    ("concurrency", 2.5, "concurrency must be a positive integer"),
    ("requests_per_second", 0, r"requests_per_second must be positive \(or None\)"),
    ("max_rejection_ratio", 1.5, r"max_rejection_ratio must be in \(0, 1\]"),
    ("min_sample", 0, "min_sample must be positive"),
    ("commit_every", 0, "commit_every must be positive"),
    ("commit_interval", 0, "commit_interval must be a positive number of seconds"),
    ("chunk_size", -1, "chunk_size must be positive"),
    ("max_issue_details", -1, "max_issue_details must be an integer >= 0"),
    ("type_check", "strict", "type_check must be 'warn', 'coerce', 'reject' or 'off'"),
    ("debugger", "yes", r"debugger must be None, True, False or a Debugger\(\.\.\.\)"),
    ("lock_timeout", -1, "lock_timeout must be a number of seconds >= 0"),
    ("lock_timeout", "soon", "lock_timeout must be a number of seconds >= 0"),
    ("stop_grace", float("nan"), "stop_grace must be a number of seconds >= 0"),
    ("spool_dir", "/no/such/dir", "is not a directory"),
    ("change_log", "all", "change_log must be 'values', 'digests' or 'off'"),
    ("change_log_days", 0, "change_log_days must be a positive number of days"),
]


@pytest.fixture
def client() -> Any:
    with PersonalizeClient("p1", read_env=False) as c:
        yield c


def new_sync(client: Any, **kwargs: Any) -> Sync:
    kwargs.setdefault("match_on", "user_id")
    return Sync(client, mapping={"plan": "plan"}, **kwargs)


@pytest.mark.parametrize(("name", "value", "message"), BAD)
def test_a_bad_option_is_refused_when_made(
    client: Any, name: str, value: Any, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        new_sync(client, **{name: value})


@pytest.mark.parametrize(("name", "value", "message"), BAD)
def test_a_bad_option_is_refused_when_assigned(
    client: Any, name: str, value: Any, message: str
) -> None:
    sync = new_sync(client)
    before = getattr(sync, name)
    with pytest.raises(ConfigurationError, match=message):
        setattr(sync, name, value)
    assert getattr(sync, name) == before


def test_options_read_and_write_through(client: Any, tmp_path: Path) -> None:
    debugger = Debugger()
    sync = new_sync(client, concurrency=8, lock_timeout=3, debugger=debugger, spool_dir=tmp_path)
    assert (sync.concurrency, sync.options.concurrency) == (8, 8)
    assert sync.lock_timeout == 3.0 and isinstance(sync.lock_timeout, float)
    assert sync.spool_dir == str(tmp_path)
    assert sync.debugger is debugger
    sync.concurrency = 4
    sync.stop_grace = 1
    sync.change_log = "digests"
    assert (sync.options.concurrency, sync.options.stop_grace) == (4, 1.0)
    assert sync.options.change_log == "digests"


def test_defaults(client: Any) -> None:
    sync = new_sync(client)
    assert sync.options == SyncOptions(match_on="user_id")
    assert (sync.concurrency, sync.on_duplicate, sync.type_check) == (32, "reject_all", "warn")
    assert (sync.change_log, sync.change_log_days) == ("values", 30.0)


def test_every_option_is_an_attribute_of_sync(client: Any) -> None:
    sync = new_sync(client)
    names = {a.name for a in attrs.fields(SyncOptions)}
    assert set(OPTION_NAMES) == names
    for name in names:
        assert getattr(sync, name) == getattr(sync.options, name)


def test_state_accepts_a_path(client: Any, tmp_path: Path) -> None:
    with new_sync(client, state=tmp_path / "state.db") as sync:
        assert "SQLiteState" in repr(sync.state)
