"""State kept in this process only (tests, notebooks, throwaway runs)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ._base import (
    DEFAULT_CHANGE_LIMIT,
    DEFAULT_EXCHANGE_LIMIT,
    ChangeEntry,
    LockInfo,
    RunRecord,
    UserState,
    _check_limit,
    _record_ok,
)


class MemoryState:
    """State kept in this process only: a rerun in the same process is incremental, a new
    process starts from nothing (and so sends every user again).

    Example: ``Sync(client, match_on="id", mapping={...}, state=MemoryState())``
    """

    def __init__(self) -> None:
        self._users: dict[tuple[str, str], UserState] = {}
        self._runs: dict[str, RunRecord] = {}
        self._meta: dict[tuple[str, str], str] = {}
        self._exchanges: list[tuple[str, str, dict[str, Any]]] = []
        self._locks: dict[str, LockInfo] = {}
        self._changes: list[tuple[str, ChangeEntry]] = []
        self._lock = threading.Lock()

    def load(self, sync_name: str, uids: Sequence[str]) -> dict[str, UserState]:
        """The known state of ``uids`` (users never seen are absent)."""
        with self._lock:
            out = {}
            for uid in uids:
                state = self._users.get((sync_name, uid))
                if state is not None:
                    out[uid] = state
            return out

    def mark_pending(
        self, sync_name: str, pending: Sequence[tuple[str, dict[str, str | None]]]
    ) -> None:
        """Write-ahead: users' attributes with the keys about to be sent unknown (``None``)."""
        with self._lock:
            for uid, attrs_ in pending:
                old = self._users.get((sync_name, uid))
                failed, error = (old.failed_attempts, old.last_error) if old else (0, None)
                self._users[(sync_name, uid)] = UserState(dict(attrs_), failed, error)

    def commit(self, sync_name: str, accepted: Sequence[tuple[str, dict[str, str | None]]]) -> None:
        """Record users' new attributes and clear their failures."""
        with self._lock:
            for uid, attrs_ in accepted:
                self._users[(sync_name, uid)] = UserState(dict(attrs_))

    def record_failures(self, sync_name: str, failures: Sequence[tuple[str, str]]) -> None:
        """Count one more failed attempt for each ``(uid, error)``."""
        with self._lock:
            for uid, error in failures:
                old = self._users.get((sync_name, uid), UserState({}))
                self._users[(sync_name, uid)] = UserState(old.attrs, old.failed_attempts + 1, error)

    def clear_failures(self, sync_name: str, uids: Sequence[str]) -> None:
        """Forget the failures of users that no longer need a request."""
        with self._lock:
            for uid in uids:
                old = self._users.get((sync_name, uid))
                if old is not None and old.failed_attempts:
                    self._users[(sync_name, uid)] = UserState(old.attrs)

    def forget(self, sync_name: str) -> None:
        """Drop all user state of one sync (its history stays)."""
        with self._lock:
            for key in [k for k in self._users if k[0] == sync_name]:
                del self._users[key]

    def save_run(self, record: RunRecord) -> None:
        """Insert or update a run record."""
        with self._lock:
            self._runs[record.run_id] = record

    def runs(self, sync_name: str, limit: int = 50) -> list[RunRecord]:
        """The latest runs of a sync, newest first."""
        with self._lock:
            mine = [r for r in self._runs.values() if r.sync_name == sync_name]
        mine.sort(key=lambda r: r.started_at, reverse=True)
        return mine[:limit]

    def get_meta(self, sync_name: str, key: str) -> str | None:
        """A small per-sync value, or ``None``."""
        with self._lock:
            return self._meta.get((sync_name, key))

    def set_meta(self, sync_name: str, key: str, value: str | None) -> None:
        """Set or (with ``None``) delete a per-sync value."""
        with self._lock:
            if value is None:
                self._meta.pop((sync_name, key), None)
            else:
                self._meta[(sync_name, key)] = value

    def save_exchanges(
        self, sync_name: str, run_id: str, records: Sequence[Mapping[str, Any]]
    ) -> None:
        """Keep a debugger's records with run ``run_id`` (see :class:`ExchangeStore`)."""
        copies = [(sync_name, run_id, json.loads(json.dumps(dict(r)))) for r in records]
        with self._lock:
            self._exchanges.extend(copies)

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
        _check_limit(limit)
        with self._lock:
            mine = [
                dict(rec)
                for name, run, rec in self._exchanges
                if name == sync_name
                and (run_id is None or run == run_id)
                and (uid is None or rec.get("user_uid") == uid)
                and not (failed_only and _record_ok(rec))
            ]
        mine.sort(key=lambda r: (r.get("time") or 0.0, r.get("seq") or 0))
        return mine[-limit:]

    def prune_exchanges(self, older_than: float) -> int:
        """Delete exchanges that happened before ``older_than``; return how many."""
        with self._lock:
            before = len(self._exchanges)
            self._exchanges = [
                e for e in self._exchanges if (e[2].get("time") or 0.0) >= older_than
            ]
            return before - len(self._exchanges)

    def log_changes(self, sync_name: str, run_id: str, entries: Sequence[ChangeEntry]) -> None:
        """Append ``entries`` to run ``run_id``'s change log (see :class:`ChangeLogStore`)."""
        now = time.time()
        with self._lock:
            self._changes.extend(
                (sync_name, attrs.evolve(entry, run_id=run_id, time=now)) for entry in entries
            )

    def changes(
        self,
        sync_name: str,
        *,
        run_id: str | None = None,
        uid: str | None = None,
        limit: int = DEFAULT_CHANGE_LIMIT,
    ) -> list[ChangeEntry]:
        """The newest ``limit`` change-log entries matching the filters, newest first."""
        _check_limit(limit)
        found: list[ChangeEntry] = []
        with self._lock:
            for name, entry in reversed(self._changes):
                if name != sync_name or (run_id is not None and entry.run_id != run_id):
                    continue
                if uid is not None and entry.uid != uid:
                    continue
                found.append(entry)
                if len(found) >= limit:
                    break
        return found

    def prune_changes(self, older_than: float) -> int:
        """Delete change-log entries logged before ``older_than``; return how many."""
        with self._lock:
            kept = [item for item in self._changes if (item[1].time or 0.0) >= older_than]
            removed = len(self._changes) - len(kept)
            self._changes = kept
        return removed

    def user_count(self, sync_name: str) -> int:
        """How many users the store knows for ``sync_name``."""
        with self._lock:
            return sum(1 for k in self._users if k[0] == sync_name)

    def acquire_lock(self, name: str, holder: str, ttl: float) -> LockInfo | None:
        """Take lock ``name`` unless another live holder has it (see :class:`StateStore`)."""
        now = time.time()
        with self._lock:
            current = self._locks.get(name)
            if current is not None and current.holder != holder and current.expires_at > now:
                return current
            since = current.acquired_at if current and current.holder == holder else now
            self._locks[name] = LockInfo(
                name=name, holder=holder, acquired_at=since, expires_at=now + ttl
            )
            return None

    def renew_lock(self, name: str, holder: str, ttl: float) -> bool:
        """Extend our lock; ``False`` if another holder has it now."""
        with self._lock:
            current = self._locks.get(name)
            if current is None or current.holder != holder:
                return False
            self._locks[name] = attrs.evolve(current, expires_at=time.time() + ttl)
            return True

    def release_lock(self, name: str, holder: str) -> None:
        """Release lock ``name`` if ``holder`` has it."""
        with self._lock:
            current = self._locks.get(name)
            if current is not None and current.holder == holder:
                del self._locks[name]

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"MemoryState(users={len(self._users)})"
