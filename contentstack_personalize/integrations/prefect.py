"""Prefect: a credentials ``Block`` (secrets as ``SecretStr``) and a task that runs the library's
``Sync``, reporting the run as a Markdown artifact and retrying only what can succeed.

Example::

    from prefect import flow
    from contentstack_personalize.integrations.prefect import (
        PersonalizeCredentials, personalize_sync,
    )

    @flow
    def users_to_personalize():
        credentials = PersonalizeCredentials.load("production")
        return personalize_sync(credentials, "users.csv", match_on="user_id",
                                mapping={"plan": "plan"})

Needs ``pip install 'contentstack-personalize[prefect]'``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.blocks.core import Block
from prefect.cache_policies import NO_CACHE
from pydantic import Field as BlockField
from pydantic import SecretStr

from ..client import PersonalizeClient
from ..errors import PersonalizeError
from ..sync import Field, FieldSpec, Sync, SyncResult
from ._common import Outcome, make_client, outcome_of_error, outcome_of_result, result_metadata

__all__ = ["PersonalizeCredentials", "PersonalizeSyncFailed", "personalize_sync"]

_RETRYABLE = ("retry", "busy", "interrupted")


class PersonalizeCredentials(Block):  # type: ignore[misc]
    """Where and as whom to sync: a Personalize project, its credentials, and the sync state.

    Save one per project (``PersonalizeCredentials(...).save("production")``) and load it in
    flows (``PersonalizeCredentials.load("production")``); the UI shows the secrets masked.
    """

    _block_type_name = "Contentstack Personalize Credentials"
    _block_type_slug = "contentstack-personalize-credentials"
    _description = (
        "A Contentstack Personalize project, the authtoken to manage its attributes, and where "
        "syncs keep their state."
    )

    project_uid: str = BlockField(description="The Personalize project UID.")
    authtoken: SecretStr | None = BlockField(
        default=None,
        description="A user authtoken, to check and create attributes (writing needs none).",
    )
    region: str | None = BlockField(default=None, description="aws-na (default), eu, au...")
    state: SecretStr | None = BlockField(
        default=None,
        description="An SQLite path or a state URL (PostgreSQL for ephemeral workers).",
    )
    edge_url: str | None = BlockField(default=None, description="Another Edge API endpoint.")
    management_url: str | None = BlockField(
        default=None, description="Another Management API endpoint."
    )

    def get_client(self) -> PersonalizeClient:
        """A client for this project (close it, or use ``with``)."""
        return make_client(
            self.project_uid,
            authtoken=self.authtoken.get_secret_value() if self.authtoken else None,
            region=self.region,
            edge_url=self.edge_url,
            management_url=self.management_url,
        )

    def state_value(self) -> str | None:
        """The ``state=`` to give a ``Sync``."""
        return self.state.get_secret_value() if self.state else None


class PersonalizeSyncFailed(Exception):
    """A sync run failed. ``outcome`` says why (``config``, ``retry``, ``busy``, ``refused``,
    ``partial``...), ``retryable`` whether trying again can help, ``metadata`` holds the run's
    counts when it got that far."""

    def __init__(self, message: str, *, outcome: Outcome, metadata: dict[str, Any] | None = None):
        super().__init__(message)
        self.outcome = outcome
        self.retryable = outcome in _RETRYABLE
        self.metadata = metadata or {}


def _retry_only_outages(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's retry condition: retry outages and a busy sync, never a configuration error."""
    try:
        state.result()
    except PersonalizeSyncFailed as exc:
        return exc.retryable
    except Exception:
        return True
    return False


def _artifact(result: SyncResult, key: str | None) -> None:
    meta = result_metadata(result)
    lines = [
        f"### Personalize sync `{result.sync_name}`: {result.status.replace('_', ' ')}",
        "",
        "| count | value |",
        "|---|---|",
        *(f"| {k} | {v:,} |" for k, v in {**result.counts(), "requests": result.requests}.items()),
        "",
        f"run `{result.run_id}`, {meta['duration_seconds']} s",
    ]
    if result.error:
        lines += ["", f"error: {result.error}"]
    if meta["first_issues"]:
        lines += ["", "first issues:", "", *(f"- {issue}" for issue in meta["first_issues"])]
    if meta["warnings"]:
        lines += ["", "warnings:", "", *(f"- {w}" for w in meta["warnings"])]
    slug = re.sub(r"[^a-z0-9-]+", "-", f"personalize-{result.sync_name}".lower()).strip("-")
    create_markdown_artifact(
        markdown="\n".join(lines),
        key=key or slug,
        description=f"Personalize sync {result.sync_name}: {result.status}",
    )


@task(  # type: ignore[misc,untyped-decorator,unused-ignore]
    name="personalize-sync",
    cache_policy=NO_CACHE,
    retry_condition_fn=_retry_only_outages,
)
def personalize_sync(
    credentials: PersonalizeCredentials,
    rows: Any,
    *,
    match_on: str,
    mapping: Mapping[str, FieldSpec] | Sequence[Field],
    name: str | None = None,
    full: bool = False,
    fail_on_partial: bool = False,
    artifact_key: str | None = None,
    **sync_options: Any,
) -> dict[str, Any]:
    """Sync ``rows`` (anything ``Sync.run`` takes: rows, a DataFrame, a CSV path,
    ``from_sql(...)``) and return the run's status and counts.

    The run is published as a Markdown artifact (key ``artifact_key``, default
    ``personalize-<sync name>``). Raises :class:`PersonalizeSyncFailed` when the run failed or
    was aborted (and with ``fail_on_partial=True`` when some users were refused). Give the task
    retries with ``personalize_sync.with_options(retries=3, retry_delay_seconds=300)``: only
    outages and a busy sync are retried. ``sync_options`` are those of
    :class:`~contentstack_personalize.sync.Sync`.
    """
    logger = get_run_logger()
    try:
        with (
            credentials.get_client() as client,
            Sync(
                client,
                match_on=match_on,
                mapping=mapping,
                state=credentials.state_value(),
                name=name,
                **sync_options,
            ) as sync,
        ):
            result = sync.run(rows, full=full, progress=False)
    except PersonalizeError as exc:
        partial = getattr(exc, "result", None)
        metadata = None
        if isinstance(partial, SyncResult):
            _artifact(partial, artifact_key)
            metadata = result_metadata(partial)
        outcome = outcome_of_error(exc)
        logger.error("Personalize sync failed (%s): %s", outcome, exc)
        raise PersonalizeSyncFailed(
            f"Personalize sync failed: {exc}", outcome=outcome, metadata=metadata
        ) from exc
    _artifact(result, artifact_key)
    outcome = outcome_of_result(result)
    line = f"Personalize sync {result.sync_name!r} run {result.run_id}: {result.status}; " + (
        ", ".join(f"{k} {v}" for k, v in {**result.counts(), "requests": result.requests}.items())
    )
    if outcome != "ok" and (outcome != "partial" or fail_on_partial):
        logger.error(line)
        raise PersonalizeSyncFailed(
            f"{line}; {result.error or 'users were refused'}",
            outcome=outcome,
            metadata=result_metadata(result),
        )
    (logger.warning if outcome == "partial" else logger.info)(line)
    return {key: value for key, value in result_metadata(result).items()}
