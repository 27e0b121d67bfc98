"""Every script in ``examples/`` runs, as a user would run it, against the bundled emulator.

Each example is started as a subprocess (its own interpreter, its own event loop, a loopback
emulator server) from a scratch working directory, and must exit 0 and print what its docstring
promises. A new example without an entry in ``EXPECTED`` fails ``test_every_example_is_tested``.
An example that needs an optional extra (pandas...) is skipped when the extra is not installed.
"""

from __future__ import annotations

import ast
import functools
import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from contentstack_personalize import (
    ConfigurationError,
    PersonalizeClient,
    RetryPolicy,
    SyncAbortedError,
)
from contentstack_personalize.testing import PersonalizeEmulator
from tests._invariants import assert_accounted

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: script -> regular expressions its standard output must match.
EXPECTED: dict[str, list[str]] = {
    "quickstart.py": [
        r"1\. Planning a sync of users\.csv",
        r"added\s+499\b",
        r"3\. Changing 2 users .* and syncing again",
        r"changed\s+2\b",
        r"In Personalize now, user u00001: .*'plan': 'enterprise'",
    ],
    "sync_csv.py": [
        r"succeeded",
        r"added\s+499\b",
        r"invalid\s+5\b",
        r"row 503 uid='u00777': column 'lifetime_value': 'lots' is not a number",
    ],
    "dataframe_notebook.py": [
        r"added\s+500\b",
        r"second run: 1 changed, 499 unchanged, 1 requests",
        r"HTML report written to sync_report\.html",
    ],
    "warehouse_sqlite.py": [
        r"added\s+200\b",
        r"unchanged\s+199\b",
        r"changed\s+1\b",
    ],
    "audience_membership.py": [
        r"audience 'Segment: vip' \(\w{24}\) <- segments contains \|vip\|",
        r"in 'vip' today: \['m001', 'm002'\]",  # 'vip-lapsed' m004 is not matched
        r"in 'vip' tomorrow: \['m002'\]",  # m001 left every segment
    ],
    "orchestrator_task.py": [r"first run: ", r"second run: "],
}


#: What every example may import without an extra: the package, its dependencies and the
#: examples' own helper module.
BASE_MODULES = {"contentstack_personalize", "httpx", "attrs", "typing_extensions", "_demo"}

#: Optional modules an example needs without importing them itself (e.g. ``to_pandas()``).
INDIRECT_NEEDS: dict[str, set[str]] = {"dataframe_notebook.py": {"pandas"}}


def needed_extras(name: str) -> set[str]:
    """The optional top-level modules example ``name`` imports (or needs indirectly)."""
    tree = ast.parse((EXAMPLES / name).read_text(encoding="utf-8"))
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module.split(".")[0])
    optional = modules - BASE_MODULES - set(sys.stdlib_module_names) - {"__future__"}
    return optional | INDIRECT_NEEDS.get(name, set())


def skip_unless_installed(name: str) -> None:
    """Skip the calling test when example ``name`` needs an extra this environment lacks."""
    for module in sorted(needed_extras(name)):
        pytest.importorskip(module, reason=f"examples/{name} needs {module}")


