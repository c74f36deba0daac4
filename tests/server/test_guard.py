"""Request hardening of ``loopline server`` (loopline/request_guard.py, server/artifact_roots.py),
against a real server on 127.0.0.1: foreign Host names, cross-origin writes, JSON under other content
types, oversized bodies (with the server's memory measured), client-chosen artifact locations, and
no credentials in answers or logs. The unmodified mlflow client keeps working through all of it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import free_port, serve_loopline

API = "/api/2.0/mlflow"
LIMIT = 64 * 1024  # the server's LOOPLINE_MAX_JSON_BYTES here
TOKEN = "llt_" + uuid.uuid4().hex  # a credential that must never be echoed or logged


@dataclass(frozen=True)
class Server:
    url: str
    home: Path
    allowed: Path  # the artifact root clients may choose locations under

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def post(self, path: str, body: bytes | str, **headers: str) -> httpx.Response:
        return httpx.post(self.url + API + path, content=body, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("guard")
    allowed = home / "allowed"
    env = {
        "LOOPLINE_MAX_JSON_BYTES": str(LIMIT),
        "LOOPLINE_ALLOWED_ORIGINS": "https://ui.example.com",
        "LOOPLINE_ARTIFACT_ROOTS": f"{allowed},s3://team-bucket/ml",
    }
    with serve_loopline(home, env=env, args=["--log-level", "debug"], check_log=True) as url:
        yield Server(url, home, allowed)


def _create(server: Server, **headers: str) -> httpx.Response:
    name = f"guard-{uuid.uuid4().hex[:8]}"
    return server.post("/experiments/create", f'{{"name": "{name}"}}', **headers)


def _exists(server: Server, experiment_id: str) -> bool:
    r = httpx.get(f"{server.url}{API}/experiments/get", params={"experiment_id": experiment_id})
    return r.status_code == 200


def _error(r: httpx.Response, status: int) -> dict[str, Any]:
    """The JSON error body of a refusal (the guard's carry a separate hint; the routes' end their
    message with it)."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/json"
    body: dict[str, Any] = r.json()
    assert body["error_code"] and body["message"]
    return body


# ---- Host (DNS rebinding) ------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "LOCALHOST"])
def test_a_loopback_server_answers_loopback_names_on_any_port(server: Server, host: str) -> None:
    for port in (f":{server.port}", "", ":1"):
        r = httpx.get(server.url + API + "/experiments/search", headers={"Host": host + port})
        assert r.status_code == 200, (host, port, r.text)


def test_a_loopback_server_refuses_a_foreign_host_before_any_route_runs(server: Server) -> None:
    """A page on rebind.attacker.example whose name now resolves to 127.0.0.1 reads nothing."""
    for method, path in (("GET", "/experiments/search"), ("POST", "/experiments/create")):
        r = httpx.request(
            method,
            server.url + API + path,
            headers={"Host": f"rebind.attacker.example:{server.port}"},
            json={"name": "rebound"},
        )
        body = _error(r, 400)
        assert "rebind.attacker.example" in body["message"] and "LOOPLINE_ALLOWED_HOSTS" in body["hint"]
    # Probes answer any name: kubelets and load balancers call them by address.
    assert httpx.get(server.url + "/health", headers={"Host": "10.1.2.3:5000"}).status_code == 200


def test_configured_host_names_replace_the_loopback_default(tmp_path: Path) -> None:
    env = {"LOOPLINE_ALLOWED_HOSTS": "ml.example.com, .corp.example"}
    with serve_loopline(tmp_path, env=env) as url:

        def status(host: str) -> int:
            return httpx.get(url + API + "/experiments/search", headers={"Host": host}).status_code

        assert status("ml.example.com") == 200
        assert status("ML.example.com:443") == 200
        assert status("tracking.corp.example") == 200  # a listed domain's subdomain
        assert status("corp.example") == 200
        assert status("localhost") == 400  # the list replaces the loopback default
        assert status("evilcorp.example") == 400


# ---- CSRF: writes from another origin ------------------------------------------------------


def test_a_write_from_another_origin_is_refused_and_changes_nothing(server: Server) -> None:
    before = httpx.post(server.url + API + "/experiments/search", json={"max_results": 1000}).json()
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},  # sandboxed frames, file:// pages
        {"Origin": f"http://127.0.0.1:{server.port + 1}"},  # another port is another origin
        {"Sec-Fetch-Site": "cross-site"},  # a browser that sent no Origin
    ):
        body = _error(_create(server, **{"Content-Type": "application/json", **headers}), 403)
        assert body["error_code"] == "PERMISSION_DENIED", headers
    after = httpx.post(server.url + API + "/experiments/search", json={"max_results": 1000}).json()
    assert after == before


