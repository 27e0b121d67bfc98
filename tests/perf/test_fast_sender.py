"""The fast Edge sender: chosen when the client talks to the edge directly, and held to the same
engine behaviour as the httpx sender (against the emulator on a loopback socket), plus the HTTP
details httpx used to handle for us (chunked bodies, Connection: close, interim answers, stale
keep-alive connections, TLS verification)."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contentstack_personalize import PersonalizeClient, RetryPolicy
from contentstack_personalize._http import Exchange
from contentstack_personalize.errors import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    ConfigurationError,
    SyncAbortedError,
)
from contentstack_personalize.sync import HttpxSender, Sync, ThreadedSender, _fast
from contentstack_personalize.sync._fast import FastEdgeSender
from contentstack_personalize.sync._sender import make_sender, proxy_for
from contentstack_personalize.testing import PersonalizeEmulator
from tests.sync.conftest import FAST_RETRY, patches, people

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("CONTENTSTACK_PERSONALIZE_SENDER", raising=False)


@pytest.fixture
def emulator() -> PersonalizeEmulator:
    return PersonalizeEmulator(seed=1)


@pytest.fixture
def server(emulator: PersonalizeEmulator) -> Iterator[Any]:
    with emulator.serve() as srv:
        yield srv


def direct_client(emulator: PersonalizeEmulator, server: Any, **kwargs: Any) -> PersonalizeClient:
    """A client with no transport of its own: what a user has in production."""
    kwargs.setdefault("retry", FAST_RETRY)
    kwargs.setdefault("management_rate_limit", None)
    project = kwargs.pop("project_uid", emulator.project_uid)
    return PersonalizeClient(
        project,
        edge_url=server.edge_url,
        management_url=server.management_url,
        read_env=False,
        **kwargs,
    )


def new_sync(client: PersonalizeClient, **kwargs: Any) -> Sync:
    kwargs.setdefault("concurrency", 8)
    return Sync(client, match_on="user_id", mapping={"plan": "plan", "ltv": "ltv"}, **kwargs)


# ---------------------------------------------------------------------------------------------
# Which sender
# ---------------------------------------------------------------------------------------------


class TestChoice:
    def test_direct_client_gets_the_fast_sender(
        self, emulator: PersonalizeEmulator, server: Any
    ) -> None:
        with direct_client(emulator, server) as client:
            assert isinstance(make_sender(client, concurrency=4), FastEdgeSender)

    def test_custom_transport_keeps_httpx(self, emulator: PersonalizeEmulator) -> None:
        with PersonalizeClient(
            emulator.project_uid, transport=emulator.transport(), read_env=False
        ) as client:
            sender = make_sender(client, concurrency=4)
            assert isinstance(sender, (HttpxSender, ThreadedSender))
            with pytest.raises(ConfigurationError, match="kind='httpx'"):
                make_sender(client, concurrency=4, kind="fast")

    def test_proxy_environment_keeps_httpx_unless_no_proxy_matches(
        self, emulator: PersonalizeEmulator, server: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
        with direct_client(emulator, server) as client:
            assert proxy_for(server.edge_url) == "http://proxy.internal:3128"
            assert isinstance(make_sender(client, concurrency=4), HttpxSender)
            monkeypatch.setenv("NO_PROXY", "127.0.0.1")
            assert proxy_for(server.edge_url) is None
            assert isinstance(make_sender(client, concurrency=4), FastEdgeSender)

    def test_forcing_a_sender(
        self, emulator: PersonalizeEmulator, server: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with direct_client(emulator, server) as client:
            assert isinstance(make_sender(client, concurrency=4, kind="httpx"), HttpxSender)
            monkeypatch.setenv("CONTENTSTACK_PERSONALIZE_SENDER", "httpx")
            assert isinstance(make_sender(client, concurrency=4), HttpxSender)
            monkeypatch.setenv("CONTENTSTACK_PERSONALIZE_SENDER", "turbo")
            with pytest.raises(ConfigurationError, match="'auto', 'fast' or 'httpx'"):
                make_sender(client, concurrency=4)


# ---------------------------------------------------------------------------------------------
# The engine's behaviour through the fast sender
# ---------------------------------------------------------------------------------------------


class TestEngine:
    def test_first_run_rerun_and_one_change(
        self, emulator: PersonalizeEmulator, server: Any
    ) -> None:
        with direct_client(emulator, server) as client:
            sync = new_sync(client)
            first = sync.run(people(300))
            assert (first.added, first.requests, first.status) == (300, 300, "succeeded")
            assert emulator.user_attributes("7") == {"plan": "gold", "ltv": 70}
            assert len(emulator.users()) == 300

            again = sync.run(people(300))
            assert (again.requests, again.unchanged) == (0, 300)

            rows = people(300)
            rows[41]["plan"] = "platinum"
            before = len(patches(emulator))
            changed = sync.run(rows)
        assert (changed.changed, changed.requests) == (1, 1)
        assert patches(emulator)[before:] == [("42", {"plan": "platinum"})]

    def test_rejected_row_is_retried_next_run(
        self, emulator: PersonalizeEmulator, server: Any
    ) -> None:
        with direct_client(emulator, server) as client:
            sync = new_sync(client, concurrency=1)
            emulator.set_faults(fail_nth={3: 400})
            first = sync.run(people(10))
            assert (first.rejected, first.added, first.status) == (1, 9, "partially_failed")
            issue = first.rejected_rows[0]
            assert issue.status == 400 and issue.row == 3 and issue.uid == "3"
            emulator.clear_faults()
            before = len(patches(emulator))
            second = sync.run(people(10))
        assert [uid for uid, _ in patches(emulator)[before:]] == ["3"]
        assert (second.added, second.retried, second.unchanged) == (1, 1, 9)

    def test_transient_failures_are_retried(
        self, emulator: PersonalizeEmulator, server: Any
    ) -> None:
        emulator.set_faults(
            fail_nth={1: 503, 2: 429, 5: "drop", 7: "timeout"},
            applied_before_failure=0.0,
            timeout_hold=2.0,
        )
        seen: list[Exchange] = []
        with direct_client(emulator, server, timeout=0.5, on_exchange=seen.append) as client:
            result = new_sync(client, concurrency=1).run(people(10))
        assert (result.added, result.rejected, result.status) == (10, 0, "succeeded")
        assert len(emulator.users()) == 10
        retried = [e for e in seen if e.will_retry]
        # The drop hit a reused connection before any byte of answer: resent at once on a new
        # connection, not an attempt (the rule for stale keep-alive connections).
        assert [e.status for e in retried] == [503, 429, None]
        assert "ReadTimeout" in (retried[2].error or "")

    def test_retry_after_is_honoured(
        self, emulator: PersonalizeEmulator, server: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        waits: list[float] = []

        async def fake_sleep(seconds: float) -> None:
            waits.append(seconds)

        monkeypatch.setattr(_fast, "_sleep", fake_sleep)
        emulator.set_faults(fail_nth={1: "rate_limit"}, retry_after=7.0)
        with direct_client(emulator, server, retry=RetryPolicy(max_attempts=3)) as client:
            result = new_sync(client, concurrency=1).run(people(2))
        assert result.added == 2
        assert waits == [7.0]

    def test_giving_up_reports_typed_errors(
        self, emulator: PersonalizeEmulator, server: Any
    ) -> None:
        emulator.set_faults(fail_nth={1: 503, 2: 503, 3: 503, 4: 503})
        with direct_client(emulator, server) as client:
            result = new_sync(client, concurrency=1).run(people(3))
        assert (result.added, result.rejected) == (2, 1)
        issue = result.rejected_rows[0]
        assert (issue.uid, issue.status, issue.kind) == ("1", 503, "rejected")
        assert "503" in issue.reason and "/edge/user-attributes" in issue.reason

    def test_unknown_project_aborts(self, emulator: PersonalizeEmulator, server: Any) -> None:
        with direct_client(emulator, server, project_uid="0" * 24) as client:
            sync = new_sync(client)
            with pytest.raises(SyncAbortedError) as info:
                sync.run(people(200))
        result = info.value.result
        assert result.status == "aborted" and "NotFoundError" in (result.error or "")
        assert "PROJECT_NOT_FOUND" in (result.error or "")
        assert result.added == 0 and result.not_sent == 200

    def test_hooks_see_redacted_exchanges(self, emulator: PersonalizeEmulator, server: Any) -> None:
        seen: list[Exchange] = []
        emulator.set_faults(fail_nth={2: 503})
        with direct_client(
            emulator, server, headers={"Authorization": "Bearer s3cret-value"}
        ) as client:
            client.add_exchange_hook(seen.append)
            new_sync(client, concurrency=1).run(people(3))
        assert [e.status for e in seen] == [200, 503, 200, 200]
        for exchange in seen:
            assert exchange.api == "edge" and exchange.method == "PATCH"
            assert exchange.url == server.edge_url + "/user-attributes"
            assert exchange.request_headers["authorization"] == "[REDACTED]"
            assert "s3cret" not in json.dumps(exchange.to_dict())
        assert seen[0].user_uid == "1"
        assert json.loads(seen[0].request_body or "") == {"plan": "gold", "ltv": 10}
        assert seen[1].will_retry and not seen[2].will_retry

    def test_a_sender_serves_several_runs(self, emulator: PersonalizeEmulator, server: Any) -> None:
        with direct_client(emulator, server) as client:
            sender = FastEdgeSender(client, concurrency=4)
            sync = new_sync(client, sender=sender, concurrency=4)
            assert sync.run(people(20)).added == 20
            rows = people(20)
            rows[0]["ltv"] = 1
            assert sync.run(rows).changed == 1  # a new event loop: fresh connections
        assert emulator.user_attributes("1") == {"plan": "gold", "ltv": 1}


# ---------------------------------------------------------------------------------------------
# HTTP details, against a scripted server
# ---------------------------------------------------------------------------------------------


class Scripted:
    """A tiny threaded server that reads each request and answers with the next scripted
    bytes. ``b"CLOSE"`` closes the connection without answering; an answer ending with
    ``b"<close>"`` is sent and then the connection is closed."""

    def __init__(self, answers: list[bytes], tls: ssl.SSLContext | None = None) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self._live = 0
        self._live_changed = threading.Condition()
        self._tls = tls
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}/edge"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            with self._live_changed:
                self._live += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def open_connections(self) -> int:
        """Connections the client has not closed yet (nor the server)."""
        with self._live_changed:
            return self._live

    def wait_all_closed(self, timeout: float) -> bool:
        """Wait until every connection has ended; whether that happened within ``timeout``."""
        with self._live_changed:
            return self._live_changed.wait_for(lambda: self._live == 0, timeout)

    def _handle(self, conn: socket.socket) -> None:
        try:
            if self._tls is not None:
                conn = self._tls.wrap_socket(conn, server_side=True)
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buf) < length:
                    buf += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + buf[:length])
                buf = buf[length:]
                answer = self.answers.pop(0) if self.answers else b"CLOSE"
                if answer == b"CLOSE":
                    return
                close = answer.endswith(b"<close>")
                conn.sendall(answer.removesuffix(b"<close>"))
                if close:
                    return
        except (OSError, ssl.SSLError):
            return
        finally:
            conn.close()
            with self._live_changed:
                self._live -= 1
                self._live_changed.notify_all()

    def close(self) -> None:
        self._sock.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CHUNKED_OK = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nUser \r\n11\r\nattributes update\r\n0\r\nX-Trailer: 1\r\n\r\n"
)


def scripted_sender(url: str, **kwargs: Any) -> FastEdgeSender:
    kwargs.setdefault("retry", RetryPolicy(sleep=False, max_attempts=3))
    client = PersonalizeClient("p" * 24, edge_url=url, read_env=False, **kwargs)
    return FastEdgeSender(client, concurrency=2)


@pytest.fixture
def scripted() -> Iterator[list[Scripted]]:
    made: list[Scripted] = []
    yield made
    for srv in made:
        srv.close()


@pytest.fixture(params=_fast.available_parsers())
def each_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test once per installed parser (the sender's "auto" picks the one given)."""
    monkeypatch.setattr(_fast, "available_parsers", lambda: [request.param])
    return str(request.param)


