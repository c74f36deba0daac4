"""A Loopline client and server of incompatible REST API versions say so on the first request, with
both versions; MLflow's client (no version header) is never refused."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from loopline._version import API_VERSION, __version__
from loopline.errors import IncompatibleVersion
from loopline.protocol.http import RestClient


def test_every_answer_names_the_server_version(loopline_server: str) -> None:
    answer = httpx.get(f"{loopline_server}/api/2.0/mlflow/experiments/search?max_results=1")
    assert answer.status_code == 200
    assert answer.headers["loopline-version"] == __version__
    assert answer.headers["loopline-api"] == str(API_VERSION)


@pytest.mark.parametrize("api, upgrade", [(str(API_VERSION + 1), "server"), ("0", "client")])
def test_a_client_of_another_api_is_refused_with_both_versions(
    loopline_server: str, api: str, upgrade: str
) -> None:
    answer = httpx.post(
        f"{loopline_server}/api/2.0/mlflow/experiments/create",
        json={"name": "never-created"},
        headers={"Loopline-Api": api, "Loopline-Version": "9.9.9"},
    )
    assert answer.status_code == 409
    body = answer.json()
    assert body["error_code"] == "INCOMPATIBLE_VERSION"
    assert __version__ in body["message"] and "9.9.9" in body["message"]
    assert f"Upgrade the {upgrade}" in body["hint"]
    # Nothing was done: the experiment does not exist.
    found = httpx.get(
        f"{loopline_server}/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": "never-created"},
    )
    assert found.status_code == 404


def test_requests_without_a_version_header_pass(loopline_server: str) -> None:
    """MLflow's client, curl and browsers send no Loopline-Api header."""
    answer = httpx.post(f"{loopline_server}/api/2.0/mlflow/experiments/create", json={"name": "plain"})
    assert answer.status_code == 200, answer.text


def test_loopline_client_talks_to_its_own_server(loopline_server: str) -> None:
    client = RestClient(loopline_server, retries=0)
    exp = client.call("POST", "/api/2.0/mlflow/experiments/create", {"name": "same-version"})
    assert exp["experiment_id"]


class _OldServer(BaseHTTPRequestHandler):
    """A Loopline server of API 0 (before any this client speaks)."""

    def do_GET(self) -> None:
        body = b'{"experiments": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Loopline-Version", "0.0.1")
        self.send_header("Loopline-Api", "0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def old_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OldServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_too_old_for_the_client_is_named_on_the_first_request(old_server: str) -> None:
    client = RestClient(old_server, retries=0)
    with pytest.raises(IncompatibleVersion) as caught:
        client.call("GET", "/api/2.0/mlflow/experiments/search")
    message = str(caught.value)
    assert "0.0.1" in message and __version__ in message and "Upgrade the server" in message