def clean_env() -> dict[str, str]:
    """The test runner's environment without any Contentstack setting of the developer's."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CONTENTSTACK_")}


def run_example(
    name: str, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard, not a speed assertion
        check=False,
    )


def test_every_example_is_tested() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(EXPECTED), "add new examples to EXPECTED in tests/test_examples.py"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_against_the_emulator(name: str, tmp_path: Path) -> None:
    skip_unless_installed(name)
    done = run_example(name, cwd=tmp_path)
    assert done.returncode == 0, f"{name} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    for pattern in EXPECTED[name]:
        assert re.search(pattern, done.stdout), f"{name}: no {pattern!r} in:\n{done.stdout}"


def test_dataframe_example_writes_the_html_report(tmp_path: Path) -> None:
    skip_unless_installed("dataframe_notebook.py")
    done = run_example("dataframe_notebook.py", "--html", "report.html", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>")
    assert "<h2>Plan</h2>" in page and "<h2>Second run</h2>" in page
    assert "u00042" in page  # the duplicated UID, listed among the rows not synced


def test_orchestrator_example_prints_json_counts_that_add_up(tmp_path: Path) -> None:
    skip_unless_installed("orchestrator_task.py")
    done = run_example("orchestrator_task.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(":", 1) for line in done.stdout.splitlines() if "run:" in line)
    first, second = json.loads(lines["first run"]), json.loads(lines["second run"])
    assert_accounted(first, read=504)
    assert_accounted(second, read=504)
    assert (first["status"], first["added"]) == ("succeeded", 499)
    assert (second["unchanged"], second["requests"]) == (499, 0)


def test_sync_csv_with_a_missing_file_says_so_and_exits_2(tmp_path: Path) -> None:
    skip_unless_installed("sync_csv.py")
    done = run_example("sync_csv.py", str(tmp_path / "nope.csv"), cwd=tmp_path)
    assert done.returncode == 2
    assert "cannot open CSV file" in done.stderr and "nope.csv" in done.stderr
    assert "Traceback" not in done.stderr


def test_real_mode_without_a_project_tells_what_to_set(tmp_path: Path) -> None:
    skip_unless_installed("sync_csv.py")
    done = run_example("sync_csv.py", "--real", cwd=tmp_path)
    assert done.returncode == 1
    assert "CONTENTSTACK_PERSONALIZE_PROJECT_UID" in done.stderr
    assert not (tmp_path / "users_sync.db").exists()  # nothing was started


# -- the scheduler task, called in-process as Airflow or Dagster would ---------------------------


@pytest.fixture
def orchestrator(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, PersonalizeEmulator]]:
    for name in [k for k in os.environ if k.startswith("CONTENTSTACK_")]:
        monkeypatch.delenv(name)
    skip_unless_installed("orchestrator_task.py")
    monkeypatch.syspath_prepend(str(EXAMPLES))
    orchestrator_task = importlib.import_module("orchestrator_task")

    emulator = PersonalizeEmulator(unknown_attribute="reject")
    with emulator.serve() as server:
        monkeypatch.setenv("CONTENTSTACK_PERSONALIZE_PROJECT_UID", emulator.project_uid)
        monkeypatch.setenv("CONTENTSTACK_AUTHTOKEN", emulator.authtoken)
        monkeypatch.setenv("CONTENTSTACK_PERSONALIZE_EDGE_URL", server.edge_url)
        monkeypatch.setenv("CONTENTSTACK_PERSONALIZE_MANAGEMENT_URL", server.management_url)
        yield orchestrator_task, emulator


def test_sync_users_task_returns_counts_and_syncs(
    orchestrator: tuple[Any, PersonalizeEmulator], tmp_path: Path
) -> None:
    module, emulator = orchestrator
    params = {"state": str(tmp_path / "state.db")}
    counts = module.sync_users(run_id="manual__1", params=params, ds="2025-06-01")
    assert json.loads(json.dumps(counts)) == counts  # XCom-safe
    assert counts["status"] == "succeeded" and counts["added"] == 499
    assert emulator.user_attributes("u00003") == {"plan": "enterprise", "lifetime_value": 3916.87}
    again = module.sync_users(run_id="manual__2", params=params)
    assert again["requests"] == 0 and again["unchanged"] == 499


def test_sync_users_task_fails_loudly_on_a_bad_source(
    orchestrator: tuple[Any, PersonalizeEmulator], tmp_path: Path
) -> None:
    module, emulator = orchestrator
    params = {"state": str(tmp_path / "state.db"), "csv": str(tmp_path / "missing.csv")}
    with pytest.raises(ConfigurationError, match="cannot open CSV file"):
        module.sync_users(params=params)
    assert emulator.users() == {}


def test_sync_users_task_alerts_once_per_outage_through_the_sync(
    orchestrator: tuple[Any, PersonalizeEmulator],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With SLACK_WEBHOOK_URL set, the task's Sync alerts: an Edge outage that aborts two
    scheduled attempts posts one message (run_failed, naming rejected_above_5); the next good
    run posts the resolve."""
    module, emulator = orchestrator
    # Retries without waiting: the outage is about alerts, not about the retry schedule.
    fast = functools.partial(PersonalizeClient, retry=RetryPolicy(sleep=False, max_attempts=2))
    monkeypatch.setattr(module, "PersonalizeClient", fast)
    hook = "https://hooks.slack.com/services/T0/B0/orchestrator"
    monkeypatch.setenv("SLACK_WEBHOOK_URL", hook)
    params = {"state": str(tmp_path / "state.db")}
    with respx.mock(assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()  # the emulator
        slack = router.post(hook).mock(return_value=httpx.Response(200, text="ok"))
        module.sync_users(run_id="1", params=params)
        assert slack.call_count == 0
        emulator.set_faults(outage=True, apply_to={"edge"})
        changed = tmp_path / "changed.csv"
        text = (EXAMPLES / "data" / "users.csv").read_text()
        changed.write_text(text.replace("pro", "enterprise"))  # many users to send again
        for attempt in ("2", "2-retry"):
            with pytest.raises(SyncAbortedError):
                module.sync_users(run_id=attempt, params={**params, "csv": str(changed)})
        emulator.set_faults()
        module.sync_users(run_id="3", params={**params, "csv": str(changed)})
    texts = [json.loads(call.request.content)["text"] for call in slack.calls]
    assert len(texts) == 2, texts
    assert "run_failed" in texts[0] and "rejected_above_5" in texts[0]
    assert "RESOLVED" in texts[1] and "run_failed" in texts[1]
