"""The command line, driven as cron or a container job would: a subprocess with credentials in its
environment, against the emulator served by another process."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from contentstack_personalize.cli import EXIT_CODES
from tests.integrations._emulator import (
    EXAMPLES,
    USERS_CSV,
    EmulatorProcess,
    clean_env,
    emulator_process,
)

MAPPING = """
[mapping]
plan = "plan"
lifetime_value = { key = "lifetime_value", type = "float" }
is_vip = { key = "is_vip", type = "bool" }
signup_date = { key = "signup_date", type = "date" }
email = { key = "email_domain", transform = "email_domain" }
"""


@pytest.fixture
def server() -> Iterator[EmulatorProcess]:
    with emulator_process() as running:
        yield running


def cli(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    module: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run the command line in its own process (``python -m`` or the console script)."""
    if module:
        command = [sys.executable, "-m", "contentstack_personalize", *args]
    else:
        script = Path(sys.executable).parent / "contentstack-personalize"
        command = [
            str(script if script.exists() else shutil.which("contentstack-personalize")),
            *args,
        ]
    return subprocess.run(
        command,
        env={**clean_env(), **(env or {})},
        cwd=cwd or Path(tempfile.gettempdir()),
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard, not a speed assertion
        check=False,
    )


def as_json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.stdout.count("\n") == 1, done.stdout + done.stderr
    data = json.loads(done.stdout)
    assert isinstance(data, dict)
    return data


