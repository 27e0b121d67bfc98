"""What a sync remembers, as types: per user the values the edge *accepted* and the keys whose
value on the edge is *unknown* (:class:`UserState`), the run history (:class:`RunRecord`), leases
(:class:`LockInfo`), and the interfaces every store implements (:class:`StateStore`,
:class:`ExchangeStore`). The protocol a run follows with a store (write-ahead of pending keys,
acknowledgements, the lock) is described in docs/guarantees.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import attrs

from .._values import canonical
from ..errors import ConfigurationError

logger = logging.getLogger("contentstack_personalize.sync")


#: Most exchanges ``exchanges()`` returns unless told otherwise.
DEFAULT_EXCHANGE_LIMIT = 1000
#: Most change-log entries ``changes()`` returns unless told otherwise.
DEFAULT_CHANGE_LIMIT = 1000

#: What a run did with one user: sent and acknowledged for the first time (``added``), sent and
#: acknowledged again (``changed``), or refused by the API / failed after retries (``rejected``).
ChangeOutcome = Literal["added", "changed", "rejected"]
#: What a change log keeps of values: the canonical JSON itself, a digest of it, or nothing.
ChangeLogMode = Literal["values", "digests", "off"]
CHANGE_LOG_MODES: tuple[str, ...] = ("values", "digests", "off")


def value_digest(canonical: str | None) -> str | None:
    """A short stable digest of a value's canonical JSON (``None`` stays ``None``): equal values
    give equal digests, so a change is visible without the value itself being kept."""
    if canonical is None:
        return None
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _known_values(values: Mapping[str, str | None]) -> Mapping[str, str | None]:
    """``old`` keeps the keys whose value was known (``None``, unknown, is left out)."""
    if all(v is not None for v in values.values()):
        return values
    return {k: v for k, v in values.items() if v is not None}


@attrs.frozen
class ChangeEntry:
    """One user in one run's change log (the ``changes`` table of SQL stores).

    ``new`` maps each key sent to the canonical JSON sent; ``old`` maps those of the same keys
    whose value the state knew before the run to that canonical JSON (a key absent from ``old``
    was new, or its edge value unknown). In ``digests`` mode both hold the JSON text of
    :func:`value_digest` of the values.
    ``status``/``error`` are the API's answer for a rejected user. ``run_id`` and ``time`` are
    filled when read back from a store.

    Example::

        for entry in store.changes("users", uid="user-42"):
            print(entry.run_id, entry.outcome, entry.keys, entry.old, entry.new, entry.error)
    """

    uid: str
    outcome: ChangeOutcome = attrs.field(
        validator=attrs.validators.in_(("added", "changed", "rejected"))
    )
    new: Mapping[str, str | None]
    old: Mapping[str, str | None] = attrs.field(factory=dict, converter=_known_values)
    status: int | None = None
    error: str | None = None
    run_id: str | None = None
    time: float | None = None

    @property
    def keys(self) -> list[str]:
        """The attribute keys sent, sorted."""
        return sorted(self.new)

    def digested(self) -> ChangeEntry:
        """The same entry with every value replaced by (the JSON text of) its
        :func:`value_digest`; ``None`` stays ``None``."""
        return attrs.evolve(
            self,
            new={key: _digest_text(value) for key, value in self.new.items()},
            old={key: _digest_text(value) for key, value in self.old.items()},
        )

    def columns(self) -> tuple[str, str, str, str, str, int | None, str | None]:
        """``(uid, outcome, keys, new_values, old_values, status, error)`` as SQL stores keep
        them: ``keys`` a JSON list, the values JSON objects holding the values themselves (so
        ``new_values->>'plan'`` reads in SQL; ``old_values`` only the keys whose value was
        known), built from the canonical texts without parsing them: this runs once per user
        sent, on the commit thread."""
        keys = sorted(self.new)
        names = _json_names(keys)
        new = self.new
        pairs = zip(names, keys, strict=True)
        known = sorted((k, v) for k, v in self.old.items() if v is not None)
        old_names = _json_names([k for k, _ in known])
        return (
            self.uid,
            self.outcome,
            "[" + ",".join(names) + "]",
            "{" + ",".join([f"{n}:{_text(new[k])}" for n, k in pairs]) + "}",
            "{" + ",".join([f"{n}:{v}" for n, (_, v) in zip(old_names, known, strict=True)]) + "}",
            self.status,
            self.error,
        )

    @classmethod
    def from_columns(cls, row: Sequence[Any]) -> ChangeEntry:
        """Back from a ``changes`` row: run_id, time, uid, outcome, new_values, old_values,
        status, error (every SQL store keeps this layout; JSON columns as text or decoded)."""
        run_id, when, uid, outcome, new, old, status, error = row[:8]
        return cls(
            uid=uid,
            outcome=outcome,
            new=_canonical_values(new, null="null"),
            old=_canonical_values(old, null="null"),
            status=status,
            error=error,
            run_id=run_id,
            time=when,
        )


def _digest_text(canonical: str | None) -> str | None:
    digest = value_digest(canonical)
    return None if digest is None else json.dumps(digest)


#: Attribute keys as the engine sends them need no JSON escaping (docs/sync.md, keys).
_PLAIN_KEYS = re.compile(r"[A-Za-z0-9_]*")


def _json_names(keys: Sequence[str]) -> list[str]:
    """The keys as JSON strings: quoted as they are when they are plain (one regex for all)."""
    if _PLAIN_KEYS.fullmatch("".join(keys)):
        return ['"' + key + '"' for key in keys]
    return [json.dumps(key, ensure_ascii=False) for key in keys]


def _text(canonical: str | None) -> str:
    return "null" if canonical is None else canonical


def _canonical_values(column: Any, null: str | None) -> dict[str, str | None]:
    # A JSON null read back is a null sent (in ``new``) or accepted (in ``old``).
    data = json.loads(column) if isinstance(column, (str, bytes)) else column
    return {str(key): null if value is None else canonical(value) for key, value in data.items()}


@attrs.frozen
class UserState:
    """What the store knows of one user for one sync.

    ``attrs`` maps attribute key -> canonical JSON of the last value the edge accepted, or
    ``None`` when the edge's value is unknown: the key was sent and no acknowledgement was
    recorded (a lost answer, a 5xx, a kill). Unknown keys are sent again on the next run
    whatever the source says.

    Example::

        state = SQLiteState("users.db").load(sync.name, ["user-42"]).get("user-42")
        if state is not None and state.failed_attempts:
            print(state.failed_attempts, state.last_error)
    """

    attrs: dict[str, str | None]
    failed_attempts: int = 0
    last_error: str | None = None

    @property
    def unknown_keys(self) -> list[str]:
        """Keys whose value on the edge is unknown (pending or left by an unanswered send)."""
        return [key for key, value in self.attrs.items() if value is None]

    @property
    def accepted(self) -> dict[str, str]:
        """The keys the edge acknowledged, with their canonical JSON."""
        return {key: value for key, value in self.attrs.items() if value is not None}


@attrs.frozen(kw_only=True)
class LockInfo:
    """Who holds a sync's lock: the ``holder`` text its run gave (JSON with ``host``, ``pid``,
    ``run_id``), since when and until when (Unix times) unless renewed."""

    name: str
    holder: str
    acquired_at: float
    expires_at: float

    def describe(self) -> dict[str, Any]:
        """The holder's fields plus ``since`` and ``expires`` (Unix times)."""
        try:
            data = json.loads(self.holder)
        except ValueError:
            data = {"holder": self.holder}
        if not isinstance(data, dict):
            data = {"holder": self.holder}
        return {**data, "since": self.acquired_at, "expires": self.expires_at}


