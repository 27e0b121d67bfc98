"""The edge converges to the source: after any sequence of runs, kills (SIGKILL, SIGTERM), lost
answers and overlapping runs, one clean run of the latest source leaves the edge exactly equal to
it. The emulator runs as a server in its own process and the syncs in processes of their own;
what is checked is the edge (read over the emulator's control endpoints), not the client's
opinion of it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability._crash_worker import SYNC_NAME, expected

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 180.0  # seconds; only a hung process gets near it


class EmulatorProcess:
    """``python -m contentstack_personalize.testing`` on a free port, in its own process."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "contentstack_personalize.testing", "--port", "0", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        info: dict[str, str] = {}
        assert self.proc.stdout is not None
        while "authtoken" not in info:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"the emulator did not start: {self.proc.stderr.read()}")
            key, sep, value = line.strip().partition(":")
            if sep and key in ("edge_url", "control_url", "project_uid", "authtoken"):
                info[key] = value.strip()
        self.edge_url = info["edge_url"]
        self.control_url = info["control_url"]
        self.project_uid = info["project_uid"]
        self.http = httpx.Client(timeout=30)

    def users(self) -> dict[str, dict[str, Any]]:
        users: dict[str, dict[str, Any]] = self.http.get(f"{self.control_url}/users").json()[
            "users"
        ]
        return users

    def set_faults(self, faults: dict[str, Any] | None) -> None:
        if faults is None:
            self.http.delete(f"{self.control_url}/faults").raise_for_status()
        else:
            self.http.put(f"{self.control_url}/faults", json=faults).raise_for_status()

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def server() -> Iterator[EmulatorProcess]:
    emulator = EmulatorProcess("--seed", "7")
    try:
        yield emulator
    finally:
        emulator.close()


def spawn(
    server: EmulatorProcess, state: Path, n: int, version: int, *, attempts: int = 8
) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CRASH_ATTEMPTS": str(attempts)}
    env["CRASH_TIMEOUT"] = "2"
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.reliability._crash_worker",
            "sync",
            server.edge_url,
            server.project_uid,
            str(state),
            str(n),
            str(version),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, dict[str, Any] | None, str]:
    out, err = proc.communicate(timeout=DEADLINE)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return proc.returncode, (json.loads(lines[-1]) if lines else None), err


def clean_run(server: EmulatorProcess, state: Path, n: int, version: int) -> dict[str, Any]:
    code, report, err = finish(spawn(server, state, n, version))
    assert code == 0, err
    assert report is not None
    result: dict[str, Any] = report["result"]
    return result


def run_records(state: Path) -> list[tuple[str, float, float | None]]:
    db = sqlite3.connect(state)
    try:
        rows = db.execute(
            "SELECT status, started_at, finished_at FROM runs WHERE sync_name = ?", (SYNC_NAME,)
        ).fetchall()
    finally:
        db.close()
    return [(r[0], r[1], r[2]) for r in rows]


