"""Fault injection: what can go wrong between a client and Personalize, decided per request.

``Faults`` is a frozen description (rates, schedules, latency); ``FaultPlan`` turns it into a
deterministic sequence of ``Decision`` values, one per request that the faults apply to. The same
seed and the same sequence of requests always give the same decisions: every request draws the
same number of random numbers whatever its outcome, so one fault never shifts the next ones.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Collection, Mapping
from typing import Literal

__all__ = ["Decision", "FaultKind", "FaultPlan", "Faults"]

FaultKind = Literal["server_error", "rate_limit", "timeout", "drop", "outage"]

_KINDS: frozenset[str] = frozenset({"server_error", "rate_limit", "timeout", "drop"})
_APIS: frozenset[str] = frozenset({"edge", "management", "cma", "developerhub"})


@dataclasses.dataclass(frozen=True)
class Faults:
    """What the emulator should do wrong, and how often.

    Set it with ``emulator.faults = Faults(...)`` or ``emulator.set_faults(...)``; setting it
    restarts the request counter used by ``fail_nth`` and the random sequence (from ``seed``).

    Arguments (all keyword-only, all optional):

    - ``latency``: seconds added to every answer (``time.sleep`` in the sync transport,
      ``asyncio.sleep`` in the async transport and the socket server).
    - ``jitter``: up to this many extra seconds, uniformly drawn per request.
    - ``server_error``: probability (0..1) of answering ``server_error_status`` (default 503)
      with a JSON error body; by default without doing the work (see
      ``server_error_applied``).
    - ``rate_limit``: probability of answering 429 with ``Retry-After: <retry_after>``
      (seconds, default 1), without doing the work.
    - ``timeout``: probability that no answer comes: the transports raise ``httpx.ReadTimeout``
      (after ``latency``), the socket server holds the connection ``timeout_hold`` seconds
      (default 1.0) and then closes it.
    - ``drop``: probability that the connection is dropped with no answer: the transports raise
      ``httpx.RemoteProtocolError``, the server closes the connection.
    - ``applied_before_failure``: for timeouts and drops, the probability (default 0.5) that
      the server did the work before the answer got lost. Use 0.0 or 1.0 for a fixed outcome.
    - ``server_error_applied``: for 5xx answers (``server_error`` and the 5xx of
      ``fail_nth``), the probability (default 0.0) that the server did the work and *then*
      answered the error, as a gateway that times out on a slow backend does. 1.0 makes every
      injected 5xx an applied one; the default keeps "error means nothing happened". Not used
      by ``outage`` (never applied) nor by 429s (never applied).
    - ``fail_nth``: ``{n: failure}`` fails the n-th request (1-based) that the faults apply to,
      counted since the faults were set. ``failure`` is a status code (``500``, ``429`` with
      ``Retry-After``...) or one of ``"server_error"``, ``"rate_limit"``, ``"timeout"``,
      ``"drop"``. A scheduled failure wins over the random ones.
    - ``outage``: when true every request the faults apply to answers 503.
    - ``apply_to``: the APIs affected, any of ``"edge"``, ``"management"``, ``"cma"``,
      ``"developerhub"``; default edge and management. Requests to other APIs are not counted.
    - ``seed``: seed of the fault sequence; ``None`` (default) uses the emulator's seed.

    The rates are checked in this order on one draw: ``server_error``, ``rate_limit``,
    ``timeout``, ``drop``; their sum must not exceed 1.
    """

    latency: float = 0.0
    jitter: float = 0.0
    server_error: float = 0.0
    server_error_status: int = 503
    rate_limit: float = 0.0
    retry_after: float = 1.0
    timeout: float = 0.0
    drop: float = 0.0
    applied_before_failure: float = 0.5
    server_error_applied: float = 0.0
    fail_nth: Mapping[int, int | str] = dataclasses.field(default_factory=dict)
    outage: bool = False
    apply_to: Collection[str] = frozenset({"edge", "management"})
    timeout_hold: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in (
            "server_error",
            "rate_limit",
            "timeout",
            "drop",
            "applied_before_failure",
            "server_error_applied",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Faults.{name} must be between 0 and 1, got {value!r}")
        if self.server_error + self.rate_limit + self.timeout + self.drop > 1.0 + 1e-9:
            raise ValueError("Faults: server_error + rate_limit + timeout + drop exceeds 1")
        for name in ("latency", "jitter", "retry_after", "timeout_hold"):
            if getattr(self, name) < 0:
                raise ValueError(f"Faults.{name} must not be negative")
        unknown = set(self.apply_to) - _APIS
        if unknown:
            raise ValueError(
                f"Faults.apply_to: unknown APIs {sorted(unknown)}; use {sorted(_APIS)}"
            )
        for n, failure in self.fail_nth.items():
            if not isinstance(n, int) or n < 1:
                raise ValueError(f"Faults.fail_nth keys are 1-based request numbers, got {n!r}")
            if isinstance(failure, str):
                if failure not in _KINDS:
                    raise ValueError(
                        f"Faults.fail_nth[{n}]: unknown failure {failure!r}; "
                        f"use a status code or one of {sorted(_KINDS)}"
                    )
            elif not (isinstance(failure, int) and 100 <= failure <= 599):
                raise ValueError(f"Faults.fail_nth[{n}]: {failure!r} is no HTTP status")
        object.__setattr__(self, "apply_to", frozenset(self.apply_to))
        object.__setattr__(self, "fail_nth", dict(self.fail_nth))

    @property
    def is_quiet(self) -> bool:
        """True when these faults can never change an answer."""
        return (
            not self.outage
            and not self.fail_nth
            and self.latency == 0
            and self.jitter == 0
            and self.server_error == 0
            and self.rate_limit == 0
            and self.timeout == 0
            and self.drop == 0
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """What happens to one request.

    ``kind`` is None for a normal answer. For ``"server_error"``, ``"rate_limit"`` and
    ``"outage"`` the emulator answers ``status``; only a ``"server_error"`` may have done the
    work first (``applied``, from ``Faults.server_error_applied``). For ``"timeout"`` and
    ``"drop"`` no answer is given; ``applied`` tells whether the work was done first.
    """

    delay: float = 0.0
    kind: FaultKind | None = None
    status: int | None = None
    retry_after: float = 0.0
    applied: bool = False
    timeout_hold: float = 0.0

    @property
    def answers(self) -> bool:
        """True when the client gets an HTTP answer."""
        return self.kind not in ("timeout", "drop")


NO_FAULT = Decision()


class FaultPlan:
    """A ``Faults`` plus its running state (request counter, random generator).

    Not thread-safe by itself: the emulator calls ``decide`` under its lock.
    """

    __slots__ = ("_counter", "_rng", "faults")

    def __init__(self, faults: Faults, default_seed: int) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed if faults.seed is not None else default_seed)
        self._counter = 0

    def decide(self, api: str) -> Decision:
        f = self.faults
        if api not in f.apply_to:
            return NO_FAULT
        self._counter += 1
        # Always three draws, so the sequence does not depend on earlier outcomes.
        draw_kind = self._rng.random()
        draw_jitter = self._rng.random()
        draw_applied = self._rng.random()
        delay = f.latency + f.jitter * draw_jitter
        applied = draw_applied < f.applied_before_failure
        if f.outage:
            return Decision(delay=delay, kind="outage", status=503)
        scheduled = f.fail_nth.get(self._counter)
        kind: str | None
        status: int | None = None
        if scheduled is not None:
            if isinstance(scheduled, int):
                status = scheduled
                kind = "rate_limit" if scheduled == 429 else "server_error"
            else:
                kind = scheduled
        else:
            kind = None
            edge = 0.0
            for name, rate in (
                ("server_error", f.server_error),
                ("rate_limit", f.rate_limit),
                ("timeout", f.timeout),
                ("drop", f.drop),
            ):
                edge += rate
                if draw_kind < edge:
                    kind = name
                    break
        if kind is None:
            return Decision(delay=delay) if delay else NO_FAULT
        if kind == "server_error":
            status = status or f.server_error_status
            return Decision(
                delay=delay,
                kind="server_error",
                status=status,
                applied=status >= 500 and draw_applied < f.server_error_applied,
            )
        if kind == "rate_limit":
            return Decision(
                delay=delay, kind="rate_limit", status=status or 429, retry_after=f.retry_after
            )
        if kind == "timeout":
            return Decision(
                delay=delay, kind="timeout", applied=applied, timeout_hold=f.timeout_hold
            )
        return Decision(delay=delay, kind="drop", applied=applied)
