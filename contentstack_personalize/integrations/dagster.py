"""Dagster: a ``ConfigurableResource`` that runs the library's ``Sync`` inside an asset, with the
run's counts and status as materialization metadata, and failures as ``dagster.Failure``.

Example::

    from dagster import Definitions, EnvVar, asset
    from contentstack_personalize.integrations.dagster import PersonalizeResource

    @asset
    def personalize_users(personalize: PersonalizeResource, users):   # users: an upstream asset
        return personalize.run_sync(users, match_on="user_id", mapping={"plan": "plan"})

    defs = Definitions(
        assets=[personalize_users],
        resources={"personalize": PersonalizeResource(
            project_uid=EnvVar("CONTENTSTACK_PERSONALIZE_PROJECT_UID"),
            authtoken=EnvVar("CONTENTSTACK_AUTHTOKEN"),
            state=EnvVar("PERSONALIZE_STATE_URL"),
        )},
    )

Needs ``pip install 'contentstack-personalize[dagster]'``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dagster import (
    ConfigurableResource,
    Failure,
    MaterializeResult,
    MetadataValue,
)

from ..client import PersonalizeClient
from ..errors import PersonalizeError
from ..sync import Field, FieldSpec, Sync, SyncResult
from ._common import Outcome, make_client, outcome_of_error, outcome_of_result, result_metadata

__all__ = ["PersonalizeResource", "materialize_metadata"]

_RETRYABLE = ("retry", "busy", "interrupted", "internal")


def materialize_metadata(result: SyncResult) -> dict[str, Any]:
    """A run as Dagster metadata: every count, the status and a link-free summary."""
    meta = result_metadata(result)
    values: dict[str, Any] = {
        key: MetadataValue.int(value) for key, value in meta.items() if isinstance(value, int)
    }
    values["status"] = MetadataValue.text(result.status)
    values["sync_name"] = MetadataValue.text(result.sync_name)
    values["run_id"] = MetadataValue.text(result.run_id)
    values["duration_seconds"] = MetadataValue.float(float(meta["duration_seconds"]))
    lines = [f"**{result.status.replace('_', ' ')}**", ""]
    lines += ["| count | value |", "|---|---|"]
    lines += [
        f"| {k} | {v:,} |" for k, v in {**result.counts(), "requests": result.requests}.items()
    ]
    if result.error:
        lines += ["", f"error: {result.error}"]
    if meta["first_issues"]:
        lines += ["", "first issues:", ""] + [f"- {issue}" for issue in meta["first_issues"]]
    if meta["warnings"]:
        lines += ["", "warnings:", ""] + [f"- {w}" for w in meta["warnings"]]
    values["summary"] = MetadataValue.md("\n".join(lines))
    return values


def _failure(outcome: Outcome, description: str, result: SyncResult | None) -> Failure:
    metadata: dict[str, Any] = {"outcome": MetadataValue.text(outcome)}
    if result is not None:
        metadata.update(materialize_metadata(result))
    return Failure(
        description=description,
        metadata=metadata,
        # A RetryPolicy on the asset retries outages; retrying a configuration error or data
        # the API refuses would fail the same way.
        allow_retries=outcome in _RETRYABLE,
    )


class PersonalizeResource(ConfigurableResource):  # type: ignore[misc]
    """Credentials and state for syncs into one Personalize project.

    - ``project_uid``: the Personalize project UID.
    - ``authtoken``: a user authtoken, to check and create attributes (writing needs none).
    - ``region``: ``aws-na`` (default), ``eu``, ``au``, ``azure-na``, ``azure-eu``...
    - ``state``: where syncs remember what Personalize accepted.

    Give secrets as ``EnvVar("...")`` so they stay out of Dagster's stored run config.
    ``state`` is an SQLite path or a state URL (PostgreSQL for workers that come and go);
    without it every run sends every user again. ``edge_url`` / ``management_url`` point at
    another endpoint (the emulator in tests).
    """

    project_uid: str
    authtoken: str | None = None
    region: str | None = None
    state: str | None = None
    edge_url: str | None = None
    management_url: str | None = None

    def get_client(self) -> PersonalizeClient:
        """A client for this project (close it, or use ``with``)."""
        return make_client(
            self.project_uid,
            authtoken=self.authtoken,
            region=self.region,
            edge_url=self.edge_url,
            management_url=self.management_url,
        )

    def run_sync(
        self,
        rows: Any,
        *,
        match_on: str,
        mapping: Mapping[str, FieldSpec] | Sequence[Field],
        name: str | None = None,
        full: bool = False,
        fail_on_partial: bool = False,
        **sync_options: Any,
    ) -> MaterializeResult:
        """Sync ``rows`` (anything ``Sync.run`` takes) and return a ``MaterializeResult`` with
        the run as metadata. Raises ``dagster.Failure`` (with the same metadata) when the run
        failed or was aborted, and with ``fail_on_partial=True`` when some users were refused.
        ``sync_options`` are those of :class:`~contentstack_personalize.sync.Sync`.
        """
        try:
            with (
                self.get_client() as client,
                Sync(
                    client,
                    match_on=match_on,
                    mapping=mapping,
                    state=self.state,
                    name=name,
                    **sync_options,
                ) as sync,
            ):
                result = sync.run(rows, full=full, progress=False)
        except PersonalizeError as exc:
            partial = getattr(exc, "result", None)
            raise _failure(
                outcome_of_error(exc),
                f"Personalize sync failed: {exc}",
                partial if isinstance(partial, SyncResult) else None,
            ) from exc
        outcome = outcome_of_result(result)
        if outcome != "ok" and (outcome != "partial" or fail_on_partial):
            raise _failure(
                outcome,
                f"Personalize sync {result.status.replace('_', ' ')}: "
                f"{result.error or f'{result.rejected} users refused'}",
                result,
            )
        return MaterializeResult(metadata=materialize_metadata(result))
