"""The command line: flags become emulator settings (no server started here)."""

from __future__ import annotations

import pytest

from contentstack_personalize.testing import Faults
from contentstack_personalize.testing.__main__ import build


def test_fault_flags() -> None:
    emulator, _ = build(
        [
            "--server-error-rate",
            "0.2",
            "--server-error-applied",
            "1.0",
            "--applied-before-failure",
            "0.0",
            "--fail-nth",
            "3=502",
            "--fail-nth",
            "5=timeout",
        ]
    )
    assert emulator.faults == Faults(
        server_error=0.2,
        server_error_applied=1.0,
        applied_before_failure=0.0,
        fail_nth={3: 502, 5: "timeout"},
    )


def test_no_fault_flags_no_faults() -> None:
    emulator, _ = build([])
    assert emulator.faults is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fail-nth", "three=500"], "use N=FAILURE"),
        (["--fail-nth", "1=explode"], "unknown failure 'explode'"),
        (["--server-error-applied", "2"], "server_error_applied must be between 0 and 1"),
    ],
)
def test_bad_fault_flags_exit_with_usage(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        build(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_switch_flags() -> None:
    emulator, _ = build(
        [
            "--string-case",
            "insensitive",
            "--edge-validation",
            "lenient",
            "--merge-source",
            "delete",
            "--management-validation",
            "lenient",
            "--no-retry-after",
            "--no-refresh-token-rotation",
        ]
    )
    switches = emulator.describe()["switches"]
    assert switches["string_case"] == "insensitive"
    assert switches["edge_validation"] == "lenient"
    assert switches["merge_source"] == "delete"
    assert switches["management_validation"] == "lenient"
    assert switches["retry_after_header"] is False
    assert switches["refresh_token_rotation"] is False


def test_switch_defaults_are_the_documented_ones() -> None:
    emulator, _ = build([])
    assert emulator.describe()["switches"] == {
        "unknown_attribute": "accept",
        "null_value": "delete",
        "unknown_event": "accept",
        "audience_matching": "strict",
        "content_type": "any",
        "string_case": "sensitive",
        "edge_validation": "strict",
        "merge_source": "keep",
        "management_validation": "strict",
        "retry_after_header": True,
        "refresh_token_rotation": True,
        "management_rate_limit": 10.0,
        "attribute_limit": 100,
        "oauth_expires_in": 3600,
    }