@pytest.mark.usefixtures("each_parser")
class TestHttp:
    async def test_request_bytes_chunked_answers_and_keep_alive(
        self, scripted: list[Scripted]
    ) -> None:
        srv = Scripted([CHUNKED_OK, OK])
        scripted.append(srv)
        sender = scripted_sender(srv.url, headers={"X-Extra": "1"})
        first = await sender.send("user-1", b'{"a":"1"}')
        second = await sender.send("user-2", b'{"a":"2"}')
        await sender.aclose()
        assert first.ok and second.ok and first.attempts == 1
        assert srv.connections == 1  # the chunked answer left the connection reusable
        head, _, body = srv.requests[0].partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0] == "PATCH /edge/user-attributes HTTP/1.1"
        headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        assert headers["host"] == f"127.0.0.1:{srv.port}"
        assert headers["x-project-uid"] == "p" * 24
        assert headers["x-cs-personalize-user-uid"] == "user-1"
        assert headers["content-type"] == "application/json"
        assert headers["content-length"] == "9" and body == b'{"a":"1"}'
        assert headers["x-extra"] == "1"
        assert headers["user-agent"].startswith("contentstack-personalize-python/")

    async def test_connection_close_http10_and_interim_answers(
        self, scripted: list[Scripted]
    ) -> None:
        srv = Scripted(
            [
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n<close>",
                b"HTTP/1.0 200 OK\r\n\r\nread until the end<close>",
                b"HTTP/1.1 100 Continue\r\n\r\n" + OK,
            ]
        )
        scripted.append(srv)
        sender = scripted_sender(srv.url)
        outcomes = [await sender.send(f"u{i}", b"{}") for i in range(3)]
        await sender.aclose()
        assert [o.ok for o in outcomes] == [True, True, True]
        assert [o.attempts for o in outcomes] == [1, 1, 1]
        assert srv.connections == 3

    async def test_error_answers_become_typed_errors(self, scripted: list[Scripted]) -> None:
        body = b'{"error":"personalize.USER_ATTRIBUTES.INVALID","message":"bad value"}'
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        srv = Scripted(
            [
                b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n"
                b"x-request-id: rq-1\r\n\r\n" + chunked
            ]
        )
        scripted.append(srv)
        sender = scripted_sender(srv.url)
        outcome = await sender.send("user-1", b'{"a":"1"}')
        await sender.aclose()
        assert not outcome.ok and outcome.attempts == 1
        error = outcome.error
        assert isinstance(error, BadRequestError)
        assert error.status_code == 400 and error.code == "personalize.USER_ATTRIBUTES.INVALID"
        assert "bad value" in str(error) and error.request_id == "rq-1"
        assert "/edge/user-attributes" in str(error)

    async def test_idle_connection_closed_by_the_server_is_not_reused(
        self, scripted: list[Scripted]
    ) -> None:
        srv = Scripted([OK + b"<close>", OK])
        scripted.append(srv)
        sender = scripted_sender(srv.url)
        assert (await sender.send("u1", b"{}")).ok
        await asyncio.sleep(0.05)  # let the close reach us (no timing is asserted)
        second = await sender.send("u2", b"{}")
        await sender.aclose()
        assert second.ok and second.attempts == 1
        assert srv.connections == 2

    async def test_a_reused_connection_that_dies_unanswered_is_resent_once(
        self, scripted: list[Scripted]
    ) -> None:
        srv = Scripted([OK, b"CLOSE", OK])
        scripted.append(srv)
        sender = scripted_sender(srv.url, retry=RetryPolicy.disabled())
        assert (await sender.send("u1", b"{}")).ok
        second = await sender.send("u2", b"{}")
        await sender.aclose()
        assert second.ok and second.attempts == 1
        assert srv.connections == 2

    async def test_no_answer_is_retried_then_a_connection_error(
        self, scripted: list[Scripted]
    ) -> None:
        srv = Scripted([b"CLOSE", b"CLOSE", b"CLOSE"])
        scripted.append(srv)
        sender = scripted_sender(srv.url)
        outcome = await sender.send("u1", b"{}")
        await sender.aclose()
        assert not outcome.ok and outcome.attempts == 3
        assert isinstance(outcome.error, APIConnectionError)
        assert "after 3 attempts" in str(outcome.error)
        assert len(srv.requests) == 3

    async def test_malformed_answer_is_a_protocol_error(self, scripted: list[Scripted]) -> None:
        srv = Scripted([b"garbage\r\n\r\n<close>"])
        scripted.append(srv)
        sender = scripted_sender(srv.url, retry=RetryPolicy.disabled())
        outcome = await sender.send("u1", b"{}")
        await sender.aclose()
        assert isinstance(outcome.error, APIConnectionError)
        assert "RemoteProtocolError" in str(outcome.error)

    async def test_silence_times_out(self) -> None:
        listener = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
        try:
            url = f"http://127.0.0.1:{listener.getsockname()[1]}/edge"
            sender = scripted_sender(url, timeout=0.2, retry=RetryPolicy.disabled())
            outcome = await sender.send("u1", b"{}")
            await sender.aclose()
        finally:
            listener.close()
        assert isinstance(outcome.error, APITimeoutError)

    async def test_refused_connection(self) -> None:
        probe = socket.create_server(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        sender = scripted_sender(f"http://127.0.0.1:{port}/edge", retry=RetryPolicy.disabled())
        outcome = await sender.send("u1", b"{}")
        assert isinstance(outcome.error, APIConnectionError)
        assert "connection failed" in str(outcome.error)


# ---------------------------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.mark.usefixtures("each_parser")
class TestTls:
    def _server(self, self_signed: tuple[Path, Path], answers: list[bytes]) -> Scripted:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*self_signed)
        return Scripted(answers, tls=context)

    async def test_verification_is_on_by_default(
        self, self_signed: tuple[Path, Path], scripted: list[Scripted]
    ) -> None:
        srv = self._server(self_signed, [OK])
        scripted.append(srv)
        sender = scripted_sender(srv.url, retry=RetryPolicy.disabled())
        outcome = await sender.send("u1", b"{}")
        await sender.aclose()
        assert isinstance(outcome.error, APIConnectionError)
        assert "CERTIFICATE_VERIFY_FAILED" in str(outcome.error)
        assert srv.requests == []  # nothing was sent to an unverified server

    async def test_a_failed_certificate_check_is_not_retried(
        self, self_signed: tuple[Path, Path], scripted: list[Scripted]
    ) -> None:
        srv = self._server(self_signed, [OK])
        scripted.append(srv)
        sender = scripted_sender(srv.url, retry=RetryPolicy(sleep=False))  # 5 attempts otherwise
        outcome = await sender.send("u1", b"{}")
        await sender.aclose()
        assert isinstance(outcome.error, APIConnectionError) and outcome.attempts == 1
        assert f"{srv.url}/user-attributes" in str(outcome.error)
        assert "TLS handshake with 127.0.0.1" in str(outcome.error)

    async def test_verify_false_and_a_ca_bundle(
        self, self_signed: tuple[Path, Path], scripted: list[Scripted]
    ) -> None:
        srv = self._server(self_signed, [OK, OK])
        scripted.append(srv)
        unverified = scripted_sender(srv.url, verify=False)
        pinned = scripted_sender(
            srv.url, verify=ssl.create_default_context(cafile=str(self_signed[0]))
        )
        assert (await unverified.send("u1", b"{}")).ok
        assert (await pinned.send("u2", b"{}")).ok
        await unverified.aclose()
        await pinned.aclose()
        assert len(srv.requests) == 2
