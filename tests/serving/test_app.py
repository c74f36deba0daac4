"""The inference app in-process (httpx over ASGI): both protocols, errors, metrics, log, deployments."""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from loopline.registry import RegistryClient
from loopline.serving import ServeConfig, read_log, rollback_deployment, set_deployment
from loopline.serving.app import ServingApp, create_app
from serving.helpers import COLUMNS, Registry

Scenario = Callable[[httpx.AsyncClient, ServingApp], Awaitable[None]]


@asynccontextmanager
async def serving(registry: Registry, **options: Any) -> AsyncIterator[tuple[httpx.AsyncClient, ServingApp]]:
    config = ServeConfig(**{"poll_interval": 0, "log_flush_interval": 3600, **options})
    app = create_app(config, client=registry.client())
    await app.startup()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://serve") as http:
        for _ in range(600):
            if app.runtime.ready or app.runtime.error:
                break
            await asyncio.sleep(0.05)
        try:
            yield http, app
        finally:
            await app.shutdown()


def split(X: Any) -> dict[str, Any]:
    return {"dataframe_split": {"columns": list(X.columns), "data": X.to_numpy().tolist()}}


def test_mlflow_scoring_formats_answer_the_same_predictions(registry: Registry) -> None:
    X = registry.X.iloc[:3]
    want = registry.expected(1, X)

    async def scenario() -> None:
        async with serving(registry, model_uri="models:/churn@champion") as (http, _):
            bodies: list[dict[str, Any]] = [
                {"json": split(X)},
                {"json": {"dataframe_records": X.to_dict(orient="records")}},
                {"json": {"instances": X.to_dict(orient="records")}},
                {"json": {"inputs": X.to_dict(orient="list"), "params": {}}},
                {"content": X.to_csv(index=False), "headers": {"content-type": "text/csv"}},
            ]
            buf = io.BytesIO()
            X.to_parquet(buf)
            bodies.append(
                {"content": buf.getvalue(), "headers": {"content-type": "application/vnd.apache.parquet"}}
            )
            for body in bodies:
                r = await http.post("/invocations", **body)
                assert r.status_code == 200, r.text
                assert r.json() == {"predictions": want}
                assert r.headers["x-loopline-model-version"] == "models:/churn/1"
                assert len(r.headers["x-request-id"]) == 32
            r = await http.post("/invocations", json=split(X), headers={"x-request-id": "order-42"})
            assert r.headers["x-request-id"] == "order-42"
            for path in ("/ping", "/health"):
                assert (await http.get(path)).status_code == 200
            assert (await http.get("/version")).text

    asyncio.run(scenario())


def test_bad_requests_get_4xx_naming_the_problem(registry: Registry) -> None:
    X = registry.X.iloc[:2]

    async def scenario() -> None:
        async with serving(registry, model_uri="models:/churn/1") as (http, _):
            body = split(X)
            cases: list[tuple[dict[str, Any], int, str, str]] = [
                ({"json": {**body, "instances": [[1]]}}, 400, "BAD_REQUEST", "exactly one"),
                ({"json": {"nothing": 1}}, 400, "BAD_REQUEST", "exactly one"),
                ({"json": {"inputs": [[0.0] * 20]}}, 400, "INVALID_PARAMETER_VALUE", "named columns"),
                (
                    {"content": b"hello", "headers": {"content-type": "text/plain"}},
                    415,
                    "BAD_REQUEST",
                    "text/plain",
                ),
                (
                    {"content": b"{", "headers": {"content-type": "application/json"}},
                    400,
                    "BAD_REQUEST",
                    "JSON",
                ),
                (
                    {"json": {"dataframe_split": {"columns": COLUMNS[:19], "data": [[0] * 19]}}},
                    400,
                    "INVALID_PARAMETER_VALUE",
                    "'f19'",
                ),
                (
                    {"json": {"dataframe_split": {"columns": COLUMNS, "data": [["x"] + [0] * 19]}}},
                    400,
                    "INVALID_PARAMETER_VALUE",
                    "'f0'",
                ),
                (
                    {"content": b"a,b\n1,2\n", "headers": {"content-type": "text/csv"}},
                    400,
                    "INVALID_PARAMETER_VALUE",
                    "missing",
                ),
            ]
            for kwargs, status, code, needle in cases:
                r = await http.post("/invocations", **kwargs)
                assert r.status_code == status, (kwargs, r.text)
                assert r.json()["error_code"] == code
                assert needle in r.json()["message"], r.json()
            assert (await http.get("/invocations")).status_code == 405
            assert (await http.get("/nowhere")).json()["error_code"] == "ENDPOINT_NOT_FOUND"
            r = await http.post("/v2/models/churn/infer", json={"inputs": "x"})
            assert r.status_code == 400 and "inputs" in r.json()["error"]
            r = await http.post("/v2/models/nope/infer", json={"inputs": []})
            assert r.status_code == 404 and "nope" in r.json()["error"]
            assert (await http.post("/invocations", json=body)).status_code == 200  # still serving

    asyncio.run(scenario())


