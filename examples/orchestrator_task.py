"""Embedding the engine in another tool's task: an Airflow- or Dagster-style function.

    python examples/orchestrator_task.py [--real]

``sync_users(**context)`` is what a scheduler calls. It takes its configuration from the
environment (credentials, like any production job) and from the task's ``params``, runs one
incremental sync and returns the counts as a plain dict, which Airflow stores as the task's
XCom and Dagster as the op's output. A run the API aborted raises ``SyncAbortedError``, and a run
where every sent row was refused raises ``RuntimeError``, so the scheduler marks the task failed
and retries it; the next attempt sends only what was not acknowledged.

Airflow::

    from airflow.decorators import task
    sync_users_task = task(sync_users)          # in a DAG: sync_users_task(params={...})

Dagster::

    from dagster import op
    @op
    def sync_users_op(context) -> dict:
        return sync_users(run_id=context.run_id)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from _demo import personalize_environment

from contentstack_personalize import PersonalizeClient
from contentstack_personalize.alerts import (
    Alerts,
    RejectedAbove,
    RowsDropped,
    RunFailed,
    SlackWebhook,
)
from contentstack_personalize.sync import Field, Sync, from_csv

logger = logging.getLogger(__name__)

DEFAULT_CSV = Path(__file__).parent / "data" / "users.csv"
MAPPING: dict[str, str | Field] = {
    "plan": "plan",
    "lifetime_value": Field("lifetime_value", type=float),
}


def alerts_from_env() -> Alerts | None:
    """The team's alerts when ``SLACK_WEBHOOK_URL`` is set (the demo leaves it unset).

    Given to the ``Sync``, they judge every run, also one that raises (the scheduler's retry
    does not page anyone twice: each problem is told once, and once more when fixed).
    """
    url = os.environ.get("SLACK_WEBHOOK_URL")
    if not url:
        return None
    return Alerts(
        rules=[RunFailed(severity="critical"), RejectedAbove(percent=5), RowsDropped(percent=50)],
        sinks=[SlackWebhook(url)],
    )


def sync_users(**context: Any) -> dict[str, Any]:
    """Sync the users model once; return ``{"status": ..., "read": ..., "added": ..., ...}``.

    ``context["params"]`` may hold ``csv`` (the model's export) and ``state`` (the state file);
    ``PERSONALIZE_SYNC_STATE`` is the fallback. Keep the state file on storage that outlives
    the worker (a mounted volume), or every run sends everything again.
    """
    params = context.get("params") or {}
    csv_path = params.get("csv", DEFAULT_CSV)
    state = params.get("state") or os.environ.get("PERSONALIZE_SYNC_STATE", "users_sync.db")
    with (
        PersonalizeClient() as client,
        Sync(
            client,
            match_on="user_id",
            mapping=MAPPING,
            state=str(state),
            name="orchestrator/users",
            create_missing_attributes=True,
            alerts=alerts_from_env(),
        ) as sync,
    ):
        result = sync.run(from_csv(csv_path))  # raises SyncAbortedError when the run stops early
    logger.info("sync run %s (%s): %s", result.run_id, context.get("run_id"), result.summary())
    if result.status == "failed":
        raise RuntimeError(
            f"every row sent was refused: {result.rejected} rejected; first: "
            f"{result.rejected_rows[0].reason if result.rejected_rows else 'unknown'}"
        )
    return {"status": result.status, **result.counts(), "requests": result.requests}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="use the project in the environment")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    with tempfile.TemporaryDirectory() as tmp, personalize_environment(args.real):
        params = {} if args.real else {"state": str(Path(tmp) / "state.db")}
        # What the scheduler would do on two consecutive schedules.
        first = sync_users(run_id="scheduled__2025-06-01", params=params)
        second = sync_users(run_id="scheduled__2025-06-02", params=params)
    print("first run: ", json.dumps(first))
    print("second run:", json.dumps(second))
    return 0 if first["status"] == "succeeded" and second["requests"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
