"""``loopline serve`` under load and abuse, as a real subprocess on 127.0.0.1: the in-flight limit
answers the excess 429 with Retry-After (never a 5xx), and the request guard refuses foreign hosts,
cross-origin writes, feedback that is not JSON and bodies over the limit."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from support import free_port, wait_http

from serving.helpers import COLUMNS, make_registry

LIMIT = 4


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("limits")
    registry = make_registry(home, versions=2)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))},
        "LOOPLINE_TRACKING_URI": registry.tracking_uri,
        "LOOPLINE_ARTIFACTS_URI": registry.artifacts_uri,
        "LOOPLINE_SERVE_MAX_IN_FLIGHT": str(LIMIT),
    }
    port = free_port()
    log = home / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "loopline.cli", "serve", "models:/churn/1"),
                *("--port", str(port), "--poll-interval", "0", "--no-inference-log"),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/v2/health/ready", proc, timeout=120)
        yield base
    finally:
        proc.terminate()
        proc.wait(30)
    assert "Traceback" not in log.read_text(), log.read_text()


def _rows(n: int) -> dict[str, object]:
    return {"dataframe_split": {"columns": COLUMNS, "data": [[0.1 * (i % 7)] * 20 for i in range(n)]}}


def test_forty_concurrent_requests_get_200_or_429_never_5xx(url: str) -> None:
    body = _rows(300)  # enough rows that requests overlap while one predicts

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=40, max_keepalive_connections=40)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
            return list(await asyncio.gather(*(client.post("/invocations", json=body) for _ in range(40))))

    answers = asyncio.run(burst())
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(200) >= LIMIT and statuses.count(429) >= 1, statuses
    for a in answers:
        if a.status_code == 429:
            assert int(a.headers["retry-after"]) >= 1
            assert a.json()["error_code"] == "RESOURCE_EXHAUSTED" and "--max-in-flight" in a.json()["message"]
        else:
            assert len(a.json()["predictions"]) == 300
    # The slots are all given back: alone, a request is served again, and probes were never limited.
    assert httpx.post(url + "/invocations", json=_rows(1)).status_code == 200
    assert httpx.get(url + "/ping").status_code == 200


def test_the_guard_protects_the_inference_server(url: str) -> None:
    port = url.rsplit(":", 1)[1]
    foreign = httpx.post(url + "/invocations", json=_rows(1), headers={"Host": f"rebind.example:{port}"})
    assert foreign.status_code == 400 and "rebind.example" in foreign.json()["message"]
    cross = httpx.post(
        url + "/api/2.0/loopline/feedback",
        json={"request_id": "r1", "ground_truth": 1},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403 and cross.json()["error_code"] == "PERMISSION_DENIED"
    plain = httpx.post(
        url + "/api/2.0/loopline/feedback",
        content=b'{"request_id": "r1", "ground_truth": 1}',
        headers={"Content-Type": "text/plain"},
    )
    assert plain.status_code == 415
    # A declared length over the body limit (64 MiB) is refused unread; OIP clients read "error".
    with socket.create_connection(("127.0.0.1", int(port))) as sock:
        sock.sendall(
            f"POST /v2/models/churn/infer HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n".encode()
        )
        sock.settimeout(10)
        answer = _read_answer(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and "error" in json.loads(body), answer
    # Inference bodies keep their own types: CSV is still scored.
    csv = ",".join(COLUMNS) + "\n" + ",".join(["0.5"] * 20) + "\n"
    scored = httpx.post(url + "/invocations", content=csv.encode(), headers={"Content-Type": "text/csv"})
    assert scored.status_code == 200, scored.text


def test_the_in_flight_limit_is_off_by_default_and_checked_by_the_cli() -> None:
    from typer.testing import CliRunner

    from loopline.cli.main import app
    from loopline.errors import InvalidInput
    from loopline.serving.config import ServeConfig

    assert ServeConfig().max_in_flight == 0
    assert ServeConfig.from_env({"LOOPLINE_SERVE_MAX_IN_FLIGHT": "8"}).max_in_flight == 8
    r = CliRunner().invoke(app, ["serve", "models:/churn/1", "--max-in-flight", "-1"])
    assert isinstance(r.exception, InvalidInput) and "--max-in-flight" in str(r.exception)


def _read_answer(sock: socket.socket) -> bytes:
    """One HTTP answer off a raw socket: its head, then as many body bytes as it declares (head and
    body may arrive in separate segments)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    declared = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    length = int(declared.group(1)) if declared else 0
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body