@attrs.frozen(kw_only=True)
class RunRecord:
    """One run in the history (see ``Sync.history()``).

    ``status`` is ``"running"`` while a run goes (and stays so if the process died), else the
    run's final status; ``counts`` holds the result's counts plus ``requests``.

    Example::

        for run in sync.history(limit=10):
            print(run.run_id, run.status, run.duration, run.counts.get("rejected"), run.error)
    """

    run_id: str
    sync_name: str
    started_at: float
    finished_at: float | None
    status: str
    counts: dict[str, int]
    error: str | None = None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> RunRecord:
        """From a ``runs`` table row: run_id, sync_name, started_at, finished_at, status,
        counts (JSON text), error (every SQL store keeps this layout)."""
        return cls(
            run_id=row[0],
            sync_name=row[1],
            started_at=row[2],
            finished_at=row[3],
            status=row[4],
            counts=json.loads(row[5]),
            error=row[6],
        )

    @property
    def duration(self) -> float | None:
        """Seconds the run took, or ``None`` when it has not finished (or never did)."""
        return None if self.finished_at is None else self.finished_at - self.started_at


@runtime_checkable
class StateStore(Protocol):
    """What the sync engine needs from a state store.

    :class:`MemoryState` and :class:`SQLiteState` implement it; any object with these methods
    can be passed as ``Sync(..., state=...)``. Methods may be called from worker threads.

    Example::

        store = SQLiteState("users.db")
        assert isinstance(store, StateStore)
        sync = Sync(client, match_on="id", mapping={"plan": "plan"}, state=store)
    """

    def load(self, sync_name: str, uids: Sequence[str]) -> dict[str, UserState]:
        """The known state of ``uids`` (users never seen are absent)."""
        ...

    def mark_pending(
        self, sync_name: str, pending: Sequence[tuple[str, dict[str, str | None]]]
    ) -> None:
        """Write-ahead, before a batch is sent: store each user's attributes (the full set) with
        the keys about to be sent set to ``None`` (unknown). Failures are kept."""
        ...

    def commit(self, sync_name: str, accepted: Sequence[tuple[str, dict[str, str | None]]]) -> None:
        """Record users' new attributes (the full set, acknowledged keys with their value) and
        clear their failures."""
        ...

    def record_failures(self, sync_name: str, failures: Sequence[tuple[str, str]]) -> None:
        """Count one more failed attempt for each ``(uid, error)``."""
        ...

    def clear_failures(self, sync_name: str, uids: Sequence[str]) -> None:
        """Forget the failures of users that no longer need a request."""
        ...

    def forget(self, sync_name: str) -> None:
        """Drop all user state of one sync (its history stays)."""
        ...

    def save_run(self, record: RunRecord) -> None:
        """Insert or update a run record."""
        ...

    def runs(self, sync_name: str, limit: int = 50) -> list[RunRecord]:
        """The latest runs of a sync, newest first."""
        ...

    def get_meta(self, sync_name: str, key: str) -> str | None:
        """A small per-sync value (e.g. an alert's state)."""
        ...

    def set_meta(self, sync_name: str, key: str, value: str | None) -> None:
        """Set or (with ``None``) delete a per-sync value."""
        ...

    def acquire_lock(self, name: str, holder: str, ttl: float) -> LockInfo | None:
        """Take lock ``name`` for ``ttl`` seconds unless another holder has it and it has not
        expired. Returns ``None`` when taken (or already ours), else the current holder. Never
        waits for the lock (callers poll)."""
        ...

    def renew_lock(self, name: str, holder: str, ttl: float) -> bool:
        """Extend our lock by ``ttl`` seconds from now; ``False`` if it is no longer ours."""
        ...

    def release_lock(self, name: str, holder: str) -> None:
        """Release lock ``name`` if ``holder`` has it (a no-op otherwise)."""
        ...

    def close(self) -> None:
        """Release the store's resources."""
        ...