def test_oip_metadata_readiness_and_inference(registry: Registry) -> None:
    X = registry.X.iloc[:4]

    async def scenario() -> None:
        async with serving(registry, model_uri="models:/churn@champion") as (http, _):
            assert (await http.get("/v2/health/live")).json() == {"live": True}
            assert (await http.get("/v2/health/ready")).json() == {"ready": True}
            assert (await http.get("/v2")).json()["extensions"] == ["binary_tensor_data"]
            meta = (await http.get("/v2/models/churn")).json()
            assert meta["name"] == "churn" and meta["versions"] == ["1"]
            assert meta["inputs"] == [
                {
                    "name": "input-0",
                    "datatype": "FP64",
                    "shape": [-1, 20],
                    "parameters": {"columns": ",".join(COLUMNS)},
                }
            ]
            assert meta["outputs"] == [{"name": "output-0", "datatype": "INT64", "shape": [-1]}]
            assert (await http.get("/v2/models/churn/versions/1/ready")).json()["ready"] is True
            assert (await http.get("/v2/models/churn/versions/7/ready")).status_code == 404
            body = {
                "id": "req-1",
                "inputs": [
                    {"name": "input-0", "shape": [4, 20], "datatype": "FP32", "data": X.to_numpy().tolist()}
                ],
            }
            for path in ("/v2/models/churn/infer", "/v2/models/churn/versions/1/infer"):
                r = await http.post(path, json=body)
                assert r.status_code == 200, r.text
                out = r.json()
                assert out["id"] == "req-1" and out["model_name"] == "churn" and out["model_version"] == "1"
                assert out["outputs"][0]["data"] == registry.expected(1, X)
                assert out["outputs"][0]["shape"] == [4]
            per_column = {
                "inputs": [
                    {"name": c, "shape": [4], "datatype": "FP64", "data": X[c].tolist()} for c in COLUMNS
                ],
                "outputs": [{"name": "output-0"}],
            }
            r = await http.post("/v2/models/churn/infer", json=per_column)
            assert r.json()["outputs"][0]["data"] == registry.expected(1, X)
            assert r.json()["id"] == r.headers["x-request-id"]  # no id sent: ours is echoed
            r = await http.post("/v2/models/churn/infer", json={**per_column, "outputs": [{"name": "proba"}]})
            assert r.status_code == 400 and "proba" in r.json()["error"]

    asyncio.run(scenario())


def test_big_requests_are_cut_to_max_batch_size_and_metrics_count_everything(registry: Registry) -> None:
    X = registry.X.iloc[:50]

    async def scenario() -> None:
        async with serving(registry, model_uri="models:/churn/1", max_batch_size=16) as (http, _):
            r = await http.post("/invocations", json=split(X))
            assert r.json()["predictions"] == registry.expected(1, X)
            rs = await asyncio.gather(
                *(http.post("/invocations", json=split(X.iloc[i : i + 1])) for i in range(32))
            )
            assert all(r.status_code == 200 for r in rs)
            assert [r.json()["predictions"][0] for r in rs] == registry.expected(1, X.iloc[:32])
            await http.post("/invocations", json={"inputs": [[1]]})
            text = (await http.get("/metrics")).text
            assert (
                'loopline_requests_total{code="200",model="churn",protocol="mlflow",version="1"} 33.0' in text
            )
            assert (
                'loopline_requests_total{code="400",model="churn",protocol="mlflow",version="1"} 1.0' in text
            )
            assert 'loopline_predicted_rows_total{model="churn",version="1"} 82.0' in text
            assert 'loopline_batch_rows_bucket{le="16.0",model="churn",version="1"}' in text
            assert "loopline_request_duration_seconds_bucket" in text
            assert 'loopline_model_weight{model="churn",role="primary",version="1"} 1.0' in text
            assert "loopline_ready 1.0" in text

    asyncio.run(scenario())


