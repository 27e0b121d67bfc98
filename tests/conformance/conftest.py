"""Real servers on loopback for the conformance suite: uvicorn (h11 and httptools), hypercorn,
an aiohttp server and nginx (the Debian package), each plain and over TLS with certificates made
by ``trustme``. Each server runs in its own process, started on a free port the first time a
test needs it and stopped at the end of the session."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("uvicorn-h11", "uvicorn-httptools", "hypercorn", "aiohttp", "nginx")
#: nginx closes a keep-alive connection after this many requests: the suite then also checks
#: that no user is lost or counted twice when connections end under load.
NGINX_KEEPALIVE_REQUESTS = 7


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Certificates:
    ca: Path
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


@dataclass
class RealServer:
    kind: str
    tls: bool
    port: int
    process: subprocess.Popen[bytes]
    certs: Certificates
    log: Path | None = None  # nginx: one user UID per line
    _log_mark: int = 0
    _extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.kind}-{'tls' if self.tls else 'plain'}"

    def url(self, prefix: str = "edge") -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/{prefix}"

    def verify(self) -> ssl.SSLContext | bool:
        return self.certs.client_context() if self.tls else True

    def reset(self) -> None:
        if self.log is not None:
            self._log_mark = self.log.stat().st_size if self.log.exists() else 0
            return
        with httpx.Client(verify=self.verify()) as client:
            client.post(self.url("_reset").removesuffix("/"), content=b"").raise_for_status()

    def counts(self) -> collections.Counter[str]:
        if self.log is not None:
            data = self.log.read_bytes()[self._log_mark :] if self.log.exists() else b""
            return collections.Counter(line for line in data.decode().splitlines() if line)
        with httpx.Client(verify=self.verify()) as client:
            response = client.get(self.url("_stats").removesuffix("/"))
            response.raise_for_status()
            return collections.Counter(json.loads(response.content))


def _nginx_config(where: Path, port: int, certs: Certificates, tls: bool) -> Path:
    listen = f"127.0.0.1:{port}" + (" ssl" if tls else "")
    ssl_lines = f"ssl_certificate {certs.cert}; ssl_certificate_key {certs.key};" if tls else ""
    user = "user root;" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
    config = f"""
{user}
daemon off;
worker_processes 1;
pid {where}/nginx.pid;
error_log {where}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {where}/body;
    proxy_temp_path {where}/proxy;
    fastcgi_temp_path {where}/fastcgi;
    uwsgi_temp_path {where}/uwsgi;
    scgi_temp_path {where}/scgi;
    log_format uids '$http_x_cs_personalize_user_uid';
    server {{
        listen {listen} backlog=2048;
        {ssl_lines}
        keepalive_requests {NGINX_KEEPALIVE_REQUESTS};
        location /edge/ {{
            access_log {where}/uids.log uids;
            default_type text/plain;
            return 200 "User Attributes added successfully";
        }}
        location /redirect/ {{ return 307 https://elsewhere.example.test/edge/user-attributes; }}
    }}
}}
"""
    path = where / "nginx.conf"
    path.write_text(config)
    return path


def _command(kind: str, port: int, certs: Certificates, tls: bool, where: Path) -> list[str]:
    py = sys.executable
    if kind.startswith("uvicorn"):
        cmd = [py, "-m", "uvicorn", "tests.conformance._apps:asgi_app", "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--http", kind.split("-")[1], "--log-level", "warning"]
        cmd += ["--no-access-log", "--backlog", "2048"]
        if tls:
            cmd += ["--ssl-certfile", str(certs.cert), "--ssl-keyfile", str(certs.key)]
        return cmd
    if kind == "hypercorn":
        cmd = [py, "-m", "hypercorn", "tests.conformance._apps:asgi_app"]
        cmd += ["--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--backlog", "2048"]
        if tls:
            cmd += ["--certfile", str(certs.cert), "--keyfile", str(certs.key)]
        return cmd
    if kind == "aiohttp":
        cmd = [py, "-m", "tests.conformance._apps", "aiohttp", str(port)]
        return cmd + ([str(certs.cert), str(certs.key)] if tls else [])
    if kind == "nginx":
        binary = nginx_binary()
        assert binary is not None
        conf = _nginx_config(where, port, certs, tls)
        return [binary, "-p", str(where), "-e", str(where / "error.log"), "-c", str(conf)]
    raise ValueError(kind)


def _wait_ready(process: subprocess.Popen[bytes], port: int, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"{what} exited with {process.returncode}: {err[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{what} did not start listening on port {port} within 30 s")


class Servers:
    def __init__(self, where: Path, certs: Certificates) -> None:
        self.where = where
        self.certs = certs
        self.running: dict[tuple[str, bool], RealServer] = {}

    def get(self, kind: str, tls: bool) -> RealServer:
        key = (kind, tls)
        if key in self.running:
            return self.running[key]
        if kind == "nginx" and nginx_binary() is None:
            message = "nginx is not installed (Debian: apt-get install nginx; .ci/run does it)"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        where = self.where / f"{kind}-{'tls' if tls else 'plain'}"
        where.mkdir(parents=True, exist_ok=True)
        port = free_port()
        process = subprocess.Popen(
            _command(kind, port, self.certs, tls, where),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        _wait_ready(process, port, f"{kind} ({'tls' if tls else 'plain'})")
        server = RealServer(
            kind,
            tls,
            port,
            process,
            self.certs,
            log=where / "uids.log" if kind == "nginx" else None,
        )
        self.running[key] = server
        return server

    def stop(self) -> None:
        for server in self.running.values():
            server.process.terminate()
        for server in self.running.values():
            try:
                server.process.wait(10)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()
            if server.process.stderr is not None:
                server.process.stderr.close()


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    trustme = pytest.importorskip("trustme")
    where = tmp_path_factory.mktemp("conformance-tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = Certificates(where / "ca.pem", where / "server.pem", where / "server.key")
    ca.cert_pem.write_to_path(str(paths.ca))
    cert.private_key_pem.write_to_path(str(paths.key))
    with paths.cert.open("wb") as fh:
        for blob in cert.cert_chain_pems:
            fh.write(blob.bytes())
    return paths


@pytest.fixture(scope="session")
def servers(
    tmp_path_factory: pytest.TempPathFactory, certificates: Certificates
) -> Iterator[Servers]:
    registry = Servers(tmp_path_factory.mktemp("conformance-servers"), certificates)
    yield registry
    registry.stop()


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("CONTENTSTACK_PERSONALIZE_SENDER", raising=False)
