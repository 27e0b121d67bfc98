"""The live debugger: every API exchange of a run, searchable, bounded, exported as it happens.

Owns :class:`Debugger` (an exchange hook you attach to a client, or hand to a sync) and
:class:`DebugRecord` (one recorded attempt). Credentials are redacted by the client before a hook
sees an exchange; the debugger redacts again on arrival, so nothing it keeps, exports, persists
or prints can hold a secret even if a future code path forgets.

Memory stays bounded whatever the size of the run: at most ``max_records`` records are held, the
oldest *routine* records (first-attempt successes) are evicted first, and *notable* records
(failures, retried attempts, attempts that will be retried) are kept in preference. Pass
``export=`` to stream every kept record to a JSON Lines file as it arrives instead of holding it.

Example::

    from contentstack_personalize.debugger import Debugger

    debugger = Debugger(export="run.jsonl", sample_success=0.1)
    client.add_exchange_hook(debugger)
    try:
        result = sync.run(rows)
    finally:
        client.remove_exchange_hook(debugger)
        debugger.close()
    for record in debugger.failed():
        print(record.status, record.user_uid, record.response_body)
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping
from html import escape
from typing import IO, Any, Protocol

import attrs

from . import _html
from ._http import REDACTED, Exchange, ExchangeHook, redact_headers, scrub
from ._optional import require_pandas
from .errors import ConfigurationError
from .state import ExchangeStore

__all__ = ["DebugRecord", "Debugger", "read_jsonl"]

logger = logging.getLogger("contentstack_personalize.debugger")

_DAY = 86_400.0


def _truncate(text: str | None, limit: int) -> str | None:
    """``text`` cut to at most ``limit`` UTF-8 bytes, saying how much was cut."""
    if text is None:
        return None
    raw = text.encode("utf-8", errors="replace")
    if len(raw) <= limit:
        return text
    cut = raw[:limit].decode("utf-8", errors="ignore")
    return f"{cut}... [{len(raw) - limit} more bytes]"


def _redact_text(text: str | None) -> str | None:
    return None if text is None else scrub(text)


@attrs.frozen(kw_only=True)
class DebugRecord:
    """One recorded API attempt, with credentials redacted and bodies truncated.

    ``status`` is ``None`` when no answer came (``error`` says why). ``attempt`` is 1 for the
    first try of a request; ``will_retry`` says the client tried again after this one.
    ``sync_name`` and ``run_id`` name the run the exchange belonged to, when known.

    Example::

        record = debugger.for_user("user-42")[-1]
        print(record.method, record.url, record.status, record.duration)
        record.to_dict()   # JSON-serialisable
    """

    seq: int
    time: float
    api: str
    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str | None
    status: int | None
    response_headers: dict[str, str]
    response_body: str | None
    duration: float
    attempt: int
    user_uid: str | None = None
    error: str | None = None
    will_retry: bool = False
    sync_name: str | None = None
    run_id: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the API answered with a 2xx status."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def notable(self) -> bool:
        """A failure, a retried attempt, or an attempt that was retried: always kept."""
        return not self.ok or self.attempt > 1 or self.will_retry

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (what exports and the state store hold).

        Example: ``json.dumps(record.to_dict())``
        """
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DebugRecord:
        """Rebuild a record from :meth:`to_dict` output (an export line, a stored exchange).

        Unknown keys are ignored so files written by newer versions still load.

        Example: ``DebugRecord.from_dict(json.loads(line))``
        """
        names = {a.name for a in attrs.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["request_headers"] = dict(values.get("request_headers") or {})
        values["response_headers"] = dict(values.get("response_headers") or {})
        return cls(**values)

    @classmethod
    def from_exchange(
        cls,
        exchange: Exchange,
        *,
        seq: int = 0,
        max_body_bytes: int = 4096,
        secret_headers: frozenset[str] = frozenset(),
        sync_name: str | None = None,
        run_id: str | None = None,
    ) -> DebugRecord:
        """Record ``exchange``, redacting headers, bodies, URL and error once more.

        Example: ``DebugRecord.from_exchange(exchange, max_body_bytes=1024)``
        """

        def headers(h: Mapping[str, str]) -> dict[str, str]:
            out = redact_headers(h)
            if secret_headers:
                out = {k: (REDACTED if k.lower() in secret_headers else v) for k, v in out.items()}
            return out

        return cls(
            seq=seq,
            time=exchange.started_at,
            api=exchange.api,
            method=exchange.method,
            url=scrub(exchange.url),
            request_headers=headers(exchange.request_headers),
            request_body=_truncate(_redact_text(exchange.request_body), max_body_bytes),
            status=exchange.status,
            response_headers=headers(exchange.response_headers),
            response_body=_truncate(_redact_text(exchange.response_body), max_body_bytes),
            duration=exchange.duration,
            attempt=exchange.attempt,
            user_uid=exchange.user_uid,
            error=_redact_text(exchange.error),
            will_retry=exchange.will_retry,
            sync_name=sync_name,
            run_id=run_id,
        )


def _sample_key_fraction(seed: int, key: str) -> float:
    digest = hashlib.blake2b(f"{seed}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class Observable(Protocol):
    """What a debugger attaches to: a client that calls hooks with each exchange."""

    def add_exchange_hook(self, hook: ExchangeHook) -> None: ...

    def remove_exchange_hook(self, hook: ExchangeHook) -> None: ...


class Debugger:
    """Records the API exchanges of a run; attach it as a client exchange hook.

    Arguments (keyword-only):

    - ``max_records`` (default 10,000): records held in memory. When full, the oldest routine
      record (a first-attempt 2xx) is evicted; only when every held record is notable (a failure
      or part of a retry) is the oldest notable one evicted. Counts stay exact either way.
    - ``max_body_bytes`` (default 4096): request and response bodies are cut past this many
      UTF-8 bytes (the client already cuts at its own ``max_body_bytes``).
    - ``sample_success`` (default 1.0): the fraction of routine exchanges kept. Sampling is by
      user (or, without a user, by method and URL) and deterministic under ``seed``: the same
      seed keeps the same users, whatever order requests finish in. Notable exchanges are
      always kept.
    - ``export``: a path or a text file object. Every kept record is written to it as one JSON
      line as soon as it arrives, flushed every ``flush_every`` records and at least every
      ``flush_interval`` seconds (checked when records arrive), and on :meth:`flush` /
      :meth:`close`. A path is opened (truncated) now and closed by :meth:`close`; a file object
      you pass stays yours to close.
    - ``secret_headers``: more header names to redact (a proxy's token, a custom header).
    - ``persist`` / ``retention_days``: when attached with a state store (see :meth:`attach`),
      save the held records there at the end of the run and delete stored exchanges older than
      ``retention_days``.

    Thread-safe: the client calls hooks from worker threads and event loops.

    Example::

        debugger = Debugger(max_records=1000, export="exchanges.jsonl")
        with debugger.attach(client):
            client.users.set_attributes("user-42", {"plan": "gold"})
        debugger.for_user("user-42")[0].status      # 200
        debugger.status_counts()                    # {200: 1}
    """

    def __init__(
        self,
        *,
        max_records: int = 10_000,
        max_body_bytes: int = 4096,
        sample_success: float = 1.0,
        seed: int = 0,
        export: str | os.PathLike[str] | IO[str] | None = None,
        flush_every: int = 100,
        flush_interval: float = 1.0,
        secret_headers: Iterable[str] = (),
        persist: bool = False,
        retention_days: float = 7.0,
    ) -> None:
        if not isinstance(max_records, int) or max_records < 1:
            raise ConfigurationError(
                f"Debugger max_records must be a positive integer, got {max_records!r}"
            )
        if not isinstance(max_body_bytes, int) or max_body_bytes < 0:
            raise ConfigurationError(
                f"Debugger max_body_bytes must be a non-negative integer, got {max_body_bytes!r} "
                "(0 keeps no bodies)"
            )
        if not 0.0 <= sample_success <= 1.0:
            raise ConfigurationError(
                f"Debugger sample_success must be between 0 and 1, got {sample_success!r}"
            )
        if flush_every < 1 or flush_interval < 0:
            raise ConfigurationError(
                "Debugger flush_every must be positive and flush_interval not negative, got "
                f"flush_every={flush_every!r}, flush_interval={flush_interval!r}"
            )
        if retention_days <= 0:
            raise ConfigurationError(
                f"Debugger retention_days must be positive, got {retention_days!r}"
            )
        self.max_records = max_records
        self.max_body_bytes = max_body_bytes
        self.sample_success = float(sample_success)
        self.seed = seed
        self.flush_every = flush_every
        self.flush_interval = flush_interval
        self.secret_headers = frozenset(h.lower() for h in secret_headers)
        self.persist = persist
        self.retention_days = retention_days

        self._lock = threading.RLock()
        self._routine: deque[DebugRecord] = deque()
        self._notable: deque[DebugRecord] = deque()
        self._status: Counter[int | None] = Counter()
        self._seq = 0
        self._seen = 0
        self._retried = 0  # attempts followed by another attempt
        self._succeeded = 0  # requests whose final attempt got a 2xx answer
        self._final_failed = 0  # requests whose final attempt did not
        self._sampled_out = 0
        self._evicted = 0
        self._exported = 0
        self._persisted_upto = 0
        self._labels: tuple[str | None, str | None] = (None, None)

        self._export: IO[str] | None = None
        self._owns_export = False
        self._export_name: str | None = None
        self._export_error: str | None = None
        self._unflushed = 0
        self._last_flush = time.monotonic()
        if export is not None:
            if isinstance(export, (str, os.PathLike)):
                self._export_name = os.fspath(export)
                try:
                    self._export = open(self._export_name, "w", encoding="utf-8")  # noqa: SIM115
                except OSError as exc:
                    raise ConfigurationError(
                        f"the debugger cannot write its export to {self._export_name!r} ({exc}); "
                        "pass a writable path or an open text file"
                    ) from exc
                self._owns_export = True
            elif hasattr(export, "write"):
                self._export = export
                self._export_name = getattr(export, "name", None) or type(export).__name__
            else:
                raise ConfigurationError(
                    f"Debugger export must be a path or a text file object, "
                    f"not {type(export).__name__}"
                )

    # -- recording -------------------------------------------------------------------------------

    def __call__(self, exchange: Exchange) -> None:
        """Record one exchange (the client calls this; so can you, e.g. in tests)."""
        with self._lock:
            self._seen += 1
            self._status[exchange.status] += 1
            if exchange.will_retry:
                self._retried += 1
            elif exchange.ok:
                self._succeeded += 1
            else:
                self._final_failed += 1
            routine = exchange.ok and exchange.attempt <= 1 and not exchange.will_retry
            if routine and not self._sampled(exchange):
                self._sampled_out += 1
                return
            self._seq += 1
            sync_name, run_id = self._labels
            record = DebugRecord.from_exchange(
                exchange,
                seq=self._seq,
                max_body_bytes=self.max_body_bytes,
                secret_headers=self.secret_headers,
                sync_name=sync_name,
                run_id=run_id,
            )
            (self._routine if routine else self._notable).append(record)
            if len(self._routine) + len(self._notable) > self.max_records:
                (self._routine or self._notable).popleft()
                self._evicted += 1
            if self._export is not None:
                self._write(record)

    def _sampled(self, exchange: Exchange) -> bool:
        if self.sample_success >= 1.0:
            return True
        if self.sample_success <= 0.0:
            return False
        key = exchange.user_uid or f"{exchange.method} {exchange.url}"
        return _sample_key_fraction(self.seed, key) < self.sample_success

    def _write(self, record: DebugRecord) -> None:
        assert self._export is not None
        try:
            self._export.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
            self._exported += 1
            self._unflushed += 1
            if (
                self._unflushed >= self.flush_every
                or time.monotonic() - self._last_flush >= self.flush_interval
            ):
                self._flush_locked()
        except (OSError, ValueError) as exc:  # disk full, file closed under us
            self._export_error = f"{type(exc).__name__}: {exc}"
            logger.warning(
                "debugger export to %r failed (%s); records are still kept in memory but no "
                "longer exported",
                self._export_name,
                self._export_error,
            )
            self._export = None

    def _flush_locked(self) -> None:
        if self._export is not None:
            self._export.flush()
        self._unflushed = 0
        self._last_flush = time.monotonic()

    def flush(self) -> None:
        """Write buffered export lines through to the file.

        Example: ``debugger.flush()``
        """
        with self._lock:
            try:
                self._flush_locked()
            except (OSError, ValueError) as exc:
                self._export_error = f"{type(exc).__name__}: {exc}"
                logger.warning("debugger export flush failed: %s", self._export_error)
                self._export = None

    def close(self) -> None:
        """Flush the export and close it if the debugger opened it; records stay readable.

        Example: ``debugger.close()``
        """
        with self._lock:
            self.flush()
            if self._export is not None and self._owns_export:
                with contextlib.suppress(OSError):
                    self._export.close()
            self._export = None

    def __enter__(self) -> Debugger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- runs ------------------------------------------------------------------------------------

    def label(self, *, sync_name: str | None, run_id: str | None) -> None:
        """Name the run that the next exchanges belong to (stored in each record).

        Example: ``debugger.label(sync_name="users", run_id="3f2a9c1b0d4e")``
        """
        with self._lock:
            self._labels = (sync_name, run_id)

    @contextlib.contextmanager
    def attach(
        self,
        client: Observable,
        *,
        sync_name: str | None = None,
        run_id: str | None = None,
        store: object = None,
    ) -> Iterator[Debugger]:
        """Record ``client``'s exchanges inside a ``with`` block.

        On exit the hook is removed, the export flushed and, when this debugger was made with
        ``persist=True`` and ``store`` is given, the records held for this run are saved in the
        store and stored exchanges older than ``retention_days`` are pruned. Persisting never
        raises: a failure is logged, because the run's outcome matters more.

        ``client`` is anything with ``add_exchange_hook``/``remove_exchange_hook`` (both
        clients); ``store`` an :class:`~contentstack_personalize.state.ExchangeStore`.

        Example::

            with debugger.attach(client, sync_name=sync.name, run_id=run_id, store=sync.state):
                ...
        """
        self.label(sync_name=sync_name, run_id=run_id)
        client.add_exchange_hook(self)
        try:
            yield self
        finally:
            client.remove_exchange_hook(self)
            self.flush()
            if self.persist and store is not None and sync_name is not None and run_id:
                try:
                    self.persist_to(store, sync_name, run_id)
                except Exception:
                    logger.exception("could not save the debugger's exchanges of run %s", run_id)

    def persist_to(
        self,
        store: Any,
        sync_name: str,
        run_id: str,
        *,
        retention_days: float | None = None,
    ) -> int:
        """Save the held records not saved before into ``store``; prune old ones; return how
        many were saved.

        ``store`` must have ``save_exchanges`` / ``prune_exchanges`` (``SQLiteState`` and
        ``MemoryState`` do). Records held are at most ``max_records`` (failures preferred);
        use ``export=`` for a complete trail.

        Example: ``debugger.persist_to(SQLiteState("state.db"), "users", run_id)``
        """
        if not isinstance(store, ExchangeStore):
            raise ConfigurationError(
                f"{type(store).__name__} cannot store exchanges: it needs save_exchanges(), "
                "exchanges() and prune_exchanges(); use SQLiteState or MemoryState, or keep "
                "the debugger's export= file instead"
            )
        with self._lock:
            fresh = [r for r in self._records_locked() if r.seq > self._persisted_upto]
            if fresh:
                self._persisted_upto = max(r.seq for r in fresh)
        dicts = []
        for record in fresh:
            data = record.to_dict()
            data["sync_name"] = data["sync_name"] or sync_name
            data["run_id"] = data["run_id"] or run_id
            dicts.append(data)
        if dicts:
            store.save_exchanges(sync_name, run_id, dicts)
        days = self.retention_days if retention_days is None else retention_days
        store.prune_exchanges(time.time() - days * _DAY)
        return len(dicts)

    # -- reading ---------------------------------------------------------------------------------

    def _records_locked(self) -> list[DebugRecord]:
        out = [*self._routine, *self._notable]
        out.sort(key=lambda r: r.seq)
        return out

    @property
    def records(self) -> list[DebugRecord]:
        """The held records, oldest first (a copy).

        Example: ``[r.url for r in debugger.records]``
        """
        with self._lock:
            return self._records_locked()

    def __len__(self) -> int:
        with self._lock:
            return len(self._routine) + len(self._notable)

    def __bool__(self) -> bool:
        # A debugger that has recorded nothing yet is still a debugger: ``if result.debugger:``
        # and ``debugger or default`` must not treat it as absent.
        return True

    def __iter__(self) -> Iterator[DebugRecord]:
        return iter(self.records)

    def for_user(self, uid: str) -> list[DebugRecord]:
        """The held records about one user (``x-cs-personalize-user-uid``), oldest first.

        Example: ``debugger.for_user("user-42")``
        """
        return [r for r in self.records if r.user_uid == uid]

    def for_run(self, run_id: str) -> list[DebugRecord]:
        """The held records of one run, oldest first.

        Example: ``debugger.for_run(result.run_id)``
        """
        return [r for r in self.records if r.run_id == run_id]

    def failed(self) -> list[DebugRecord]:
        """The held records of requests that failed in the end: the last attempt of each, without
        a 2xx answer. A 503 that succeeded on retry is not here (see :meth:`failed_attempts`).

        Example: ``[(r.status, r.error) for r in debugger.failed()]``
        """
        return [r for r in self.records if not r.ok and not r.will_retry]

    def failed_attempts(self) -> list[DebugRecord]:
        """Every held attempt without a 2xx answer, retried or final.

        Example: ``[r.status for r in debugger.failed_attempts() if r.will_retry]``
        """
        return [r for r in self.records if not r.ok]

    def status_counts(self) -> dict[int | None, int]:
        """How many exchanges got each status (``None``: no answer), counting every exchange
        seen, including those sampled out or evicted.

        Example: ``debugger.status_counts().get(429, 0)``
        """
        with self._lock:
            return dict(self._status)

    def stats(self) -> dict[str, Any]:
        """Exact counters. Attempts and final outcomes are counted apart: ``seen`` attempts, of
        which ``retried`` were followed by another attempt; ``requests`` final outcomes, of which
        ``succeeded`` and ``failed``; and ``held``, ``sampled_out``, ``evicted``, ``exported``.

        Example: ``debugger.stats()["failed"]`` (requests that failed in the end)
        """
        with self._lock:
            failed_attempts = sum(n for status, n in self._status.items() if not _ok(status))
            return {
                "seen": self._seen,
                "attempts": self._seen,
                "retried": self._retried,
                "failed_attempts": failed_attempts,
                "requests": self._succeeded + self._final_failed,
                "succeeded": self._succeeded,
                "failed": self._final_failed,
                "held": len(self._routine) + len(self._notable),
                "sampled_out": self._sampled_out,
                "evicted": self._evicted,
                "exported": self._exported,
                "export": self._export_name,
                "export_error": self._export_error,
                "status_counts": {
                    ("none" if k is None else str(k)): v for k, v in self._status.items()
                },
            }

    @property
    def seen(self) -> int:
        """Exchanges observed so far, kept or not."""
        with self._lock:
            return self._seen

    def export_jsonl(self, destination: str | os.PathLike[str] | IO[str]) -> int:
        """Write the held records as JSON Lines (to a path or text file); return the count.

        Example: ``debugger.export_jsonl("after.jsonl")``
        """
        records = self.records
        lines = "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records)
        if isinstance(destination, (str, os.PathLike)):
            with open(destination, "w", encoding="utf-8") as fh:
                fh.write(lines)
        else:
            destination.write(lines)
            destination.flush()
        return len(records)

    def to_pandas(self) -> Any:
        """The held records as a pandas DataFrame, one row per attempt (needs pandas); ``time``
        is a timezone-aware UTC datetime.

        Example: ``debugger.to_pandas().groupby("status").size()``
        """
        pd = require_pandas("Debugger.to_pandas()")
        columns = [a.name for a in attrs.fields(DebugRecord)]
        frame = pd.DataFrame.from_records([r.to_dict() for r in self.records], columns=columns)
        # When each attempt started, as a timezone-aware (UTC) datetime.
        frame["time"] = pd.to_datetime(frame["time"].astype("float64"), unit="s", utc=True)
        return frame

    def summary(self) -> str:
        """A short readable report.

        Example: ``print(debugger.summary())``
        """
        s = self.stats()
        statuses = ", ".join(
            f"{k}: {v}" for k, v in sorted(s["status_counts"].items(), key=lambda kv: kv[0])
        )
        text = (
            f"Debugger: {s['seen']} exchanges seen ({s['requests']} requests: {s['succeeded']} "
            f"succeeded, {s['failed']} failed; {s['retried']} attempts retried), {s['held']} held, "
            f"{s['sampled_out']} sampled out, {s['evicted']} evicted"
        )
        if statuses:
            text += f"; statuses {statuses}"
        if s["export"]:
            text += f"; {s['exported']} exported to {s['export']}"
        if s["export_error"]:
            text += f" (export stopped: {s['export_error']})"
        return text

    def _repr_html_(self) -> str:
        return _debugger_html(self)

    def __repr__(self) -> str:
        with self._lock:
            held = len(self._routine) + len(self._notable)
            return (
                f"Debugger(seen={self._seen}, held={held}, max_records={self.max_records}, "
                f"export={self._export_name!r})"
            )


def _debugger_html(debugger: Debugger, *, max_rows: int = _html.MAX_ROWS) -> str:
    """The notebook view of a debugger: counters, statuses and the latest failed exchanges,
    every value escaped.

    Example: ``IPython.display.HTML(_debugger_html(debugger))`` (Jupyter calls it for you).
    """
    stats = debugger.stats()
    counters = [
        (name, f"{stats[name]:,}")
        for name in ("seen", "held", "failed", "sampled_out", "evicted", "exported")
    ]
    statuses = [(k, f"{v:,}") for k, v in sorted(stats["status_counts"].items())]
    held_failed = debugger.failed()
    failed = held_failed[-max_rows:] if max_rows > 0 else []
    rows = [
        (r.method, r.url, r.user_uid, r.status, r.attempt, r.error or r.response_body)
        for r in failed
    ]
    note = (
        f" ({len(failed)} of {len(held_failed):,} held)" if len(held_failed) > len(failed) else ""
    )
    parts = [
        "<div style='margin-bottom:4px'><b>Debugger</b></div>",
        _html.table(["counter", "exchanges"], counters),
    ]
    if statuses:
        parts.append(_html.table(["status", "exchanges"], statuses))
    if rows:
        parts.append(
            "<div style='font-weight:600;margin-top:6px'>"
            f"Latest failed exchanges{escape(note)}</div>"
            + _html.table(["method", "url", "uid", "status", "attempt", "answer"], rows)
        )
    return _html.wrap("".join(parts))


def _ok(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


def read_jsonl(source: str | os.PathLike[str] | IO[str]) -> list[DebugRecord]:
    """Load records from a debugger export (a path or a text file).

    Example: ``[r for r in read_jsonl("run.jsonl") if not r.ok]``
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, encoding="utf-8") as fh:
            return read_jsonl(fh)
    if isinstance(source, io.TextIOBase) or hasattr(source, "read"):
        return [DebugRecord.from_dict(json.loads(line)) for line in source if line.strip()]
    raise ConfigurationError(
        f"read_jsonl needs a path or a text file object, not {type(source).__name__}; "
        "pass the file given to Debugger(export=...)"
    )