CHAOS = {
    "timeout": 0.03,
    "drop": 0.03,
    "server_error": 0.03,
    "applied_before_failure": 0.5,
    "server_error_applied": 0.5,
    "timeout_hold": 0.05,
}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_kills_lost_answers_overlaps_and_reverts_end_exact(
    server: EmulatorProcess, tmp_path: Path, seed: int
) -> None:
    """Source versions change between runs and come back to old values; runs are SIGKILLed,
    SIGTERMed, overlapped and hit by lost answers (work applied, answer lost). One clean run of
    the latest version then leaves the edge exactly equal to it."""
    rng = random.Random(seed)
    n = 1500
    state = tmp_path / "state.db"
    version = 0
    for _step in range(8):
        version = rng.randrange(4)  # four versions: later steps often revert to an old one
        server.set_faults({**CHAOS, "seed": rng.randrange(1000)} if rng.random() < 0.7 else None)
        attempts = rng.choice([1, 2, 8])
        action = rng.choice(["sigkill", "sigterm", "finish", "overlap"])
        proc = spawn(server, state, n, version, attempts=attempts)
        if action == "overlap":
            other_version = (version + 1 + rng.randrange(3)) % 4
            other = spawn(server, state, n, other_version, attempts=attempts)
            ends = [finish(proc), finish(other)]
            codes = {end[0] for end in ends}
            # finished, stopped early, or refused by the lock
            assert codes <= {0, 3, 4}, [(end[0], end[2][-2000:]) for end in ends]
            if 4 not in codes:  # both ran: then one after the other, never at once
                done = sorted((r[1], r[2] or 0.0) for r in run_records(state)[-2:])
                assert done[0][1] <= done[1][0]
            if 4 in codes and rng.random() < 0.5:
                version = other_version  # either may be "the latest" the next step follows
            continue
        if action != "finish":
            time.sleep(rng.uniform(0.3, 2.5))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL if action == "sigkill" else signal.SIGTERM)
        code, report, err = finish(proc)
        if action == "sigterm" and code == 3:
            # Stopped gracefully (a signal before run() began kills the process the default
            # way, -15: nothing had started; the deterministic test below covers the rest).
            assert report is not None and report["result"]["status"] == "aborted"
            assert "Traceback" not in err
        elif action == "sigterm":
            assert code in (0, -signal.SIGTERM, 4), err
        elif action == "sigkill":
            assert code in (0, 3, -signal.SIGKILL), err
        else:
            assert code in (0, 3), err

    server.set_faults(None)
    result = clean_run(server, state, n, version)
    assert result["status"] == "succeeded"
    assert server.users() == expected(n, version)
    again = clean_run(server, state, n, version)
    assert again["unchanged"] == n and again["requests"] == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "fault",
    [
        {"fail_nth": {"1": "timeout"}, "applied_before_failure": 1.0, "timeout_hold": 0.05},
        {"fail_nth": {"1": "drop"}, "applied_before_failure": 1.0},
        {"fail_nth": {"1": 503}, "server_error_applied": 1.0},
    ],
    ids=["timeout", "drop", "5xx-after-work"],
)
def test_lost_answer_then_revert_over_real_processes(
    server: EmulatorProcess, tmp_path: Path, fault: dict[str, Any]
) -> None:
    """The edge applies version 1 for the first user but the answer is lost; the source then
    goes back to version 0. The next run must send that user again."""
    state = tmp_path / "state.db"
    n = 30
    clean_run(server, state, n, 0)
    server.set_faults(fault)
    code, report, err = finish(spawn(server, state, n, 1, attempts=1))
    assert code == 0, err
    assert report is not None and report["result"]["rejected"] == 1
    server.set_faults(None)
    changed = {u for u, a in server.users().items() if a != expected(n, 0)[u]}
    result = clean_run(server, state, n, 0)  # the revert
    assert server.users() == expected(n, 0)
    assert result["changed"] == len(changed)  # what version 1 changed, and nothing else


@pytest.mark.slow
def test_sigterm_stops_gracefully_commits_and_the_next_run_ends_exact(
    tmp_path: Path,
) -> None:
    emulator = EmulatorProcess("--seed", "9", "--latency", "0.02")
    try:
        state = tmp_path / "state.db"
        n = 2000
        proc = spawn(emulator, state, n, 0)
        deadline = time.monotonic() + DEADLINE
        while len(emulator.users()) < 200 and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        code, report, err = finish(proc)
        assert code == 3, err  # stopped early, by SyncAbortedError: a non-zero exit
        assert "Traceback" not in err
        assert report is not None
        partial = report["result"]
        assert partial["status"] == "aborted" and "SIGTERM" in partial["error"]
        assert partial["added"] >= 200 - 8  # everything acknowledged before the signal counts
        assert run_records(state)[-1][0] == "aborted"
        result = clean_run(emulator, state, n, 0)
        assert emulator.users() == expected(n, 0)
        # Only what the stopped run did not acknowledge is sent again.
        assert result["unchanged"] == partial["added"]
    finally:
        emulator.close()