def assert_no_secret(done: subprocess.CompletedProcess[str], *secrets: str) -> None:
    for secret in secrets:
        assert secret not in done.stdout and secret not in done.stderr


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_the_quickstart_sync_file_adds_then_sends_nothing(
    server: EmulatorProcess, tmp_path: Path
) -> None:
    toml = tmp_path / "users.sync.toml"
    shutil.copy(EXAMPLES / "users.sync.toml", toml)
    (tmp_path / "data").mkdir()
    shutil.copy(USERS_CSV, tmp_path / "data" / "users.csv")

    check = cli("check", str(toml), env=server.env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "check passed" in check.stdout

    first = cli("run", str(toml), env=server.env, module=False)  # the console script
    assert first.returncode == 0, first.stdout + first.stderr
    assert "succeeded" in first.stdout and "added             499" in first.stdout
    assert (tmp_path / "users_state.db").exists()  # relative to the sync file

    again = cli("run", str(toml), "--json", env=server.env)
    result = as_json(again)
    assert again.returncode == 0
    assert (result["exit_code"], result["status"], result["ok"]) == (0, "succeeded", True)
    assert (result["unchanged"], result["added"], result["requests"]) == (499, 0, 0)
    assert result["invalid"] == 5 and result["invalid_rows"][0]["row"] == 501

    history = as_json(cli("history", str(toml), "--json", env=server.env))
    assert [r["counts"]["added"] for r in history["runs"]] == [0, 499]
    human = cli("history", str(toml), env=server.env)
    assert human.returncode == 0 and human.stdout.count("succeeded") == 2
    for done in (check, first, again, human):
        assert_no_secret(done, server.authtoken)


def test_an_outage_exits_6_with_no_secret_in_the_output(
    server: EmulatorProcess, tmp_path: Path
) -> None:
    toml = write(
        tmp_path / "s.toml",
        f'match_on = "user_id"\nstate = "s.db"\ncreate_missing_attributes = true\n'
        f'[source]\ncsv = "{USERS_CSV.as_posix()}"\n{MAPPING}',
    )
    env = server.env
    server.stop()
    done = cli("run", str(toml), env=env)
    assert done.returncode == 6, done.stdout + done.stderr
    assert "exit 6: unavailable" in done.stderr and "Traceback" not in done.stderr
    assert_no_secret(done, env["CONTENTSTACK_AUTHTOKEN"])
    machine = cli("run", str(toml), "--json", env=env)
    body = as_json(machine)
    assert machine.returncode == body["exit_code"] == 6
    # The connection error itself, or the aborted run it caused (with it as the cause).
    assert "APIConnectionError" in json.dumps(body["error"])
    assert_no_secret(machine, env["CONTENTSTACK_AUTHTOKEN"])
    checked = cli("check", str(toml), env=env)
    assert checked.returncode == 6 and "FAIL  credentials" in checked.stdout


def test_plan_sends_nothing_and_reset_needs_yes(server: EmulatorProcess, tmp_path: Path) -> None:
    toml = write(
        tmp_path / "s.toml",
        f'match_on = "user_id"\nstate = "s.db"\ncreate_missing_attributes = true\n'
        f'[source]\ncsv = "{USERS_CSV.as_posix()}"\n{MAPPING}',
    )
    plan = cli("plan", str(toml), "--json", "--changes", "2", env=server.env)
    body = as_json(plan)
    assert (body["added"], body["requests"], len(body["changes"])) == (499, 499, 2)
    assert body["changes"][0] == {
        "uid": "u00001",
        "attribute": "plan",
        "old": None,
        "new": "free",
    }
    assert as_json(cli("run", str(toml), "--json", env=server.env))["added"] == 499

    refused = cli("reset", str(toml), env=server.env)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert cli("reset", str(toml), "--yes", env=server.env).returncode == 0
    # Forgotten: everything is sent again (as changes of nothing, i.e. additions).
    rerun = as_json(cli("run", str(toml), "--json", env=server.env))
    assert rerun["requests"] == 499


def test_a_sql_query_on_a_sqlite_database(server: EmulatorProcess, tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "warehouse.db")
    db.execute("CREATE TABLE users (id TEXT, tier TEXT, ltv REAL, active INTEGER)")
    db.executemany(
        "INSERT INTO users VALUES (?, ?, ?, ?)",
        [(f"w{i:03}", "gold" if i % 2 else "free", i * 1.5, i % 3) for i in range(50)],
    )
    db.commit()
    db.close()
    toml = write(
        tmp_path / "warehouse.sync.toml",
        'name = "warehouse/users"\nmatch_on = "id"\nstate = "state.db"\n'
        "create_missing_attributes = true\n"
        "[source]\n"
        'database = "sqlite:///warehouse.db"\n'
        'sql = "SELECT id, tier, ltv FROM users WHERE active > ?"\n'
        "params = [0]\n"
        "[mapping]\n"
        'tier = "plan"\n'
        'ltv = { key = "lifetime_value", type = "float" }\n'
        "[values]\n"
        'source = "warehouse"\n',
    )
    assert cli("check", str(toml), env=server.env).returncode == 0
    first = as_json(cli("run", str(toml), "--json", env=server.env))
    assert (first["read"], first["added"], first["status"]) == (33, 33, "succeeded")
    second = as_json(cli("run", str(toml), "--json", env=server.env))
    assert (second["unchanged"], second["requests"]) == (33, 0)


def test_a_parquet_file(server: EmulatorProcess, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"uid": [f"p{i}" for i in range(20)], "score": list(range(20))})
    pq.write_table(table, tmp_path / "users.parquet")
    toml = write(
        tmp_path / "p.toml",
        'match_on = "uid"\nstate = "p.db"\ncreate_missing_attributes = true\n'
        '[source]\nparquet = "users.parquet"\nbatch_size = 7\n'
        '[mapping]\nscore = { key = "score", type = "int" }\n',
    )
    first = as_json(cli("run", str(toml), "--json", env=server.env))
    assert (first["read"], first["added"]) == (20, 20)
    assert as_json(cli("run", str(toml), "--json", env=server.env))["requests"] == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('match_on = "user_id"\nstat = "x.db"\n', "stat: unknown setting"),
        ('match_on = "user_id"\n[mapping]\na = "a"\n', "source: missing"),
        ('[source]\ncsv = "u.csv"\n[mapping]\na = "a"\n', "match_on: required"),
        (
            'match_on = "u"\nauthtoken = "blt123"\n[source]\ncsv = "u.csv"\n[mapping]\na = "a"\n',
            "authtoken: credentials come from the environment only",
        ),
        (
            'match_on = "u"\n[source]\ncsv = "u.csv"\n[mapping]\na = { key = "a", typ = "int" }\n',
            "mapping.a.typ: unknown field option",
        ),
        (
            'match_on = "u"\n[source]\ncsv = "u.csv"\n[mapping]\na = { transform = "nope" }\n',
            "mapping.a.transform: unknown transform 'nope'",
        ),
        (
            'match_on = "u"\n[source]\nsql = "SELECT 1"\n'
            'database = "postgresql://etl:hunter2@db/warehouse"\n[mapping]\na = "a"\n',
            "source.database: holds a password",
        ),
        (
            'match_on = "u"\n[source]\nsql = "SELECT 1"\ndatabase = "${NO_SUCH_VAR_X}"\n'
            '[mapping]\na = "a"\n',
            "environment variable NO_SUCH_VAR_X is not set",
        ),
        (
            'match_on = "u"\n[source]\ncsv = "u.csv"\n[mapping]\na = "a"\n'
            '[[alerts.rules]]\ntype = "run_failed"\n'
            '[[alerts.sinks]]\ntype = "slack"\nurl = "https://hooks.slack.com/services/T/B/hunter2"\n',
            "alerts.sinks[0].url: is a secret",
        ),
        ('match_on = "u"\n[source]\n[mapping]\na = "a"\n', "needs exactly one of csv"),
        ("match_on = [", "not valid TOML"),
    ],
)
def test_a_bad_sync_file_exits_3_naming_the_setting(
    tmp_path: Path, body: str, message: str
) -> None:
    toml = write(tmp_path / "bad.toml", body)
    done = cli("check", str(toml), env={"CONTENTSTACK_PERSONALIZE_PROJECT_UID": "a" * 24})
    assert done.returncode == 3, done.stdout + done.stderr
    assert message in done.stderr and "exit 3: configuration" in done.stderr
    assert "hunter2" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_check_finds_missing_columns_and_attributes(
    server: EmulatorProcess, tmp_path: Path
) -> None:
    toml = write(
        tmp_path / "s.toml",
        f'match_on = "user_id"\nstate = "s.db"\n[source]\ncsv = "{USERS_CSV.as_posix()}"\n'
        '[mapping]\nplan = "plan"\ntier = "tier"\n',
    )
    done = cli("check", str(toml), "--json", env=server.env)
    body = as_json(done)
    assert done.returncode == body["exit_code"] == 3
    failed = {c["check"]: c["detail"] for c in body["checks"] if c["ok"] is False}
    assert "missing column(s) tier" in failed["source"]
    assert "not custom attributes of the project: plan, tier" in failed["attributes"]


