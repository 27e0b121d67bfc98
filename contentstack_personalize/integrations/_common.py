"""What every integration shares: a client from the tool's credentials, the outcome of a run in
words a scheduler acts on, and a summary of a result fit for the tool's metadata."""

from __future__ import annotations

from typing import Any, Literal

from ..auth import AuthToken
from ..cli import (
    EXIT_BUSY,
    EXIT_CONFIG,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_UNAVAILABLE,
    exit_code_for_error,
    exit_code_for_result,
)
from ..client import PersonalizeClient
from ..sync import SyncResult

__all__ = ["Outcome", "make_client", "outcome_of_error", "outcome_of_result", "result_metadata"]

#: ``ok``: nothing to do; ``partial``: some users refused, the next run retries them;
#: ``config``: fix the setup, retrying will not help; ``retry``: the service or the state store
#: was unavailable, try again later; ``refused``: Personalize refused what was sent (data);
#: ``busy``: another run of the same sync holds its lock; ``interrupted``; ``internal``: a bug.
Outcome = Literal["ok", "partial", "config", "retry", "refused", "busy", "interrupted", "internal"]

_BY_CODE: dict[int, Outcome] = {
    EXIT_OK: "ok",
    EXIT_PARTIAL: "partial",
    EXIT_CONFIG: "config",
    EXIT_UNAVAILABLE: "retry",
    EXIT_BUSY: "busy",
    EXIT_INTERRUPTED: "interrupted",
}


def outcome_of_result(result: SyncResult) -> Outcome:
    """What a finished (or aborted) run means for a scheduler."""
    return _BY_CODE.get(exit_code_for_result(result), "refused")


def outcome_of_error(exc: BaseException) -> Outcome:
    """What an exception from a run means for a scheduler."""
    code = exit_code_for_error(exc)
    if code == 1:
        return "internal"
    return _BY_CODE.get(code, "refused")


def make_client(
    project_uid: str,
    *,
    authtoken: str | None = None,
    region: str | None = None,
    edge_url: str | None = None,
    management_url: str | None = None,
) -> PersonalizeClient:
    """A client from credentials a tool keeps (its connections, blocks, resources or secrets),
    ignoring the process environment so that what the tool says is what is used."""
    return PersonalizeClient(
        project_uid,
        auth=AuthToken(authtoken) if authtoken else None,
        region=region or None,
        edge_url=edge_url or None,
        management_url=management_url or None,
        read_env=False,
    )


def result_metadata(result: SyncResult, *, max_issues: int = 5) -> dict[str, Any]:
    """A flat, JSON-safe, link-free summary of a run: status, counts, timing, first issues."""
    issues = [*result.invalid_rows[:max_issues], *result.rejected_rows[:max_issues]]
    return {
        "sync_name": result.sync_name,
        "run_id": result.run_id,
        "status": result.status,
        **result.counts(),
        "requests": result.requests,
        "duration_seconds": round(result.duration, 3),
        "error": result.error,
        "warnings": list(result.warnings),
        "first_issues": [f"{i.kind}: row {i.row} uid={i.uid!r}: {i.reason}" for i in issues],
    }