def test_overload_answers_429_with_retry_after(registry: Registry) -> None:
    async def scenario() -> None:
        async with serving(registry, model_uri="models:/churn/1", max_batch_size=1, max_queue_rows=1) as (
            http,
            _,
        ):
            body = split(registry.X.iloc[:1])
            rs = await asyncio.gather(*(http.post("/invocations", json=body) for _ in range(20)))
            codes = Counter(r.status_code for r in rs)
            assert codes[200] >= 1 and codes[429] >= 1 and set(codes) <= {200, 429}, codes
            busy = next(r for r in rs if r.status_code == 429)
            assert int(busy.headers["retry-after"]) >= 1
            assert busy.json()["error_code"] == "RESOURCE_EXHAUSTED"

    asyncio.run(scenario())


def test_inference_log_and_feedback_join_on_request_id(registry: Registry) -> None:
    X = registry.X.iloc[:3]

    async def scenario() -> None:
        async with serving(registry, model_uri="models:/churn/1") as (http, app):
            ids = []
            for i in range(3):
                r = await http.post("/invocations", json=split(X.iloc[i : i + 1]))
                ids.append(r.headers["x-request-id"])
            await http.post("/invocations", json={"dataframe_split": {"columns": ["f0"], "data": [[1]]}})
            r = await http.post(
                "/api/2.0/loopline/feedback",
                json={"feedback": [{"request_id": rid, "ground_truth": 1} for rid in ids]},
            )
            assert r.json() == {"accepted": 3}
            bad = await http.post("/api/2.0/loopline/feedback", json={"ground_truth": 1})
            assert bad.status_code == 400 and "request_id" in bad.json()["message"]
            assert app.inference_log is not None
            await asyncio.to_thread(app.inference_log.flush)

    asyncio.run(scenario())
    store = registry.client().artifacts
    log = read_log(store, model="churn").to_pylist()
    ok = [row for row in log if row["status"] == 200]
    served = {row["request_id"]: row for row in ok}
    feedback = read_log(store, "feedback").to_pylist()
    for row in feedback[-3:]:
        pred = served[row["request_id"]]
        assert pred["version"] == "1" and pred["role"] == "primary" and pred["rows"] == 1
        assert pred["latency_ms"] > 0
        assert '"columns":["f0"' in pred["inputs"]
    assert any(row["status"] == 400 and "'f1'" in row["error"] for row in log)
    files = [f.path for f in store.walk("inference-log/predictions")]
    assert all("/model=churn/date=" in p and "/hour=" in p for p in files), files