def test_no_project_in_the_environment_exits_3(tmp_path: Path) -> None:
    toml = write(
        tmp_path / "s.toml",
        f'match_on = "user_id"\n[source]\ncsv = "{USERS_CSV.as_posix()}"\n'
        '[mapping]\nplan = "plan"\n',
    )
    done = cli("run", str(toml))
    assert done.returncode == 3
    assert "CONTENTSTACK_PERSONALIZE_PROJECT_UID" in done.stderr


def test_a_missing_sync_file_and_bad_arguments(tmp_path: Path) -> None:
    missing = cli("run", str(tmp_path / "nope.toml"))
    assert missing.returncode == 3 and "sync file not found" in missing.stderr
    assert cli("launch", "x.toml").returncode == 2
    helped = cli("--help")
    assert helped.returncode == 0 and "exit codes:" in helped.stdout
    for code in EXIT_CODES:
        assert f"{code:>3}  " in helped.stdout


def test_progress_is_shown_when_asked(server: EmulatorProcess, tmp_path: Path) -> None:
    toml = write(
        tmp_path / "s.toml",
        f'match_on = "user_id"\nstate = "s.db"\ncreate_missing_attributes = true\n'
        f'[source]\ncsv = "{USERS_CSV.as_posix()}"\n[mapping]\nplan = "plan"\n',
    )
    quiet = cli("run", str(toml), env=server.env)  # not a terminal: clean logs
    assert quiet.returncode == 0 and quiet.stderr == ""
    shown = cli("run", str(toml), "--full", "--progress", env=server.env)
    assert shown.returncode == 0 and "504" in shown.stderr  # rows done, on stderr


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_alerts_from_the_file_fire_on_an_outage(server: EmulatorProcess, tmp_path: Path) -> None:
    hook = HTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received = []
    thread = threading.Thread(target=hook.serve_forever, daemon=True)
    thread.start()
    try:
        toml = write(
            tmp_path / "s.toml",
            f'match_on = "user_id"\nstate = "s.db"\ncreate_missing_attributes = true\n'
            f'[source]\ncsv = "{USERS_CSV.as_posix()}"\n[mapping]\nplan = "plan"\n'
            '[[alerts.rules]]\ntype = "run_failed"\nseverity = "critical"\n'
            '[[alerts.sinks]]\ntype = "webhook"\nurl = "${HOOK_URL}"\nsecret = "${HOOK_SECRET}"\n',
        )
        env = {
            **server.env,
            "HOOK_URL": f"http://127.0.0.1:{hook.server_address[1]}/hook",
            "HOOK_SECRET": "s3cr3t-hook-key",
        }
        assert cli("run", str(toml), env=env).returncode == 0
        assert _Hook.received == []  # a good run alerts nobody
        server.stop()
        done = cli("run", str(toml), "--json", env=env)
        assert done.returncode == 6
        assert len(_Hook.received) == 1
        headers, body = _Hook.received[0]
        alert = json.loads(body)
        assert (alert["rule"], alert["action"], alert["severity"]) == (
            "run_failed",
            "trigger",
            "critical",
        )
        assert headers["X-Signature-256"].startswith("sha256=")
        assert_no_secret(done, "s3cr3t-hook-key", env["CONTENTSTACK_AUTHTOKEN"])
    finally:
        hook.shutdown()
        hook.server_close()


def test_a_second_run_while_one_holds_the_lock_exits_8(tmp_path: Path) -> None:
    with emulator_process("--latency", "0.1") as slow:
        toml = write(
            tmp_path / "s.toml",
            f'match_on = "user_id"\nstate = "s.db"\ncreate_missing_attributes = true\n'
            f'concurrency = 4\n[source]\ncsv = "{USERS_CSV.as_posix()}"\n{MAPPING}',
        )
        command = [sys.executable, "-m", "contentstack_personalize", "run", str(toml)]
        first = subprocess.Popen(
            command,
            env={**clean_env(), **slow.env},
            cwd=tempfile.gettempdir(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # Wait until the first run is under way (its record says "running").
            for _ in range(600):
                history = cli("history", str(toml), "--json", env=slow.env)
                if history.returncode == 0 and any(
                    r["status"] == "running" for r in as_json(history)["runs"]
                ):
                    break
                assert first.poll() is None, first.communicate()
            second = cli("run", str(toml), "--json", env=slow.env)
            body = as_json(second)
            assert second.returncode == body["exit_code"] == 8, body
            assert "SyncInProgressError" in json.dumps(body["error"])
        finally:
            out, err = first.communicate(timeout=600)
        assert first.returncode == 0, out + err
