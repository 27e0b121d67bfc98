"""Crashes: a sync killed at random points (SIGKILL, Ctrl-C) in a real subprocess against the
emulator served on loopback, a state store killed in the middle of a transaction or left with a
torn write-ahead log, and state files this version must refuse.

What must hold after any crash:

- the state store opens and passes SQLite's integrity check;
- every value the store records as accepted is the edge's value: a key that was sent without a
  committed acknowledgement is *unknown* (null in the state), never the old value, and the number
  of users with unknown keys stays within the stated resend bound;
- the next run sends exactly the users whose accepted state differs from the source, and the
  emulator ends exactly equal to the source.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from contentstack_personalize import ConfigurationError
from contentstack_personalize.sync import SQLiteState
from contentstack_personalize.testing import PersonalizeEmulator
from tests.reliability._crash_worker import SYNC_NAME, expected

ROOT = Path(__file__).resolve().parents[2]
N = 2000
CONCURRENCY, COMMIT_EVERY = 8, 7  # as in the worker
DEADLINE = 120.0  # seconds; only a hung worker gets near it
# The users a killed run may leave unknown (docs/guarantees.md): acknowledgements not committed
# yet, the queue and the requests in flight, and the two write-ahead batches (2 x 500).
RESEND_BOUND = 4 * COMMIT_EVERY + 3 * CONCURRENCY + 2 * 500


def spawn(*args: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CONTENTSTACK_AUTHTOKEN", None)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability._crash_worker", *map(str, args)],
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


def run_to_completion(server: Any, emulator: PersonalizeEmulator, state: Path, version: int) -> Any:
    code, report, err = finish(
        spawn("sync", server.edge_url, emulator.project_uid, state, N, version)
    )
    assert code == 0, err
    assert report is not None
    return report["result"]


def patch_count(emulator: PersonalizeEmulator) -> int:
    return emulator.count("edge", "PATCH", "/user-attributes")


def wait_for(predicate: Any, proc: subprocess.Popen[str]) -> None:
    """Poll until ``predicate()`` or the worker exits (not a timing assertion: a deadline)."""
    end = time.monotonic() + DEADLINE
    while not predicate() and proc.poll() is None:
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("the worker neither progressed nor exited")
        time.sleep(0.001)


def stored_users(state: Path) -> dict[str, dict[str, Any]]:
    """``{uid: accepted attributes}`` as the state file says, after SQLite's own recovery
    (unknown keys, null in the file, are left out: they claim nothing)."""
    db = sqlite3.connect(state)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute(
            "SELECT uid, attrs FROM user_state WHERE sync_name = ?", (SYNC_NAME,)
        ).fetchall()
    finally:
        db.close()
    out = {}
    for uid, text in rows:
        attrs = {k: json.loads(v) for k, v in json.loads(text).items() if v is not None}
        if attrs:
            out[uid] = attrs
    return out


def unknown_users(state: Path) -> int:
    """How many users have a key whose edge value the store does not know."""
    db = sqlite3.connect(state)
    try:
        rows = db.execute(
            "SELECT attrs FROM user_state WHERE sync_name = ?", (SYNC_NAME,)
        ).fetchall()
    finally:
        db.close()
    return sum(1 for (text,) in rows if None in json.loads(text).values())


def assert_store_never_leads_the_edge(
    state: Path, emulator: PersonalizeEmulator, version: int, *, lag_bound: int
) -> dict[str, dict[str, Any]]:
    """The invariant a crash must keep; returns the store's view for further checks.

    Every accepted value in the store is what the edge holds (write-ahead: a key being sent is
    unknown until its acknowledgement is committed, so the store never keeps an old value the
    edge may have replaced), and at most ``lag_bound`` users have unknown keys."""
    store = stored_users(state)
    edge = emulator.users()
    for uid, attrs in store.items():
        held = {k: edge.get(uid, {}).get(k) for k in attrs}
        assert held == attrs, (uid, attrs, held)
    unknown = unknown_users(state)
    assert unknown <= lag_bound, f"{unknown} users have unknown keys, more than {lag_bound}"
    return store


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 6))
def test_sigkill_at_a_random_point_then_rerun_ends_exact(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    emulator = PersonalizeEmulator(seed=seed)
    state = tmp_path / "state.db"
    # Odd seeds crash the very first run (nothing synced yet); even seeds crash an incremental
    # run after a complete one, where every user changes.
    version = 0 if seed % 2 else 1
    with emulator.serve() as server:
        if version:
            run_to_completion(server, emulator, state, 0)
        start = patch_count(emulator)
        kill_after = rng.randint(0, int(N * 0.9))
        proc = spawn("sync", server.edge_url, emulator.project_uid, state, N, version)
        if kill_after == 0:
            wait_for(lambda: state.exists() and version == 0, proc)
        else:
            wait_for(lambda: patch_count(emulator) - start >= kill_after, proc)
        proc.send_signal(signal.SIGKILL)
        code, _, err = finish(proc)
        assert code == -signal.SIGKILL, f"the worker ended before the kill: {code} {err}"

        # The edge may be ahead of the store, by at most the last batch and what was in flight.
        store = assert_store_never_leads_the_edge(state, emulator, version, lag_bound=RESEND_BOUND)
        current = expected(N, version)
        up_to_date = sum(1 for uid, attrs in store.items() if attrs == current[uid])

        before = patch_count(emulator)
        result = run_to_completion(server, emulator, state, version)
        assert emulator.users() == current
        assert result["status"] == "succeeded"
        assert result["unchanged"] == up_to_date
        assert result["added"] + result["changed"] == N - up_to_date
        assert patch_count(emulator) - before == N - up_to_date  # only what was not acknowledged
        assert_store_never_leads_the_edge(state, emulator, version, lag_bound=0)

        # And once done, done: a third run sends nothing.
        before = patch_count(emulator)
        again = run_to_completion(server, emulator, state, version)
        assert again["unchanged"] == N and patch_count(emulator) == before


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 12])
def test_ctrl_c_stops_cleanly_commits_what_was_acknowledged(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    emulator = PersonalizeEmulator(seed=seed)
    state = tmp_path / "state.db"
    version = seed % 2
    with emulator.serve() as server:
        if version:
            run_to_completion(server, emulator, state, 0)
        start = patch_count(emulator)
        interrupt_after = rng.randint(50, int(N * 0.8))
        proc = spawn("sync", server.edge_url, emulator.project_uid, state, N, version)
        wait_for(lambda: patch_count(emulator) - start >= interrupt_after, proc)
        proc.send_signal(signal.SIGINT)
        code, report, err = finish(proc)
        assert code == 3, f"expected a clean SyncAbortedError exit, got {code}: {err}"
        assert "Traceback" not in err
        assert report is not None and report["aborted"]
        partial = report["result"]
        assert partial is not None and partial["status"] == "aborted"
        counts = partial
        assert counts["read"] == N
        # The interrupted run saw only part of the rows through; the rest are not counted as
        # synced, rejected or unchanged.
        done = counts["added"] + counts["changed"] + counts["unchanged"]
        assert done < N and counts["rejected"] == 0

        # Ctrl-C flushes what was acknowledged; what was pending stays unknown (resent next run).
        store = assert_store_never_leads_the_edge(state, emulator, version, lag_bound=RESEND_BOUND)
        current = expected(N, version)
        up_to_date = sum(1 for uid, attrs in store.items() if attrs == current[uid])
        assert up_to_date >= counts["added"] + counts["changed"]  # every acknowledged row kept

        history = sqlite3.connect(state).execute("SELECT status FROM runs").fetchall()
        assert ("aborted",) in history

        result = run_to_completion(server, emulator, state, version)
        assert emulator.users() == current
        assert result["added"] + result["changed"] == N - up_to_date


# ---------------------------------------------------------------------------------------------
# The SQLite store on its own
# ---------------------------------------------------------------------------------------------


def committed_batches(store_view: dict[str, dict[str, Any]]) -> set[int]:
    batches: dict[int, int] = {}
    for uid, attrs in store_view.items():
        assert uid == f"b{attrs['batch']}-u{attrs['i']}"
        batches[int(attrs["batch"])] = batches.get(int(attrs["batch"]), 0) + 1
    assert all(count == 50 for count in batches.values()), f"a torn batch is visible: {batches}"
    return set(batches)


@pytest.mark.parametrize("kill_at", [0, 3, 9])
def test_sigkill_inside_a_commit_transaction_leaves_whole_batches(
    tmp_path: Path, kill_at: int
) -> None:
    state = tmp_path / "torn.db"
    code, _, err = finish(spawn("torn", state, 10, kill_at))
    assert code == -signal.SIGKILL, err
    store = SQLiteState(state)  # opens after the crash, recovering from the WAL
    try:
        view = {
            uid: {k: json.loads(v) for k, v in st.attrs.items()}
            for uid, st in store.load(
                SYNC_NAME, [f"b{b}-u{i}" for b in range(10) for i in range(50)]
            ).items()
        }
        assert committed_batches(view) == set(range(kill_at))
        # And it keeps working: the interrupted batch can be committed now.
        store.commit(SYNC_NAME, [(f"b{kill_at}-u0", {"batch": '"x"'})])
        assert store.load(SYNC_NAME, [f"b{kill_at}-u0"])[f"b{kill_at}-u0"].attrs == {"batch": '"x"'}
    finally:
        store.close()


def test_torn_write_ahead_log_recovers_a_prefix_of_whole_commits(tmp_path: Path) -> None:
    """A power cut can leave the WAL cut at any byte; each commit is all there or not at all."""
    # Ten commits, then killed inside the eleventh: no checkpoint ran, the commits are in the WAL.
    crashed = tmp_path / "crashed.db"
    code, _, err = finish(spawn("torn", crashed, 11, 10))  # ten commits, killed in the 11th
    assert code == -signal.SIGKILL, err
    wal = Path(f"{crashed}-wal")
    assert wal.exists() and wal.stat().st_size > 0
    size = wal.stat().st_size
    rng = random.Random(5)
    seen_prefixes = set()
    for cut in sorted({0, 32, size - 1, size // 2, *(rng.randrange(size) for _ in range(12))}):
        work = tmp_path / f"cut{cut}"
        work.mkdir()
        shutil.copy(crashed, work / "s.db")
        with open(wal, "rb") as src, open(work / "s.db-wal", "wb") as dst:
            dst.write(src.read(cut))
        store = SQLiteState(work / "s.db")
        try:
            uids = [f"b{b}-u{i}" for b in range(11) for i in range(50)]
            view = {
                uid: {k: json.loads(v) for k, v in st.attrs.items()}
                for uid, st in store.load(SYNC_NAME, uids).items()
            }
        finally:
            store.close()
        batches = committed_batches(view)
        assert batches == set(range(len(batches))), f"not a prefix at cut {cut}: {batches}"
        seen_prefixes.add(len(batches))
    assert len(seen_prefixes) > 1  # the cuts did land in different commits


def make_store_file(path: Path, version: int, schema: str) -> None:
    db = sqlite3.connect(path)
    db.executescript(schema)
    db.execute(f"PRAGMA user_version={version}")
    db.commit()
    db.close()


OLD_SCHEMA = """
CREATE TABLE user_state (sync_name TEXT, uid TEXT, attrs TEXT, PRIMARY KEY (sync_name, uid));
INSERT INTO user_state VALUES ('s', 'u1', '{"plan":"\\"gold\\""}');
"""


def test_a_store_without_schema_version_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    make_store_file(path, 0, OLD_SCHEMA)
    with pytest.raises(ConfigurationError, match="no schema version") as caught:
        SQLiteState(path)
    assert str(path) in str(caught.value)
    # Refusing must not touch the file.
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM user_state").fetchone()[0] == 1
    db.close()


def test_a_store_from_a_newer_version_is_refused_not_misread(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    make_store_file(path, 99, "CREATE TABLE user_state (x TEXT);")
    with pytest.raises(ConfigurationError, match="newer version") as caught:
        SQLiteState(path)
    assert "upgrade" in str(caught.value)


@pytest.mark.parametrize(
    "content",
    [b"not a database at all\n" * 50, b"SQLite format 3\x00" + b"\xff" * 200, b""],
    ids=["text", "torn-header", "empty"],
)
def test_a_corrupt_or_foreign_file_is_refused_or_started_fresh(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(content)
    if not content:
        store = SQLiteState(path)  # an empty file is a new database
        store.commit("s", [("u", {"a": "1"})])
        assert store.user_count("s") == 1
        store.close()
        return
    with pytest.raises(ConfigurationError, match="new file"):
        SQLiteState(path)
    assert path.read_bytes() == content  # left as it was


def test_another_applications_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    make_store_file(path, 0, "CREATE TABLE customers (id INTEGER);")
    with pytest.raises(ConfigurationError, match="not a sync state store"):
        SQLiteState(path)


V1_SCHEMA = """
CREATE TABLE user_state (sync_name TEXT NOT NULL, uid TEXT NOT NULL, attrs TEXT NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, updated_at REAL NOT NULL,
    PRIMARY KEY (sync_name, uid)) WITHOUT ROWID;
CREATE TABLE runs (run_id TEXT PRIMARY KEY, sync_name TEXT NOT NULL, started_at REAL NOT NULL,
    finished_at REAL, status TEXT NOT NULL, counts TEXT NOT NULL, error TEXT);
CREATE INDEX runs_by_sync ON runs (sync_name, started_at);
CREATE TABLE sync_meta (sync_name TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (sync_name, key)) WITHOUT ROWID;
INSERT INTO user_state VALUES ('s', 'u1', '{"plan":"\\"gold\\""}', 2, 'boom', 0);
INSERT INTO runs VALUES ('r1', 's', 1.0, 2.0, 'succeeded', '{"read": 1}', NULL);
"""


def test_a_store_written_by_schema_1_is_migrated_keeping_its_state(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    make_store_file(path, 1, V1_SCHEMA)
    store = SQLiteState(path)
    try:
        state = store.load("s", ["u1"])["u1"]
        assert state.attrs == {"plan": '"gold"'}
        assert state.failed_attempts == 2 and state.last_error == "boom"
        assert [r.run_id for r in store.runs("s")] == ["r1"]
    finally:
        store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] > 1  # migrated forward
    db.close()
