"""The socket server: real HTTP/1.1 over 127.0.0.1, keep-alive, chunked bodies, faults, CLI."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from contentstack_personalize.testing import EmulatorServer, PersonalizeEmulator


def _edge_headers(emulator: PersonalizeEmulator, uid: str | None = None) -> dict[str, str]:
    headers = {"x-project-uid": emulator.project_uid}
    if uid is not None:
        headers["x-cs-personalize-user-uid"] = uid
    return headers


def test_urls(personalize_emulator_server: EmulatorServer) -> None:
    server = personalize_emulator_server
    assert server.url.startswith("http://127.0.0.1:")
    assert server.port > 0
    assert server.edge_url == f"{server.url}/edge"
    assert server.management_url == f"{server.url}/management"
    assert server.cma_url == f"{server.url}/cma"
    assert server.developerhub_url == f"{server.url}/developerhub"


def test_every_api_over_http(emulator: PersonalizeEmulator) -> None:
    emulator.add_user_login("a@b.c", "pw")
    emulator.add_refresh_token("r1")
    with emulator.serve() as server, httpx.Client() as http:
        r = http.patch(
            f"{server.edge_url}/user-attributes",
            headers=_edge_headers(emulator, "u1"),
            json={"plan": "gold"},
        )
        assert (r.status_code, r.text) == (200, "User Attributes added successfully")
        assert r.headers["content-type"].startswith("text/plain")
        r = http.get(f"{server.edge_url}/manifest", headers=_edge_headers(emulator))
        assert r.json() == {"experiences": []}
        assert r.headers["x-cs-personalize-user-uid"]
        r = http.get(
            f"{server.edge_url}/manifest",
            params=[("tags[]", "a"), ("tags[]", "b")],
            headers=_edge_headers(emulator, "u1"),
        )
        assert r.status_code == 200
        mgmt = {"x-project-uid": emulator.project_uid, "authtoken": emulator.authtoken}
        r = http.post(
            f"{server.management_url}/attributes", headers=mgmt, json={"name": "P", "key": "p"}
        )
        assert r.status_code == 201
        r = http.delete(f"{server.management_url}/attributes/{r.json()['uid']}", headers=mgmt)
        assert (r.status_code, r.content) == (204, b"")
        r = http.post(
            f"{server.cma_url}/v3/user-session", json={"user": {"email": "a@b.c", "password": "pw"}}
        )
        assert r.status_code == 200
        r = http.post(
            f"{server.developerhub_url}/token",
            data={"grant_type": "refresh_token", "refresh_token": "r1"},
        )
        assert r.status_code == 200
        r = http.get(f"{server.url}/elsewhere")
        assert r.status_code == 404
        assert r.json()["error"] == "emulator.UNKNOWN_API"
    assert emulator.user_attributes("u1") == {"plan": "gold"}
    assert emulator.count("edge", "PATCH", "/user-attributes") == 1


def _raw(port: int, payload: bytes, *, expect: int = 1) -> bytes:
    """Send raw bytes and read until ``expect`` responses arrived (or the server closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        data = b""
        while data.count(b"HTTP/1.1 ") < expect or not _complete(data, expect):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def _complete(data: bytes, expect: int) -> bool:
    # Good enough for small answers that all carry content-length.
    parts = data.split(b"HTTP/1.1 ")[1:]
    if len(parts) < expect:
        return False
    last = b"HTTP/1.1 " + parts[-1]
    head, sep, body = last.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


def test_chunked_request_body_and_pipelining(emulator: PersonalizeEmulator) -> None:
    body = json.dumps({"plan": "gold", "n": 7}).encode()
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 5]), body[i : i + 5]) for i in range(0, len(body), 5)
    )
    request = (
        b"PATCH /edge/user-attributes HTTP/1.1\r\nHost: localhost\r\n"
        b"x-project-uid: " + emulator.project_uid.encode() + b"\r\n"
        b"x-cs-personalize-user-uid: chunky\r\ncontent-type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    )
    manifest = (
        b"GET /edge/manifest HTTP/1.1\r\nHost: localhost\r\n"
        b"x-project-uid: " + emulator.project_uid.encode() + b"\r\n\r\n"
    )
    with emulator.serve() as server:
        data = _raw(server.port, request + manifest, expect=2)
    first, second = data.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"200 OK")
    assert b"User Attributes added successfully" in first
    assert second.startswith(b"200 OK")
    assert b'"experiences":[]' in second
    assert emulator.user_attributes("chunky") == {"plan": "gold", "n": 7}