@runtime_checkable
class ExchangeStore(Protocol):
    """A store that can keep a debugger's exchanges with their run (optional for a
    :class:`StateStore`; ``SQLiteState`` and ``MemoryState`` are both).

    Records are the dicts of ``DebugRecord.to_dict()``: at least ``time`` (a Unix timestamp),
    ``user_uid``, ``status`` and ``seq``.

    Example::

        store.save_exchanges("users", run_id, [r.to_dict() for r in debugger.failed()])
        store.exchanges("users", uid="user-42")
        store.prune_exchanges(time.time() - 7 * 86400)
    """

    def save_exchanges(
        self, sync_name: str, run_id: str, records: Sequence[Mapping[str, Any]]
    ) -> None:
        """Keep ``records`` as exchanges of run ``run_id`` of ``sync_name``."""
        ...

    def exchanges(
        self,
        sync_name: str,
        run_id: str | None = None,
        uid: str | None = None,
        limit: int = DEFAULT_EXCHANGE_LIMIT,
        *,
        failed_only: bool = False,
    ) -> list[dict[str, Any]]:
        """The most recent ``limit`` stored exchanges matching the filters, oldest first."""
        ...

    def prune_exchanges(self, older_than: float) -> int:
        """Delete exchanges that happened before ``older_than`` (Unix time); return how many."""
        ...


@runtime_checkable
class ChangeLogStore(Protocol):
    """A store that keeps a change log: per run and user, what was sent and how it ended.

    The engine calls :meth:`log_changes` on its commit thread right after the acknowledgements
    (or failures) of the same users are written, and :meth:`prune_changes` at the end of a run.
    :class:`MemoryState`, :class:`SQLiteState` and ``PostgresState`` implement it.
    """

    def log_changes(self, sync_name: str, run_id: str, entries: Sequence[ChangeEntry]) -> None:
        """Append ``entries`` to the log of run ``run_id``."""
        ...

    def changes(
        self,
        sync_name: str,
        *,
        run_id: str | None = None,
        uid: str | None = None,
        limit: int = DEFAULT_CHANGE_LIMIT,
    ) -> list[ChangeEntry]:
        """The newest entries first, optionally of one run and/or one user."""
        ...

    def prune_changes(self, older_than: float) -> int:
        """Delete entries logged before ``older_than`` (epoch seconds); return how many."""
        ...


def exchange_columns(record: Mapping[str, Any]) -> tuple[int, float, str | None, int | None, bool]:
    """The columns every store keeps beside an exchange record for filtering and retention:
    ``(seq, time, uid, status, ok)``."""
    status = record.get("status")
    uid = record.get("user_uid")
    return (
        int(record.get("seq") or 0),
        float(record.get("time") or time.time()),
        None if uid is None else str(uid),
        status if isinstance(status, int) else None,
        _record_ok(record),
    )


def _record_ok(record: Mapping[str, Any]) -> bool:
    status = record.get("status")
    return isinstance(status, int) and 200 <= status < 300


def sql_filters(
    sync_name: str, run_id: str | None, uid: str | None, *, mark: str
) -> tuple[list[str], list[Any]]:
    """The ``WHERE`` terms and parameters every SQL store uses to read exchanges and the change
    log of one sync, optionally of one run and/or one user (``mark``: ``?`` or ``%s``)."""
    where = [f"sync_name = {mark}"]
    params: list[Any] = [sync_name]
    for column, value in (("run_id", run_id), ("uid", uid)):
        if value is not None:
            where.append(f"{column} = {mark}")
            params.append(value)
    return where, params


def _check_limit(limit: int) -> None:
    if not isinstance(limit, int) or limit < 1:
        raise ConfigurationError(
            f"limit must be a positive integer, got {limit!r}; pass e.g. limit=50"
        )
