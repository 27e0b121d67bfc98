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
