"""The HTTP client's error mapping, against a real (tiny) HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from loopline.errors import BackendUnavailable, InvalidInput, NotFound
from loopline.protocol.http import RestClient


class _Handler(BaseHTTPRequestHandler):
    replies: dict[str, tuple[int, dict[str, str]]] = {
        "/busy": (503, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "try later"}),
        "/gateway": (502, {}),
        "/missing": (404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such run"}),
        "/bad": (400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "bad key"}),
    }
    hits: dict[str, int] = {}

    def do_GET(self) -> None:
        self.hits[self.path] = self.hits.get(self.path, 0) + 1
        status, body = self.replies[self.path]
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_transient_failures_are_retried_then_reported_as_unavailable(base_url: str) -> None:
    client = RestClient(base_url, retries=2)
    for path in ("/busy", "/gateway"):
        with pytest.raises(BackendUnavailable):  # the metric buffer keeps these points and retries
            client.call("GET", path)
        assert _Handler.hits[path] == 3


def test_refusals_map_to_their_error_class(base_url: str) -> None:
    client = RestClient(base_url, retries=0)
    with pytest.raises(NotFound, match="no such run"):
        client.call("GET", "/missing")
    with pytest.raises(InvalidInput, match="bad key"):
        client.call("GET", "/bad")


def test_unreachable_server_is_unavailable() -> None:
    from support import free_port

    with pytest.raises(BackendUnavailable, match="Cannot reach"):
        RestClient(f"http://127.0.0.1:{free_port()}", retries=1).call("GET", "/x")
