"""Exit codes for every outcome a scheduler must tell apart (retry, fix, page someone)."""

from __future__ import annotations

import httpx
import pytest

from contentstack_personalize import errors
from contentstack_personalize.cli import (
    EXIT_ABORTED,
    EXIT_BUSY,
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_UNAVAILABLE,
    exit_code_for_error,
    exit_code_for_result,
)
from contentstack_personalize.sync import RowIssue, SyncResult


def result(
    status: str, *, rejected: tuple[RowIssue, ...] = (), error: str | None = None
) -> SyncResult:
    return SyncResult(
        run_id="r1",
        sync_name="s",
        status=status,  # type: ignore[arg-type]
        started_at=0.0,
        finished_at=1.0,
        read=10,
        invalid=0,
        unchanged=0,
        added=10 - len(rejected),
        changed=0,
        rejected=len(rejected),
        not_sent=0,
        retried=0,
        requests=10,
        invalid_rows=(),
        rejected_rows=rejected,
        error=error,
    )


def refused(status: int | None) -> RowIssue:
    return RowIssue(kind="rejected", row=1, uid="u1", reason="no", status=status)


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (result("succeeded"), EXIT_OK),
        (result("partially_failed", rejected=(refused(400),)), EXIT_PARTIAL),
        (result("failed", rejected=(refused(400), refused(422))), EXIT_FAILED),
        (result("failed", rejected=(refused(503), refused(None), refused(429))), EXIT_UNAVAILABLE),
        (result("aborted", rejected=(refused(400),), error="60 of 100 failed"), EXIT_ABORTED),
        (result("aborted", rejected=(refused(502),), error="60 of 100 failed"), EXIT_UNAVAILABLE),
        (result("aborted", error="AuthenticationError: 401 bad token"), EXIT_CONFIG),
        (result("aborted", error="NotFoundError: 404 [PROJECT_NOT_FOUND]"), EXIT_CONFIG),
        (result("aborted", error="interrupted (Ctrl-C)"), EXIT_INTERRUPTED),
        (
            result(
                "aborted",
                error="the pre-flight check against the Management API failed, nothing was "
                "sent: APIConnectionError: connection failed after 5 attempts",
            ),
            EXIT_UNAVAILABLE,
        ),
        (
            result("aborted", error="the pre-flight check ... failed: ServerError: 503 down"),
            EXIT_UNAVAILABLE,
        ),
        (result("aborted", error="the state store failed: disk full"), EXIT_UNAVAILABLE),
        (result("aborted", error="pre-flight: AuthenticationError: 401"), EXIT_CONFIG),
    ],
)
def test_exit_code_for_a_result(outcome: SyncResult, code: int) -> None:
    assert exit_code_for_result(outcome) == code


def status_error(cls: type[errors.APIStatusError], status: int) -> errors.APIStatusError:
    return cls("no", status_code=status)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.ConfigurationError("bad"), EXIT_CONFIG),
        (status_error(errors.AuthenticationError, 401), EXIT_CONFIG),
        (status_error(errors.PermissionDeniedError, 403), EXIT_CONFIG),
        (status_error(errors.NotFoundError, 404), EXIT_CONFIG),
        (status_error(errors.ServerError, 503), EXIT_UNAVAILABLE),
        (status_error(errors.RateLimitError, 429), EXIT_UNAVAILABLE),
        (status_error(errors.BadRequestError, 400), EXIT_FAILED),
        (errors.APIConnectionError("refused", request=httpx.Request("GET", "http://x")), 6),
        (errors.SyncAbortedError("stop", cause=KeyboardInterrupt()), EXIT_INTERRUPTED),
        (errors.SyncAbortedError("stop", result=result("aborted", error="x")), EXIT_ABORTED),
        (errors.PersonalizeError("another kind of library failure"), EXIT_UNAVAILABLE),
        # A run that stopped because of an API error: the error decides.
        (
            errors.SyncAbortedError(
                "stopped",
                result=result("aborted", error="x"),
                cause=errors.APIConnectionError("refused"),
            ),
            EXIT_UNAVAILABLE,
        ),
        (
            errors.SyncAbortedError(
                "stopped",
                result=result("aborted", error="x"),
                cause=status_error(errors.AuthenticationError, 401),
            ),
            EXIT_CONFIG,
        ),
        (KeyboardInterrupt(), EXIT_INTERRUPTED),
        (RuntimeError("bug"), EXIT_INTERNAL),
    ],
)
def test_exit_code_for_an_error(exc: BaseException, code: int) -> None:
    assert exit_code_for_error(exc) == code


def test_a_sync_already_running_is_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    busy = getattr(errors, "SyncInProgressError", None)
    if busy is None:  # the lock's error, as the engine raises it once runs take a lock

        class SyncInProgressError(errors.PersonalizeError):
            pass

        busy = SyncInProgressError
        monkeypatch.setattr(errors, "SyncInProgressError", busy, raising=False)
    exc = busy.__new__(busy)
    errors.PersonalizeError.__init__(exc, "another run holds the lock")
    assert exit_code_for_error(exc) == EXIT_BUSY
    assert exit_code_for_error(errors.SyncAbortedError("x", cause=exc)) == EXIT_BUSY


def test_every_exit_code_is_documented() -> None:
    from pathlib import Path

    from contentstack_personalize.cli import EXIT_CODES

    page = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    for code in EXIT_CODES:
        assert f"\n| {code} | " in page, f"exit code {code} is not in docs/cli.md"