def test_same_origin_allowed_origins_and_programs_may_write(server: Server) -> None:
    json_type = {"Content-Type": "application/json"}
    for headers in (
        {"Origin": server.url},  # the server's own pages (the web UI)
        {"Origin": f"http://localhost:{server.port}", "Host": f"localhost:{server.port}"},
        {"Origin": "https://ui.example.com"},  # LOOPLINE_ALLOWED_ORIGINS
        {"Origin": "https://UI.example.com:443"},  # the same origin, spelt otherwise
        {"Sec-Fetch-Site": "same-origin"},
        {},  # programs: no Origin
    ):
        r = _create(server, **json_type, **headers)
        assert r.status_code == 200, (headers, r.text)
        assert _exists(server, r.json()["experiment_id"])
    # Reads are never refused for their origin (CORS keeps their answers from other pages).
    r = httpx.get(server.url + API + "/experiments/search", headers={"Origin": "https://evil.example"})
    assert r.status_code == 200


# ---- JSON routes take application/json only -----------------------------------------------


def test_simple_request_content_types_are_refused_on_json_routes(server: Server) -> None:
    """text/plain and form bodies are what another site's page can send without a preflight."""
    run = httpx.post(server.url + API + "/runs/create", json={"experiment_id": "0"}).json()["run"]
    run_id = run["info"]["run_id"]
    body = f'{{"run_id": "{run_id}"}}'
    for content_type in (
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
    ):
        refused = _error(server.post("/runs/delete", body, **{"Content-Type": content_type}), 415)
        assert "application/json" in refused["message"] + refused["hint"]
    no_type = httpx.post(server.url + API + "/runs/delete", content=body.encode())
    assert no_type.request.headers.get("content-type") is None
    _error(no_type, 415)
    got = httpx.get(server.url + API + "/runs/get", params={"run_id": run_id}).json()
    assert got["run"]["info"]["lifecycle_stage"] == "active"  # none of them deleted it
    ok = server.post("/runs/delete", body, **{"Content-Type": "application/json; charset=utf-8"})
    assert ok.status_code == 200, ok.text


def test_raw_body_routes_keep_their_own_content_types(server: Server) -> None:
    """Artifact uploads go as their file's type (MLflow's client sends text/plain for .txt)."""
    run = httpx.post(server.url + API + "/runs/create", json={"experiment_id": "0"}).json()["run"]
    path = f"0/{run['info']['run_id']}/artifacts/note.txt"
    url = f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{path}"
    put = httpx.put(url, content=b"hello", headers={"Content-Type": "text/plain"})
    assert put.status_code == 200, put.text
    assert httpx.get(url).content == b"hello"
    # Bigger than the JSON limit: uploads stream, the JSON limit is not theirs.
    big = httpx.put(url, content=b"x" * (4 * LIMIT), headers={"Content-Type": "application/octet-stream"})
    assert big.status_code == 200, big.text


def test_the_raw_body_routes_are_the_ones_the_openapi_document_says(tmp_path: Path) -> None:
    """The guard's list of non-JSON routes and the routes' own documentation agree, both ways."""
    from loopline.config import Settings
    from loopline.request_guard import server_raw_body
    from loopline.server.app import create_app

    settings = Settings.from_env({}, tracking_uri=f"sqlite:///{tmp_path / 'db'}", artifacts_uri=str(tmp_path))
    app = create_app(settings)
    documented = set()
    json_bodies = set()
    for path, ops in app.openapi()["paths"].items():
        for method, op in ops.items():
            content = op.get("requestBody", {}).get("content", {})
            concrete = path.replace("{", "x").replace("}", "")
            if any(t != "application/json" for t in content):
                documented.add((method.upper(), concrete))
            elif content:
                json_bodies.add((method.upper(), concrete))
    assert documented and all(server_raw_body(m, p) for m, p in documented), documented
    assert not [mp for mp in json_bodies if server_raw_body(*mp)]


# ---- body size limits ------------------------------------------------------------------------


def test_a_declared_length_over_the_limit_is_refused_unread(server: Server) -> None:
    async def go() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            f"POST {API}/runs/log-batch HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Content-Type: application/json\r\nContent-Length: 400000000\r\n\r\n".encode()
        )
        await writer.drain()
        # No byte of the body was sent; the answer closes the connection, so read it to the end
        # (its head and its body may arrive in separate segments).
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return answer

    answer = asyncio.run(go())
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"error_code":"BAD_REQUEST"' in answer and str(LIMIT).encode() in answer


