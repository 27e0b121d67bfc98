"""Helpers for the alert tests: SyncResult builders, both state stores, a tiny SMTP server."""

from __future__ import annotations

import base64
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from contentstack_personalize.state import RunRecord
from contentstack_personalize.sync import MemoryState, SQLiteState, StateStore, SyncResult

_run_counter = iter(range(1, 1_000_000))


def make_result(**overrides: Any) -> SyncResult:
    """A succeeded run of 100 rows (all added) of sync "users"; override any field."""
    n = next(_run_counter)
    values: dict[str, Any] = {
        "run_id": f"run{n}",
        "sync_name": "users",
        "status": "succeeded",
        "started_at": 1_700_000_000.0 + n * 100,
        "finished_at": 1_700_000_010.0 + n * 100,
        "read": 100,
        "invalid": 0,
        "unchanged": 0,
        "added": 100,
        "changed": 0,
        "rejected": 0,
        "not_sent": 0,
        "retried": 0,
        "requests": 100,
        "invalid_rows": (),
        "rejected_rows": (),
    }
    values.update(overrides)
    return SyncResult(**values)


def record_of(result: SyncResult) -> RunRecord:
    """The history line the engine saves for ``result``."""
    return RunRecord(
        run_id=result.run_id,
        sync_name=result.sync_name,
        started_at=result.started_at,
        finished_at=result.finished_at,
        status=result.status,
        counts={**result.counts(), "requests": result.requests},
        error=result.error,
    )


def failed(**overrides: Any) -> SyncResult:
    return make_result(
        **{"status": "failed", "added": 0, "rejected": 100, "error": "boom", **overrides}
    )


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    s: StateStore = MemoryState() if request.param == "memory" else SQLiteState(tmp_path / "s.db")
    yield s
    s.close()


# ---------------------------------------------------------------------------------------------
# A minimal SMTP server on 127.0.0.1 (ESMTP, AUTH PLAIN/LOGIN, no TLS)
# ---------------------------------------------------------------------------------------------


@attrs.define
class Received:
    mail_from: str
    rcpt_to: list[str]
    data: bytes
    auth: tuple[str, str] | None


class _SMTPHandler(socketserver.StreamRequestHandler):
    server: SMTPServer

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        srv = self.server
        self.reply("220 localhost test SMTP")
        mail_from, rcpt, auth = "", [], None
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode().rstrip("\r\n")
            srv.commands.append(line.split(" ", 1)[0].upper())
            verb = line[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.wfile.write(b"250-localhost\r\n")
                if srv.auth_required:
                    self.wfile.write(b"250-AUTH PLAIN LOGIN\r\n")
                self.reply("250 8BITMIME")
            elif verb == "AUTH":
                parts = line.split()
                if parts[1].upper() == "PLAIN":
                    if len(parts) > 2:
                        blob = parts[2]
                    else:
                        self.reply("334 ")
                        blob = self.rfile.readline().decode().strip()
                    _, user, password = base64.b64decode(blob).decode().split("\0")
                else:
                    self.reply("334 VXNlcm5hbWU6")
                    user = base64.b64decode(self.rfile.readline().strip()).decode()
                    self.reply("334 UGFzc3dvcmQ6")
                    password = base64.b64decode(self.rfile.readline().strip()).decode()
                if (user, password) == srv.credentials:
                    auth = (user, password)
                    self.reply("235 2.7.0 Authentication successful")
                else:
                    self.reply("535 5.7.8 Authentication credentials invalid")
            elif verb == "MAIL":
                if srv.auth_required and auth is None:
                    self.reply("530 5.7.0 Authentication required")
                    continue
                mail_from = line.split(":", 1)[1].strip().strip("<>").split(">")[0]
                self.reply("250 OK")
            elif verb == "RCPT":
                addr = line.split(":", 1)[1].strip().strip("<>")
                if addr in srv.refuse:
                    self.reply("550 no such user")
                else:
                    rcpt.append(addr)
                    self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                chunks = []
                while True:
                    data_line = self.rfile.readline()
                    if data_line in (b".\r\n", b""):
                        break
                    if data_line.startswith(b".."):
                        data_line = data_line[1:]
                    chunks.append(data_line)
                srv.messages.append(Received(mail_from, rcpt, b"".join(chunks), auth))
                mail_from, rcpt = "", []
                self.reply("250 OK queued")
            elif verb == "RSET":
                mail_from, rcpt = "", []
                self.reply("250 OK")
            elif verb == "NOOP":
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("502 Command not implemented")


class SMTPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SMTPHandler)
        self.messages: list[Received] = []
        self.commands: list[str] = []
        self.auth_required = False
        self.credentials: tuple[str, str] = ("", "")
        self.refuse: set[str] = set()

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    server = SMTPServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
