"""The plain-route index (server/routing.py): the same answers as FastAPI's own matching, found sooner."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel
from support import free_port, serve_loopline, wait_http

from loopline.server.routing import PlainRoutes


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_loopline(tmp_path_factory.mktemp("routing")) as url:
        yield url


@pytest.mark.parametrize("prefix", ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"])
def test_indexed_routes_answer_like_mlflow_under_both_prefixes(server: str, prefix: str) -> None:
    with httpx.Client(base_url=server) as http:
        exp = http.post(f"{prefix}/experiments/create", json={"name": f"routing{prefix.replace('/', '-')}"})
        assert exp.status_code == 200, exp.text
        run = http.post(f"{prefix}/runs/create", json={"experiment_id": exp.json()["experiment_id"]})
        run_id = run.json()["run"]["info"]["run_id"]
        logged = http.post(
            f"{prefix}/runs/log-metric", json={"run_id": run_id, "key": "m", "value": 2.5, "timestamp": 1}
        )
        assert logged.status_code == 200, logged.text
        got = http.get(f"{prefix}/runs/get", params={"run_id": run_id}).json()
        assert got["run"]["data"]["metrics"] == [{"key": "m", "value": 2.5, "timestamp": 1, "step": 0}]
        # The app's exception handlers still shape errors raised inside an indexed endpoint.
        bad = http.post(f"{prefix}/runs/log-metric", json={"run_id": run_id, "key": "m", "value": "x"})
        assert bad.status_code == 400
        assert bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_wrong_method_is_a_405_json_naming_the_allowed_ones(server: str) -> None:
    r = httpx.get(f"{server}/api/2.0/mlflow/runs/log-metric")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert r.json()["error_code"] == "BAD_REQUEST"
    assert "POST" in r.json()["hint"]
    probe = httpx.post(f"{server}/health")
    assert (probe.status_code, probe.headers["allow"]) == (405, "GET")


def test_probes_and_routes_with_parameters_still_answer(server: str) -> None:
    assert httpx.get(f"{server}/health").text == "OK"
    assert httpx.get(f"{server}/ping").text == "OK"
    missing = httpx.get(f"{server}/api/2.0/mlflow/no-such-route")
    assert (missing.status_code, missing.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    # A route with a path parameter is left to FastAPI's matching.
    lineage = httpx.get(f"{server}/api/2.0/loopline/pipelines/runs/nope")
    assert lineage.status_code == 404 and "error_code" in lineage.json()


def test_openapi_still_documents_the_indexed_routes_once(server: str) -> None:
    paths = httpx.get(f"{server}/openapi.json").json()["paths"]
    assert "post" in paths["/api/2.0/mlflow/runs/log-metric"]
    assert "/ajax-api/2.0/mlflow/runs/log-metric" not in paths  # the UI's twin is not documented twice


@contextlib.contextmanager
def _serve(app: FastAPI) -> Iterator[httpx.Client]:
    """A toy app under a real uvicorn on 127.0.0.1, in a thread."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_http(f"http://127.0.0.1:{port}/docs")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)


class Body(BaseModel):
    x: int


def _dep() -> int:
    return 1


def test_only_routes_fastapi_has_nothing_to_do_for_are_indexed() -> None:
    router = APIRouter()

    @router.post("/plain")
    async def plain(request: Request) -> Response:
        return PlainTextResponse(f"plain {request.method}")

    @router.post("/plain")  # registered second: FastAPI would never reach it, nor may the index
    async def shadowed(request: Request) -> Response:
        return PlainTextResponse("shadowed")

    @router.get("/items/{item}")
    async def with_path(item: str) -> Response:
        return PlainTextResponse(item)

    @router.post("/typed")
    async def typed(body: Body) -> Body:
        return body

    @router.get("/depends")
    async def depends(request: Request, n: int = Depends(_dep)) -> Response:
        return PlainTextResponse(str(n))

    @router.get("/query")
    async def query(q: str) -> Response:
        return PlainTextResponse(q)

    index = PlainRoutes([router])
    assert len(index) == 1  # POST /plain, once

    app = FastAPI()
    app.router.routes.insert(0, index)
    app.include_router(router)
    with _serve(app) as client:
        assert client.post("/plain").text == "plain POST"
        assert client.get("/items/a").text == "a"
        assert client.post("/typed", json={"x": 3}).json() == {"x": 3}
        assert client.post("/typed", json={"x": "no"}).status_code == 422  # FastAPI still validates
        assert client.get("/depends").text == "1"
        assert client.get("/query", params={"q": "z"}).text == "z"
        assert client.get("/plain").status_code == 405


def test_other_methods_of_an_indexed_path_stay_reachable() -> None:
    router = APIRouter()

    @router.get("/thing")
    async def get_thing(request: Request) -> Response:
        return PlainTextResponse("get")

    @router.delete("/thing")
    async def delete_thing(request: Request) -> Response:
        return PlainTextResponse("delete")

    app = FastAPI()
    app.router.routes.insert(0, PlainRoutes([router]))
    app.include_router(router)
    with _serve(app) as client:
        assert client.get("/thing").text == "get"
        assert client.delete("/thing").text == "delete"
        assert client.put("/thing").status_code == 405
