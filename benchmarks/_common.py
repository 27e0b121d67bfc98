"""Shared helpers for the benchmarks: the emulator served in a separate process, row generators,
a sender that accepts everything instantly, and a sender wrapper that times the fan-out."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from contentstack_personalize.sync import SendOutcome  # noqa: E402


@dataclass(frozen=True)
class Server:
    edge_url: str
    management_url: str
    project_uid: str
    process: subprocess.Popen[str]


@contextlib.contextmanager
def emulator_process(latency: float = 0.0, *, minimal: bool = False) -> Iterator[Server]:
    """``python -m contentstack_personalize.testing`` on a free port, in its own process (or,
    with ``minimal``, ``benchmarks/minimal_server.py``)."""
    if minimal:
        cmd = [sys.executable, str(ROOT / "benchmarks" / "minimal_server.py"), "--port", "0"]
    else:
        cmd = [sys.executable, "-m", "contentstack_personalize.testing", "--port", "0"]
    if latency:
        cmd += ["--latency", str(latency)]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    found: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while "project_uid" not in found:
        line = proc.stdout.readline()
        if not line or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the emulator did not start")
        key, _, value = line.strip().partition(":")
        if value:
            found[key.strip()] = value.strip()
    try:
        yield Server(found["edge_url"], found["management_url"], found["project_uid"], proc)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def rows(
    n: int, *, prefix: str = "u", columns: int = 2, changed_every: int = 0
) -> Iterator[dict[str, Any]]:
    """``n`` rows keyed ``user_id``; ``columns`` attribute columns c0..; every ``changed_every``-th
    row gets a different c0 (0: none)."""
    for i in range(n):
        row: dict[str, Any] = {"user_id": f"{prefix}{i}"}
        for c in range(columns):
            row[f"c{c}"] = f"v{c}-{i % 97}" if c % 2 == 0 else i * (c + 1)
        if changed_every and i % changed_every == 0:
            row["c0"] = "changed"
        yield row


class NullSender:
    """Accepts every request at once: measures the engine without HTTP."""

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, user_uid: str, body: bytes) -> SendOutcome:
        self.sent += 1
        return SendOutcome(True, 1)

    async def aclose(self) -> None:
        return None


class TimedSender:
    """Wraps a sender; records when the first request started and the last one finished."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.first = 0.0
        self.last = 0.0
        self.count = 0

    async def send(self, user_uid: str, body: bytes) -> SendOutcome:
        if not self.count:
            self.first = time.perf_counter()
        self.count += 1
        outcome = await self.inner.send(user_uid, body)
        self.last = time.perf_counter()
        return outcome  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        await self.inner.aclose()

    @property
    def rate(self) -> float:
        return self.count / (self.last - self.first) if self.last > self.first else 0.0


def table(rows_: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows_) for i in range(len(rows_[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows_)
