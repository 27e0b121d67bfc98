"""A throwaway PostgreSQL server for the tests and benchmarks: ``initdb`` in a temporary
directory, ``pg_ctl start`` on a free loopback port with its unix socket in that directory, and
``pg_ctl stop`` plus removal of the directory at the end.

It uses the Debian layout (``/usr/lib/postgresql/<version>/bin``), preferring version 15. As root
the server runs as the ``postgres`` user (``runuser -u postgres --``), since PostgreSQL refuses to
run as root; the data directory then belongs to that user.

Whether a missing server is a skip or a failure: tests that need PostgreSQL fail when it is not
installed (CI installs it in ``.ci/run``), unless ``CONTENTSTACK_PERSONALIZE_SKIP_POSTGRES=1`` is
set, which a developer without PostgreSQL may set to skip them knowingly.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

SKIP_ENV = "CONTENTSTACK_PERSONALIZE_SKIP_POSTGRES"
PREFERRED_VERSION = "15"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def find_bindir() -> str:
    """The ``bin`` directory of the PostgreSQL server (15 if installed, else the newest)."""
    preferred = f"/usr/lib/postgresql/{PREFERRED_VERSION}/bin"
    if os.access(os.path.join(preferred, "initdb"), os.X_OK):
        return preferred
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    if found:
        return os.path.dirname(found[-1])
    on_path = shutil.which("initdb")
    if on_path:
        return os.path.dirname(on_path)
    raise PostgresUnavailable(
        "PostgreSQL server binaries not found (looked for /usr/lib/postgresql/*/bin/initdb and "
        "initdb on PATH); install them (apt-get install -y postgresql), or set "
        f"{SKIP_ENV}=1 to skip the tests that need PostgreSQL"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway server; ``url`` reaches its ``postgres`` database as superuser."""

    host: str
    port: int
    user: str
    socket_dir: str
    bindir: str
    data: str
    options: str
    log: str

    def crash(self) -> None:
        """Stop the server as a crash would (``pg_ctl stop -m immediate``: no checkpoint, what
        was only in its memory is lost; the next start recovers from the write-ahead log)."""
        _pg_ctl(self, "-m", "immediate", "-w", "stop")

    def start(self) -> None:
        """Start the server again on the same data directory and port."""
        _pg_ctl(self, "-l", self.log, "-o", self.options, "-w", "-t", "60", "start")

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/postgres"

    def database_url(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"


def _pg_ctl(server: PostgresServer, *args: str) -> None:
    subprocess.run(
        _as_server_user([f"{server.bindir}/pg_ctl", "-D", server.data, *args]),
        check=True,
        capture_output=True,
        text=True,
    )


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@contextlib.contextmanager
def postgres_server(*, durable: bool = False) -> Iterator[PostgresServer]:
    """Start a server, yield it, stop it and delete its files.

    Tests run it without ``fsync`` (nothing they check needs the disk); ``durable=True`` keeps
    PostgreSQL's defaults (``fsync``, ``synchronous_commit``), as the benchmarks do."""
    bindir = find_bindir()
    root = tempfile.mkdtemp(prefix="cp-postgres-")
    data = os.path.join(root, "data")
    user = "postgres"
    if os.geteuid() == 0:
        import pwd

        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    else:
        import getpass

        user = getpass.getuser()
    os.chmod(root, 0o700)
    port = free_port()
    log = os.path.join(root, "server.log")
    started = False
    try:
        subprocess.run(
            _as_server_user(
                [
                    f"{bindir}/initdb",
                    "-D",
                    data,
                    "-U",
                    user,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
            text=True,
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
            "-c max_connections=200 -c shared_buffers=128MB"
        )
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        server = PostgresServer(
            host="127.0.0.1",
            port=port,
            user=user,
            socket_dir=root,
            bindir=bindir,
            data=data,
            options=options,
            log=log,
        )
        server.start()
        started = True
        yield server
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr or exc.stdout
        with contextlib.suppress(OSError), open(log) as f:
            detail += f.read()
        raise RuntimeError(f"could not start the test PostgreSQL server: {detail}") from exc
    finally:
        if started:  # stopped at once, whatever state a test left it in
            subprocess.run(
                _as_server_user([f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"]),
                check=False,
                capture_output=True,
            )
        shutil.rmtree(root, ignore_errors=True)
