"""The bundled emulator served by another process (``python -m contentstack_personalize.testing``),
the way a scheduler's worker would meet a real Personalize: over loopback HTTP, credentials in the
environment. Shared by the command line's tests and by each integration's own environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
USERS_CSV = EXAMPLES / "data" / "users.csv"


class EmulatorProcess:
    """A running emulator server; ``env`` holds the variables a client reads."""

    def __init__(self, *extra_args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "contentstack_personalize.testing", "--port", "0", *extra_args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=clean_env(),
        )
        self.info: dict[str, str] = {}
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        while "authtoken" not in self.info:
            line = self.proc.stdout.readline()
            if not line:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the emulator did not start: {self.info}")
                continue
            match = re.match(r"\s+(\w+):\s+(\S+)", line)
            if match:
                self.info[match.group(1)] = match.group(2)

    @property
    def authtoken(self) -> str:
        return self.info["authtoken"]

    @property
    def project_uid(self) -> str:
        return self.info["project_uid"]

    @property
    def env(self) -> dict[str, str]:
        """The variables a ``PersonalizeClient()`` reads, pointing at this emulator."""
        return {
            "CONTENTSTACK_PERSONALIZE_PROJECT_UID": self.info["project_uid"],
            "CONTENTSTACK_AUTHTOKEN": self.info["authtoken"],
            "CONTENTSTACK_PERSONALIZE_EDGE_URL": self.info["edge_url"],
            "CONTENTSTACK_PERSONALIZE_MANAGEMENT_URL": self.info["management_url"],
            "CONTENTSTACK_CMA_URL": self.info["cma_url"],
        }

    def stop(self) -> None:
        """An outage: the server goes away (connections are refused from now on)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def clean_env() -> dict[str, str]:
    """This process's environment without any Contentstack setting of the developer's."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CONTENTSTACK_")}


@contextmanager
def emulator_process(*extra_args: str) -> Iterator[EmulatorProcess]:
    """Serve an emulator (``--unknown-attribute reject`` like the real service) for a block."""
    server = EmulatorProcess("--unknown-attribute", "reject", *extra_args)
    try:
        yield server
    finally:
        server.stop()