def test_bad_request_and_connection_close(emulator: PersonalizeEmulator) -> None:
    with emulator.serve() as server:
        assert _raw(server.port, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400")
        data = _raw(
            server.port,
            b"GET /edge/manifest HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        assert data.startswith(b"HTTP/1.1 404")
        assert b"connection: close" in data.lower()
        # HTTP/1.0 without keep-alive also closes.
        data = _raw(server.port, b"GET /edge/manifest HTTP/1.0\r\n\r\n")
        assert b"connection: close" in data.lower()
        # Expect: 100-continue gets an interim answer.
        data = _raw(
            server.port,
            b"POST /edge/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
            b"Expect: 100-continue\r\n\r\n[]",
            expect=2,
        )
        assert data.startswith(b"HTTP/1.1 100 Continue")


def test_many_concurrent_keep_alive_requests(emulator: PersonalizeEmulator) -> None:
    users = 400

    async def main(edge_url: str) -> list[int]:
        limits = httpx.Limits(max_connections=20, max_keepalive_connections=20)
        async with httpx.AsyncClient(limits=limits, base_url=edge_url) as client:

            async def one(i: int) -> int:
                r = await client.patch(
                    "/user-attributes",
                    headers=_edge_headers(emulator, f"user-{i}"),
                    json={"i": i, "name": f"n{i}"},
                )
                return r.status_code

            return await asyncio.gather(*(one(i) for i in range(users)))

    with emulator.serve() as server:
        statuses = asyncio.run(main(server.edge_url))
        # Threads with sync keep-alive clients at the same time as nothing else.
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                with httpx.Client(base_url=server.edge_url) as client:
                    for j in range(25):
                        r = client.patch(
                            "/user-attributes",
                            headers=_edge_headers(emulator, f"t{n}"),
                            json={"j": j},
                        )
                        assert r.status_code == 200
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert statuses == [200] * users
    stored = emulator.users()
    assert all(stored[f"user-{i}"] == {"i": i, "name": f"n{i}"} for i in range(users))
    assert all(stored[f"t{n}"] == {"j": 24} for n in range(8))
    assert emulator.count("edge", "PATCH", "/user-attributes") == users + 8 * 25


def test_server_faults_drop_and_timeout(emulator: PersonalizeEmulator) -> None:
    emulator.set_faults(
        fail_nth={1: "drop", 2: "timeout", 3: 503},
        applied_before_failure=1.0,
        timeout_hold=0.3,
        latency=0.01,
    )
    with emulator.serve() as server, httpx.Client(base_url=server.edge_url, timeout=2.0) as http:
        headers = _edge_headers(emulator, "u")
        with pytest.raises(httpx.RemoteProtocolError):
            http.patch("/user-attributes", headers=headers, json={"a": 1})
        with pytest.raises(httpx.ReadTimeout):
            http.patch("/user-attributes", headers=headers, json={"a": 2}, timeout=0.1)
        r = http.patch("/user-attributes", headers=headers, json={"a": 3})
        assert r.status_code == 503
        # The held connection is closed after timeout_hold, without an answer.
        emulator.set_faults(fail_nth={1: "timeout"}, timeout_hold=0.3, applied_before_failure=0)
        start = time.perf_counter()
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.patch(f"{server.edge_url}/user-attributes", headers=headers, json={"a": 9})
        assert 0.25 <= time.perf_counter() - start < 2.0
        r = http.patch("/user-attributes", headers=headers, json={"a": 4})
        assert r.status_code == 200
    assert emulator.user_attributes("u") == {"a": 4}
    assert [r.fault for r in emulator.requests] == [
        "drop",
        "timeout",
        "server_error",
        "timeout",
        None,
    ]


def test_stop_closes_open_connections(emulator: PersonalizeEmulator) -> None:
    server = EmulatorServer(emulator)
    server.start()
    try:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(b"GET /edge/manifest HTTP/1.1\r\nHost: x\r\n")  # never finished
    finally:
        server.stop()
    # Closed before asyncio accepted it, the kernel resets it instead: closed either way.
    with contextlib.suppress(ConnectionResetError):
        assert sock.recv(10) == b""
    sock.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
    server.stop()  # idempotent


def test_port_in_use_raises(emulator: PersonalizeEmulator) -> None:
    with emulator.serve() as server, pytest.raises(OSError):  # noqa: SIM117
        with emulator.serve(port=server.port):
            pass


def test_cli_serves_until_terminated(tmp_path: object) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "contentstack_personalize.testing",
            "--port",
            "0",
            "--seed",
            "5",
            "--attribute",
            "plan",
            "--unknown-attribute",
            "reject",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = {}
        for _ in range(12):
            line = proc.stdout.readline()
            if ":" in line:
                name, _, value = line.strip().partition(": ")
                lines[name.strip()] = value.strip()
            if "authtoken" in lines:
                break
        expected = PersonalizeEmulator(seed=5)
        assert lines["project_uid"] == expected.project_uid
        assert lines["authtoken"] == expected.authtoken
        edge_url = lines["edge_url"]
        headers = {"x-project-uid": lines["project_uid"], "x-cs-personalize-user-uid": "u"}
        r = httpx.patch(f"{edge_url}/user-attributes", headers=headers, json={"plan": "x"})
        assert r.status_code == 200
        r = httpx.patch(f"{edge_url}/user-attributes", headers=headers, json={"nope": "x"})
        assert r.status_code == 400
        r = httpx.get(
            f"{lines['management_url']}/attributes",
            headers={"x-project-uid": lines["project_uid"], "authtoken": lines["authtoken"]},
        )
        assert "plan" in [a["key"] for a in r.json()]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