def _server_pid(port: int) -> int:
    """The ``loopline server --port PORT`` process (one worker: uvicorn serves in it)."""
    needle = f"--port\0{port}\0".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "cmdline").read_bytes() + b"\0":
                    return int(entry.name)
            except OSError:
                continue
    raise LookupError(port)


def _memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def test_a_chunked_body_is_cut_off_at_the_limit_and_memory_stays_bounded(server: Server) -> None:
    """64 MiB streamed chunked at a JSON route: 413 once the limit is passed, and the server's peak
    resident memory does not grow by anything near the body's size."""
    pid = _server_pid(server.port)
    before = _memory_kib(pid)
    total = 64 << 20
    chunk = b"[" + b"1," * ((1 << 20) // 2 - 1) + b"1"  # 1 MiB

    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(
        f"POST {API}/runs/log-batch HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    )
    answers: list[bytes] = []
    # The answer is read while the body is still being sent, as a browser or curl does.
    reader = threading.Thread(target=lambda: answers.append(sock.recv(65536)), daemon=True)
    reader.start()
    sent = 0
    try:
        while sent < total and reader.is_alive():
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
    except OSError:
        pass  # the server stopped reading and closed: expected
    reader.join(10)
    sock.close()
    answer = answers[0] if answers else b""
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < total  # the server answered long before the body ended
    after = _memory_kib(pid)
    grown_mib = (after["VmHWM"] - before["VmRSS"]) / 1024
    assert grown_mib < 16, (before, after)  # the body was 64 MiB
    # The server is fine afterwards.
    assert httpx.get(server.url + API + "/experiments/search").status_code == 200


def test_a_chunked_body_under_the_limit_is_read_whole(server: Server) -> None:
    exp = _create(server, **{"Content-Type": "application/json"}).json()["experiment_id"]

    def pieces() -> Iterator[bytes]:  # httpx sends a generator chunked
        yield b'{"experiment_id": '
        yield f'"{exp}", "run_name": "chunked"}}'.encode()

    r = httpx.post(
        server.url + API + "/runs/create", content=pieces(), headers={"Content-Type": "application/json"}
    )
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert r.status_code == 200, r.text
    assert r.json()["run"]["info"]["run_name"] == "chunked"


# ---- artifact locations --------------------------------------------------------------------


def test_artifact_locations_outside_the_roots_are_refused(server: Server) -> None:
    allowed = server.allowed
    for location in (
        "/etc",
        str(allowed) + "/../escape",
        f"file://{allowed}/%2e%2e/escape",
        str(allowed) + "-sibling",  # a name that merely starts like the root
        "s3://team-bucket/other",
        "s3://team-bucket/ml/../other",
        "s3://other-bucket/ml",
        "mlflow-artifacts:/../../etc",
        "mlflow-artifacts:/1/%2e%2e/%2e%2e/x",
    ):
        r = httpx.post(
            server.url + API + "/experiments/create",
            json={"name": f"loc-{uuid.uuid4().hex[:8]}", "artifact_location": location},
        )
        body = _error(r, 400)
        assert body["error_code"] == "INVALID_PARAMETER_VALUE", (location, body)
        assert "artifact_location" in body["message"] and "Leave artifact_location out" in body["message"]


def test_artifact_locations_under_the_roots_are_kept(server: Server) -> None:
    for location, stored in (
        (str(server.allowed / "team-a"), str(server.allowed / "team-a")),
        (f"file://{server.allowed}/team-b", f"file://{server.allowed}/team-b"),
        ("s3://team-bucket/ml/exp", "s3://team-bucket/ml/exp"),
        ("mlflow-artifacts:/shared/exp", "mlflow-artifacts:/shared/exp"),  # the server's own store
    ):
        r = httpx.post(
            server.url + API + "/experiments/create",
            json={"name": f"loc-{uuid.uuid4().hex[:8]}", "artifact_location": location},
        )
        assert r.status_code == 200, (location, r.text)
        got = httpx.get(
            server.url + API + "/experiments/get", params={"experiment_id": r.json()["experiment_id"]}
        )
        assert got.json()["experiment"]["artifact_location"] == stored


def test_roots_default_to_the_servers_own_when_auth_is_on(tmp_path: Path) -> None:
    from loopline.config import Settings
    from loopline.errors import InvalidInput
    from loopline.server.artifact_roots import allowed_roots, confine

    off = Settings.from_env({})
    assert allowed_roots(off) is None
    confine("/anywhere", off)  # single user, no roots: as MLflow
    on = Settings.from_env({"LOOPLINE_AUTH": "1"})
    assert allowed_roots(on) == ()
    confine("mlflow-artifacts:/7", on)
    with pytest.raises(InvalidInput, match="outside the server's artifact roots"):
        confine(str(tmp_path), on)
    direct = Settings.from_env({"LOOPLINE_AUTH": "1"}, direct_artifacts_root=tmp_path.as_uri())
    confine(str(tmp_path / "exp"), direct)  # --no-serve-artifacts keeps working under its root
    with pytest.raises(InvalidInput):
        confine(str(tmp_path.parent), direct)
    link = tmp_path / "link"
    link.symlink_to("/etc")
    with pytest.raises(InvalidInput):  # a symlink under the root that leads out of it
        confine(str(link), direct)


# ---- the unmodified mlflow client ------------------------------------------------------------


def test_the_unmodified_mlflow_client_works_through_the_guard(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    client = MlflowClient(server.url)
    exp = client.create_experiment(f"mlflow-{uuid.uuid4().hex[:8]}")
    run = client.create_run(exp)
    client.log_param(run.info.run_id, "lr", "0.1")
    client.log_metric(run.info.run_id, "loss", 0.5, step=1)
    note = tmp_path / "note.txt"
    note.write_text("hi")
    mlflow.set_tracking_uri(server.url)
    try:
        client.log_artifact(run.info.run_id, str(note))  # a text/plain PUT
        client.set_terminated(run.info.run_id)
        assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["note.txt"]
        client.delete_run(run.info.run_id)
        assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    finally:
        mlflow.set_tracking_uri(None)


# ---- no credentials in answers or logs ------------------------------------------------------


def test_credentials_never_appear_in_error_bodies_or_the_log(server: Server) -> None:
    """Bad requests of every kind carrying a token (Authorization, Cookie, query string): the
    answers and the server's debug-level log never repeat it."""
    secret = {"Authorization": f"Bearer {TOKEN}", "Cookie": f"session={TOKEN}"}
    json_type = {"Content-Type": "application/json"}
    answers = [
        server.post("/experiments/create", b'{"name": ', **json_type, **secret),  # malformed JSON
        server.post("/runs/create", b'{"experiment_id": "no"}', **json_type, **secret),
        server.post("/runs/delete", b"{}", **{"Content-Type": "text/plain"}, **secret),
        server.post("/runs/delete", b"{}", **json_type, Origin="https://evil.example", **secret),
        server.post("/runs/delete", b"{}", **json_type, Host="evil.example", **secret),
        server.post("/runs/log-batch", b" " * (LIMIT + 1), **json_type, **secret),
        httpx.get(f"{server.url}/api/2.0/mlflow/nope?access_token={TOKEN}", headers=secret),
        httpx.get(f"{server.url}{API}/runs/get?run_id=x&token={TOKEN}", headers=secret),
    ]
    assert [a.status_code for a in answers] == [400, 400, 415, 403, 400, 413, 404, 404]
    for a in answers:
        assert TOKEN not in a.text and TOKEN not in str(a.headers), a.text
    log = (server.home / "server.log").read_text()
    assert "refused POST" in log  # the log is the debug-level one, with the guard's refusals
    assert TOKEN not in log


# ---- binding without authentication --------------------------------------------------------


def test_the_server_refuses_a_non_loopback_bind_without_auth(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))}
    env["LOOPLINE_TRACKING_URI"] = f"sqlite:///{tmp_path / 'x.db'}"
    r = subprocess.run(
        [sys.executable, "-m", "loopline.cli", "server", "--host", "0.0.0.0", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert "without authentication" in r.stderr
    assert "LOOPLINE_AUTH=1" in r.stderr and "--insecure-no-auth" in r.stderr
    assert not (tmp_path / "x.db").exists()  # refused before anything was made


def test_the_default_host_rule_follows_the_bind_address() -> None:
    from loopline.request_guard import HostRule

    on_loopback = HostRule("", "127.0.0.1")
    assert on_loopback.allows("localhost", {}) and on_loopback.allows("::1", {})
    assert not on_loopback.allows("ml.example.com", {})
    for bound in ("0.0.0.0", "::", "10.0.0.5"):
        assert HostRule("", bound).allows("ml.example.com", {})  # bound elsewhere: any name
    # Not started by the CLI: the connection's own address decides; in-process test apps pass.
    assert HostRule("", None).allows("testserver", {"server": ("testserver", 80)})
    assert not HostRule("", None).allows("evil.example", {"server": ("127.0.0.1", 5000)})
    assert HostRule("*", "127.0.0.1").allows("anything.example", {})
