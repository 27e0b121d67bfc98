"""What a sync remembers, and where: per user the values the edge accepted (and the keys whose
value is unknown), failures, the run history, one lease per sync (and per partition), small
metadata, and the exchanges a debugger kept.

Three stores share one interface (:class:`StateStore`, plus :class:`ExchangeStore` for the
debugger): :class:`MemoryState` (this process only), :class:`SQLiteState` (a file, the default)
and :class:`~contentstack_personalize.state.postgres.PostgresState` (a database shared by
ephemeral workers; extra ``[postgres]``). ``state=`` of a sync takes a path, an ``sqlite:///`` or
``postgresql://`` URL, or a store; :func:`open_state` turns it into one. The engine, the debugger
and alerts all reach state through these types only. See docs/state.md.
"""

from __future__ import annotations

import os

from ..errors import ConfigurationError
from ._base import (
    CHANGE_LOG_MODES,
    DEFAULT_CHANGE_LIMIT,
    DEFAULT_EXCHANGE_LIMIT,
    ChangeEntry,
    ChangeLogMode,
    ChangeLogStore,
    ChangeOutcome,
    ExchangeStore,
    LockInfo,
    RunRecord,
    StateStore,
    UserState,
    exchange_columns,
    value_digest,
)
from ._memory import MemoryState
from ._sqlite import SQLiteState
from .postgres import PostgresState

__all__ = [
    "CHANGE_LOG_MODES",
    "DEFAULT_CHANGE_LIMIT",
    "DEFAULT_EXCHANGE_LIMIT",
    "ChangeEntry",
    "ChangeLogMode",
    "ChangeLogStore",
    "ChangeOutcome",
    "ExchangeStore",
    "LockInfo",
    "MemoryState",
    "PostgresState",
    "RunRecord",
    "SQLiteState",
    "StateStore",
    "UserState",
    "exchange_columns",
    "open_state",
    "value_digest",
]


def open_state(state: StateStore | str | os.PathLike[str] | None) -> tuple[StateStore, bool]:
    """Turn the ``state=`` argument into a store; the flag says whether we own (and close) it.

    ``None`` and ``":memory:"`` give a :class:`MemoryState`; a path or an ``sqlite:///path`` URL
    an :class:`SQLiteState`; a ``postgresql://`` (or ``postgres://``) URL a
    :class:`~contentstack_personalize.state.postgres.PostgresState` (``?schema=`` names its
    schema; needs the ``[postgres]`` extra); an empty text is refused (it would silently be a
    throwaway store).
    """
    if state is None:
        return MemoryState(), True
    if isinstance(state, (str, os.PathLike)):
        text = os.fsdecode(os.fspath(state))
        if isinstance(state, str) and text.lower().startswith(("postgresql://", "postgres://")):
            return PostgresState(text), True
        if text.startswith("sqlite://"):
            text = text[len("sqlite://") :]
            text = text[1:] if text.startswith("/") else text  # sqlite:///rel, sqlite:////abs
        if not text.strip():
            raise ConfigurationError(
                "state is empty text; pass a file path (state='personalize_state.db'), "
                "or state=None for a store that lives only in this process"
            )
        if text == ":memory:":
            return MemoryState(), True
        return SQLiteState(text), True
    given: object = state  # callers may pass anything at run time
    if isinstance(given, StateStore):
        return given, False
    missing = [
        name
        for name in ("load", "mark_pending", "commit", "acquire_lock", "renew_lock", "release_lock")
        if not callable(getattr(given, name, None))
    ]
    hint = f" (it lacks {', '.join(missing)}: see the StateStore protocol)" if missing else ""
    raise ConfigurationError(
        "state must be a file path, a postgresql:// URL, MemoryState(), SQLiteState(...) or "
        f"another StateStore, not {type(state).__name__}{hint}"
    )