def test_deployment_canary_shadow_and_alias_move_without_restart(registry: Registry) -> None:
    X = registry.X.iloc[:1]
    client = registry.client()
    set_deployment(
        "churn-prod",
        [("models:/churn@champion", 90), ("models:/churn@challenger", 10)],
        shadow="models:/churn/3",
        client=client,
    )

    async def scenario() -> None:
        async with serving(registry, deployment="churn-prod") as (http, app):
            state = (await http.get("/api/2.0/loopline/deployment")).json()
            assert [(r["model"], r["weight"]) for r in state["routes"]] == [
                ("models:/churn/1", 0.9),
                ("models:/churn/2", 0.1),
            ]
            assert state["shadow"]["model"] == "models:/churn/3"
            seen = Counter()
            for _ in range(200):
                r = await http.post("/invocations", json=split(X))
                assert r.status_code == 200
                seen[r.headers["x-loopline-model-version"]] += 1
            assert set(seen) == {"models:/churn/1", "models:/churn/2"}, seen  # the shadow never answers
            assert 2 <= seen["models:/churn/2"] <= 45, seen  # 10% of 200, +-4.5 sigma
            r = await http.post(
                "/v2/models/churn/versions/3/infer",
                json={
                    "inputs": [
                        {
                            "name": "input-0",
                            "shape": [1, 20],
                            "datatype": "FP64",
                            "data": X.to_numpy().tolist(),
                        }
                    ]
                },
            )
            assert r.json()["model_version"] == "3"  # addressable directly, for testing it

            # Move the alias while requests are in flight: none fails, then v3 answers the champion's share.
            async def load() -> list[int]:
                codes = []
                for _ in range(40):
                    codes.append((await http.post("/invocations", json=split(X))).status_code)
                return codes

            movers = asyncio.gather(*(load() for _ in range(4)))
            await asyncio.sleep(0.01)
            RegistryClient(client).set_alias("churn", "champion", 3)
            assert await app.runtime.refresh()
            codes = [c for batch in await movers for c in batch]
            assert codes == [200] * 160
            after = Counter()
            for _ in range(50):
                after[
                    (await http.post("/invocations", json=split(X))).headers["x-loopline-model-version"]
                ] += 1
            assert set(after) <= {"models:/churn/3", "models:/churn/2"} and after["models:/churn/3"] > 30, (
                after
            )
            assert not await app.runtime.refresh()  # nothing changed since
            await asyncio.sleep(0.2)  # shadow copies finish
            assert app.inference_log is not None
            await asyncio.to_thread(app.inference_log.flush)

    asyncio.run(scenario())
    RegistryClient(client).set_alias("churn", "champion", 1)
    log = read_log(client.artifacts, model="churn").to_pylist()
    shadow = [row for row in log if row["role"] == "shadow"]
    primary = {row["request_id"] for row in log if row["role"] == "primary"}
    assert len(shadow) >= 200 and all(row["version"] == "3" for row in shadow)
    assert {row["request_id"] for row in shadow} <= primary  # each is a copy of a served request
    X1 = registry.X.iloc[:1]
    assert any(row["outputs"] == f"[{registry.expected(3, X1)[0]}]" for row in shadow)


def test_a_new_revision_changes_the_weights_without_restart_and_a_rollback_restores_them(
    registry: Registry,
) -> None:
    client = registry.client()
    set_deployment("reweighted", [("models:/churn/1", 90), ("models:/churn/2", 10)], client=client)

    async def weights(http: httpx.AsyncClient) -> list[tuple[str, float]]:
        state = (await http.get("/api/2.0/loopline/deployment")).json()
        return [(r["model"], r["weight"]) for r in state["routes"]]

    async def scenario() -> None:
        async with serving(registry, deployment="reweighted") as (http, app):
            assert await weights(http) == [("models:/churn/1", 0.9), ("models:/churn/2", 0.1)]
            assert not await app.runtime.refresh()  # same revision, same aliases: nothing to do
            changed = await asyncio.to_thread(
                set_deployment, "reweighted", [("models:/churn/2", 1)], expected_revision=1, client=client
            )
            assert changed.revision == 2
            assert await app.runtime.refresh()
            assert await weights(http) == [("models:/churn/2", 1.0)]
            r = await http.post("/invocations", json=split(registry.X.iloc[:1]))
            assert r.headers["x-loopline-model-version"] == "models:/churn/2"
            await asyncio.to_thread(rollback_deployment, "reweighted", 1, client=client)
            assert await app.runtime.refresh()
            assert await weights(http) == [("models:/churn/1", 0.9), ("models:/churn/2", 0.1)]

    asyncio.run(scenario())


def test_a_model_that_cannot_load_reports_why(registry: Registry) -> None:
    async def scenario() -> None:
        async with serving(registry, model_uri="models:/churn/99") as (http, app):
            assert app.runtime.error is not None
            r = await http.get("/v2/health/ready")
            assert r.status_code == 503 and "99" in r.json()["error"]
            assert (await http.get("/v2/health/live")).status_code == 200
            r = await http.post("/invocations", json=split(registry.X.iloc[:1]))
            assert r.status_code == 503 and r.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"

    asyncio.run(scenario())
