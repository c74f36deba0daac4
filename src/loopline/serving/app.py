"""The inference server: MLflow's scoring protocol and the Open Inference Protocol on one ASGI app.

=========  =====================================================  ==========================================
verb       path                                                   what
=========  =====================================================  ==========================================
POST       ``/invocations``                                       MLflow scoring: ``dataframe_split``,
                                                                  ``dataframe_records``, ``instances``,
                                                                  ``inputs``; CSV; Parquet
GET        ``/ping``, ``/health``, ``/version``                   MLflow's health (200 once ready) and version
GET        ``/v2/health/live``, ``/v2/health/ready``, ``/v2``    OIP server liveness, readiness, metadata
GET        ``/v2/models/{name}[/versions/{v}][/ready]``          OIP model metadata and readiness
POST       ``/v2/models/{name}[/versions/{v}]/infer``            OIP inference (JSON or binary tensors)
GET        ``/metrics``                                           Prometheus
POST       ``/api/2.0/loopline/feedback``                         ground truth for earlier request ids
GET        ``/api/2.0/loopline/deployment``                       what is served now, with weights
GET        ``/``, ``/docs``, ``/openapi.json``                    where things are; the API page (Swagger UI
                                                                  from the package); its document
=========  =====================================================  ==========================================

Every inference response carries ``X-Request-Id`` (the caller's, or a new one; the OIP ``id`` is
echoed) and ``X-Loopline-Model-Version`` (``models:/name/version`` of the version that answered).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from loopline import api_docs
from loopline._version import __version__
from loopline.config import Settings
from loopline.errors import BadRequest, InvalidInput, LooplineError
from loopline.request_guard import RequestGuard, serving_raw_body
from loopline.serving import oip, openapi, outputs
from loopline.serving.config import ServeConfig
from loopline.serving.features import FeatureLookup
from loopline.serving.http import (
    ClientGone,
    EndpointNotFound,
    MethodNotAllowed,
    Overloaded,
    Receive,
    Request,
    Response,
    Scope,
    Send,
    UnsupportedMediaType,
    decode_body,
    error_response,
    json_response,
    parse_headers,
    read_body,
    send_response,
)
from loopline.serving.inference_log import Feedback, InferenceLog, Prediction
from loopline.serving.metrics import Metrics
from loopline.serving.model import ServedModel
from loopline.serving.runtime import Runtime, Table
from loopline.serving.schema import InputSchema, Rows

if TYPE_CHECKING:
    from loopline.serving.auth import PredictionGate

FEEDBACK_PATH = "/api/2.0/loopline/feedback"
log = logging.getLogger("loopline.serving")

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
REQUEST_ID = "x-request-id"
MODEL_VERSION = "x-loopline-model-version"
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# uuid4() reads os.urandom for every id: 26 µs per call measured here, a tenth of a request's
# CPU. A Mersenne Twister seeded from urandom once gives ids as unique at a fraction of that.
_ids = random.Random()


def new_request_id() -> str:
    return f"{_ids.getrandbits(128):032x}"


Decode = Callable[[InputSchema], Rows]
Handler = Callable[..., Awaitable[Response]]


class Call:
    """What one inference request did, for the metrics and the inference log."""

    __slots__ = ("decode", "model", "out", "protocol", "request_id", "rows")

    def __init__(self, protocol: str, request_id: str) -> None:
        self.protocol = protocol
        self.request_id = request_id
        self.model: ServedModel | None = None
        self.rows: Rows | None = None
        self.out: Any = None
        self.decode: Decode | None = None


# ---- MLflow scoring bodies ----------------------------------------------------------------------


def _media_type(content_type: str | None) -> str:
    if not content_type:
        raise UnsupportedMediaType(
            "The request has no Content-Type.",
            hint="Send application/json, text/csv or application/vnd.apache.parquet.",
        )
    mime, *params = (p.strip() for p in content_type.split(";"))
    for p in params:
        key, _, value = p.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType("The scoring server only supports UTF-8.")
    return mime.lower()


def parse_invocations(body: bytes, content_type: str | None) -> Decode:
    """MLflow's scoring body → a function of the chosen model's schema (versions may differ)."""
    mime = _media_type(content_type)
    if mime == "application/json":
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise BadRequest(f"Malformed JSON in the request body: {e}.") from None
        if not isinstance(payload, dict):
            raise BadRequest(
                "The input must be a JSON object with exactly one of the fields " + ", ".join(FORMATS) + "."
            )
        keys = [k for k in FORMATS if k in payload]
        if len(keys) != 1:
            raise BadRequest(
                "The input must be a JSON object with exactly one of the fields "
                + ", ".join(FORMATS)
                + f"; got {sorted(payload)}."
            )
        fmt, value = keys[0], payload[keys[0]]
        if fmt == "dataframe_split":
            if not isinstance(value, dict) or "data" not in value:
                raise InvalidInput("'dataframe_split' must be an object with 'columns' and 'data'.")
            return lambda s: s.from_split(value.get("columns"), value["data"])
        if fmt == "dataframe_records":
            return lambda s: s.from_records(value)
        if isinstance(value, dict):
            if fmt == "instances":
                raise InvalidInput("'instances' must be a list (of rows or of {column: value} objects).")
            return lambda s: s.from_columns(value)
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            return lambda s: s.from_records(value)
        if not isinstance(value, list):
            raise InvalidInput(f"'{fmt}' must be a list or an object of columns; got {type(value).__name__}.")
        return lambda s: s.from_array(value, fmt)
    if mime == "text/csv":
        import pandas as pd

        try:
            frame = pd.read_csv(io.BytesIO(body))
        except Exception as e:
            raise BadRequest(f"The body is not CSV with a header row: {e}") from None
        return lambda s: s.from_frame(frame)
    if mime == "application/vnd.apache.parquet":
        import pandas as pd

        try:
            frame = pd.read_parquet(io.BytesIO(body))
        except Exception as e:
            raise BadRequest(f"The body is not a Parquet table: {e}") from None
        return lambda s: s.from_frame(frame)
    raise UnsupportedMediaType(
        f"Content-Type {mime!r} is not supported.",
        hint="Send application/json, text/csv or application/vnd.apache.parquet.",
    )


# ---- the app ------------------------------------------------------------------------------------


class ServingApp:
    """A bare ASGI app over a :class:`Runtime`."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        config: ServeConfig | None = None,
        metrics: Metrics | None = None,
        inference_log: InferenceLog | None = None,
        rng: random.Random | None = None,
        features: FeatureLookup | None = None,
        settings: Settings | None = None,
        gate: PredictionGate | None = None,
    ) -> None:
        self.runtime = runtime
        self.gate = gate  # bearer tokens on predictions and feedback (LOOPLINE_SERVE_AUTH)
        self.features = features
        self.config = config or ServeConfig()
        self.metrics = metrics or Metrics()
        self.inference_log = inference_log
        self.rng = rng or random.Random()
        self._background: set[asyncio.Task[None]] = set()
        self._weights_shown: set[tuple[str, str, str]] = set()
        self._in_flight = 0  # inference requests being handled (config.max_in_flight bounds it)
        # Host, origin, content-type and size checks before any route (loopline/request_guard.py).
        self._guarded = RequestGuard(
            self._http,
            settings=settings or Settings.from_env(),
            raw_body=serving_raw_body,
            max_raw_bytes=self.config.max_body_bytes,
            oip_errors=True,
        )
        runtime.on_batch = self._on_batch
        runtime.on_change = self._on_change
        self._static: dict[str, dict[str, tuple[Handler, str | None]]] = {
            "/invocations": {"POST": (self.invocations, "mlflow")},
            "/ping": {"GET": (self.ping, None)},
            "/health": {"GET": (self.ping, None)},
            "/version": {"GET": (self.version, None)},
            "/v2/health/live": {"GET": (self.live, None)},
            "/v2/health/ready": {"GET": (self.ready, None)},
            "/v2": {"GET": (self.server_metadata, None)},
            "/metrics": {"GET": (self.prometheus, None)},
            FEEDBACK_PATH: {"POST": (self.feedback, None)},
            "/api/2.0/loopline/deployment": {"GET": (self.deployment, None)},
            "/": {"GET": (self.root, None)},
            "/docs": {"GET": (self.docs, None)},
            "/openapi.json": {"GET": (self.openapi, None)},
        }

    # ---- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._guarded(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as e:
                    await send({"type": "lifespan.startup.failed", "message": str(e)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        if self.features is not None:
            await asyncio.to_thread(self.features.check)
        if self.inference_log is not None:
            self.inference_log.start()
        await self.runtime.start()
        if self.config.load_before_serving:
            # Several workers share one listening socket: a worker that accepted connections while
            # loading would answer 503 beside a ready one. Here it only starts accepting once ready.
            await self.runtime.loaded()
            if self.runtime.error is not None:
                raise self.runtime.error

    async def shutdown(self) -> None:
        """After uvicorn has stopped accepting and answered what was in flight: drain and flush."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=10)
        await self.runtime.stop()
        if self.features is not None:
            self.features.close()
        if self.inference_log is not None:
            await asyncio.to_thread(self.inference_log.close)

    def _route(self, method: str, path: str) -> tuple[Handler, str | None, tuple[str, ...]]:
        methods = self._static.get(path)
        args: tuple[str, ...] = ()
        if methods is None and path.startswith("/v2/models/"):
            parts = path[len("/v2/models/") :].split("/")
            name, rest = parts[0], parts[1:]
            version = None
            if len(rest) >= 2 and rest[0] == "versions":
                version, rest = rest[1], rest[2:]
            if name and version != "" and len(rest) <= 1:
                action = rest[0] if rest else ""
                handler: Handler | None = {"": self.model_metadata, "ready": self.model_ready}.get(action)
                if handler is not None:
                    methods = {"GET": (handler, None)}
                elif action == "infer":
                    methods = {"POST": (self.infer, "oip")}
                args = (name, version or "")
        if methods is None and path.startswith(api_docs.ASSETS_PATH + "/"):
            methods, args = {"GET": (self.docs_asset, None)}, (path[len(api_docs.ASSETS_PATH) + 1 :],)
        if methods is None:
            raise EndpointNotFound(
                f"No endpoint {path}.", hint="See /docs for the routes: /invocations (MLflow), /v2 (OIP)."
            )
        entry = methods.get(method)
        if entry is None:
            raise MethodNotAllowed(f"{method} is not allowed on {path}; use {', '.join(methods)}.")
        return entry[0], entry[1], args

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        path: str = scope["path"]
        call: Call | None = None
        counted = False
        try:
            handler, protocol, args = self._route(scope["method"], path)
            if self.gate is not None and (protocol is not None or path == FEEDBACK_PATH):
                await self.gate.check(scope)
            headers = parse_headers(scope["headers"])
            if protocol is not None:
                limit = self.config.max_in_flight
                if limit and self._in_flight >= limit:  # before the body is read: refusing is cheap
                    raise Overloaded(
                        f"The server is handling {self._in_flight} requests, its limit (--max-in-flight).",
                        retry_after=1,
                        hint="Retry after the number of seconds in the Retry-After header, or add workers.",
                    )
                self._in_flight += 1
                counted = True
            body = b""
            if scope["method"] == "POST":
                body = await read_body(receive, self.config.max_body_bytes)
                encoding = headers.get("content-encoding")
                if encoding is not None and encoding.strip().lower() != "identity":
                    body = await asyncio.to_thread(decode_body, body, encoding, self.config.max_body_bytes)
            request = Request(
                scope["method"],
                path,
                headers,
                body,
                scope.get("query_string", b"").decode("latin-1"),
                str(scope.get("root_path", "")).rstrip("/"),
            )
            if protocol is not None:
                rid = headers.get(REQUEST_ID)
                call = Call(
                    protocol, rid if rid is not None and _REQUEST_ID_OK.match(rid) else new_request_id()
                )
                response = await handler(request, call, *args)
            else:
                response = await handler(request, *args)
        except ClientGone:
            return
        except LooplineError as e:
            response = error_response(e, oip=path.startswith("/v2"))
        except Exception as e:  # a bug: answer 500, keep the worker
            log.exception("unhandled error on %s %s", scope["method"], path)
            response = error_response(
                LooplineError(f"Internal error: {type(e).__name__}: {e}"), oip=path.startswith("/v2")
            )
        finally:
            if counted:
                self._in_flight -= 1
        if call is not None:
            self._finish(call, response, time.perf_counter() - started)
        await send_response(send, response)

    def _finish(self, call: Call, response: Response, seconds: float) -> None:
        response.add_header(REQUEST_ID, call.request_id)
        model = call.model
        if model is not None:
            response.add_header(MODEL_VERSION, model.uri)
        self.metrics.observe_request(
            model.name if model else "",
            model.version if model else "",
            call.protocol,
            response.status,
            seconds,
        )
        if response.status == 429 and model is not None:
            self.metrics.rejected.labels(model.name, model.version).inc()
        if self.inference_log is not None and model is not None:
            ok = response.status == 200
            rows = call.rows
            self.inference_log.log_prediction(
                Prediction(
                    call.request_id,
                    int(time.time() * 1000),
                    self._deployment_name(),
                    model.name,
                    model.version,
                    "primary",
                    rows.n if rows is not None else 0,
                    model.schema.to_records(rows.data) if rows is not None else None,
                    outputs.jsonable(call.out)
                    if ok and call.out is not None and hasattr(call.out, "iloc")
                    else call.out,
                    seconds * 1000,
                    response.status,
                    "" if ok else _message(response.body),
                )
            )

    def _deployment_name(self) -> str:
        t = self.runtime.table
        return t.deployment if t is not None else ""

    # ---- callbacks from the runtime -------------------------------------------------------

    def _on_batch(self, model: ServedModel, rows: int, seconds: float) -> None:
        self.metrics.observe_batch(model.name, model.version, rows, seconds)

    def _on_change(self, table: Table) -> None:
        # Versions that left are set to 0 rather than removed (removal is not possible in
        # prometheus-client's multiprocess mode).
        now = {(m.name, m.version, "primary"): table.weights.get(m.key, 0.0) for m in table.primaries}
        if table.shadow is not None:
            now[(table.shadow.name, table.shadow.version, "shadow")] = 0.0
        for labels in self._weights_shown - now.keys():
            self.metrics.served.labels(*labels).set(0)
        for labels, weight in now.items():
            self.metrics.served.labels(*labels).set(weight)
        self._weights_shown = set(now)

    # ---- inference ---------------------------------------------------------------------------

    def _route_key(self, request: Request) -> str | None:
        t = self.runtime.table
        header = t.resolved.sticky_header if t is not None else None
        return request.header(header) if header else None

    async def _predict(self, call: Call, model: ServedModel, decode: Decode) -> Any:
        call.model = model
        call.decode = decode
        rows = decode(model.schema)
        call.rows = rows
        call.out = await model.predict(rows)
        self._shadow(call)
        return call.out

    def _shadow(self, call: Call) -> None:
        t = self.runtime.table
        if t is None or t.shadow is None or call.decode is None or call.model is None:
            return
        if t.shadow_rate < 1 and self.rng.random() >= t.shadow_rate:
            return
        task = asyncio.get_running_loop().create_task(self._run_shadow(t.shadow, t.deployment, call))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _run_shadow(self, shadow: ServedModel, deployment: str, call: Call) -> None:
        """A copy of the request for the shadow: logged under the same request id, never returned."""
        started = time.perf_counter()
        status, error, out, rows = 200, "", None, None
        primary = call.model
        try:
            same = primary is not None and shadow.schema.key == primary.schema.key
            decode = call.decode
            assert decode is not None  # a shadow is started only for a call that was decoded
            rows = call.rows if same and call.rows is not None else decode(shadow.schema)
            out = await shadow.predict(rows)
            outcome = "ok"
        except Overloaded:
            self.metrics.shadow.labels(shadow.name, shadow.version, "dropped").inc()
            return
        except LooplineError as e:
            status, error, outcome = e.status_code, e.message, "error"
        except Exception as e:
            status, error, outcome = 500, f"{type(e).__name__}: {e}", "error"
            log.exception("shadow %s failed", shadow.uri)
        self.metrics.shadow.labels(shadow.name, shadow.version, outcome).inc()
        if self.inference_log is not None:
            self.inference_log.log_prediction(
                Prediction(
                    call.request_id,
                    int(time.time() * 1000),
                    deployment,
                    shadow.name,
                    shadow.version,
                    "shadow",
                    rows.n if rows is not None else 0,
                    shadow.schema.to_records(rows.data) if rows is not None else None,
                    outputs.jsonable(out) if out is not None and hasattr(out, "iloc") else out,
                    (time.perf_counter() - started) * 1000,
                    status,
                    error,
                )
            )

    async def invocations(self, request: Request, call: Call) -> Response:
        if self.features is not None:
            decode = self.features.decode(request.body, request.header("content-type"))
        else:
            decode = parse_invocations(request.body, request.header("content-type"))
        model = self.runtime.choose(key=self._route_key(request))
        out = await self._predict(call, model, decode)
        return json_response({"predictions": outputs.jsonable(out)})

    async def infer(self, request: Request, call: Call, name: str, version: str) -> Response:
        model = self.runtime.choose(name, version or None, self._route_key(request))
        call.model = model
        req = oip.parse_infer(request.body, request.header(oip.HEADER_LENGTH))
        if req.id is not None and request.header(REQUEST_ID) is None:
            call.request_id = req.id
        tensors = req.inputs
        out = await self._predict(call, model, lambda s: s.from_tensors(tensors))
        produced = outputs.oip_outputs(out)
        if req.outputs:
            produced = outputs.select(produced, req.outputs)
        binary = {n for n, _ in produced} if req.all_binary else req.binary_outputs
        body_out, header_length = oip.encode_response(
            model_name=model.name,
            model_version=model.version,
            request_id=req.id if req.id is not None else call.request_id,
            outputs=produced,
            binary=binary,
        )
        if header_length is None:
            return Response(200, body_out)
        response = Response(200, body_out, "application/octet-stream")
        response.add_header("inference-header-content-length", str(header_length))
        return response

    # ---- the routes' documentation ------------------------------------------------------------

    async def root(self, request: Request) -> Response:
        return json_response(
            {
                "name": "loopline serve",
                "version": __version__,
                "docs": "/docs",
                "openapi": "/openapi.json",
                "apis": {"mlflow": "/invocations", "oip": "/v2"},
                "health": "/ping",
            }
        )

    async def docs(self, request: Request) -> Response:
        page = api_docs.page("loopline serve", "/openapi.json", request.root_path)
        return Response(200, page.encode(), "text/html; charset=utf-8")

    async def docs_asset(self, request: Request, name: str) -> Response:
        found = api_docs.asset(name)
        if found is None:
            raise EndpointNotFound(f"No file {name!r} in the API page's assets.")
        response = Response(200, found[0], found[1])
        response.add_header("cache-control", "public, max-age=86400")
        return response

    async def openapi(self, request: Request) -> Response:
        t = self.runtime.table
        inputs = t.primaries[0].schema.metadata() if t is not None and t.primaries else None
        return json_response(openapi.document(inputs))

    # ---- health, metadata, operations ---------------------------------------------------------

    async def ping(self, request: Request) -> Response:
        self.runtime.live()  # 503 with the reason until every model is loaded and warm
        return Response(200, b"OK", "text/plain; charset=utf-8")

    async def version(self, request: Request) -> Response:
        return Response(200, __version__.encode(), "text/plain; charset=utf-8")

    async def live(self, request: Request) -> Response:
        return json_response({"live": True})

    async def ready(self, request: Request) -> Response:
        if not self.runtime.ready:
            return json_response({"ready": False, "error": self._reason()}, 503)
        return json_response({"ready": True})

    def _reason(self) -> str:
        return self.runtime.error.message if self.runtime.error is not None else "loading"

    async def server_metadata(self, request: Request) -> Response:
        return json_response(
            {"name": "loopline", "version": __version__, "extensions": ["binary_tensor_data"]}
        )

    async def model_metadata(self, request: Request, name: str, version: str) -> Response:
        model = self.runtime.choose(name, version or None)
        meta = model.metadata()
        t = self.runtime.table
        if not version and t is not None:
            served = sorted(
                {m.version for m in t.primaries if m.name == name and m.version}, key=_version_key
            )
            meta["versions"] = served
        return json_response(meta)

    async def model_ready(self, request: Request, name: str, version: str) -> Response:
        if not self.runtime.ready:
            return json_response({"name": name, "ready": False, "error": self._reason()}, 503)
        model = self.runtime.choose(name, version or None)
        return json_response({"name": name, "version": model.version, "ready": model.ready})

    async def prometheus(self, request: Request) -> Response:
        self.metrics.ready.set(1 if self.runtime.ready else 0)
        return Response(200, self.metrics.render(), self.metrics.content_type)

    async def deployment(self, request: Request) -> Response:
        t = self.runtime.table
        if t is None:
            return json_response({"ready": False, "error": self._reason()}, 503)
        return json_response(
            {
                "name": t.deployment,
                "ready": self.runtime.ready,
                "routes": [
                    {
                        "model": m.uri,
                        "weight": t.weights.get(m.key, 0.0),
                        "batching": m.config.max_batch_size > 1,
                    }
                    for m in t.primaries
                ],
                "shadow": {"model": t.shadow.uri, "sample_rate": t.shadow_rate} if t.shadow else None,
            }
        )

    async def feedback(self, request: Request) -> Response:
        """Ground truth for earlier predictions: ``{"request_id", "ground_truth"}`` or a list of them."""
        try:
            payload = orjson.loads(request.body)
        except orjson.JSONDecodeError as e:
            raise BadRequest(f"Malformed JSON in the request body: {e}.") from None
        items = payload.get("feedback") if isinstance(payload, dict) and "feedback" in payload else [payload]
        if not isinstance(items, list) or not items:
            raise InvalidInput('\'feedback\' must be a non-empty list of {"request_id", "ground_truth"}.')
        records = []
        now = int(time.time() * 1000)
        for i, item in enumerate(items):
            where = f"feedback[{i}]" if len(items) > 1 else "The body"
            if not isinstance(item, dict):
                raise InvalidInput(f"{where} must be an object with 'request_id' and 'ground_truth'.")
            rid = item.get("request_id")
            if not isinstance(rid, str) or not rid:
                raise InvalidInput(f"{where}: 'request_id' must be a non-empty string (from X-Request-Id).")
            if "ground_truth" not in item:
                raise InvalidInput(f"{where}: 'ground_truth' is missing.")
            records.append(Feedback(rid, now, item["ground_truth"]))
        if self.inference_log is None:
            raise InvalidInput(
                "The inference log is off on this server, so feedback cannot be joined.",
                hint="Start it without --no-inference-log.",
            )
        for r in records:
            self.inference_log.log_feedback(r)
        return json_response({"accepted": len(records)})


def _version_key(v: str) -> tuple[int, str]:
    return (int(v), "") if v.isdigit() else (1 << 62, v)


def _message(body: bytes) -> str:
    with contextlib.suppress(Exception):
        return str(orjson.loads(body).get("message", ""))
    return ""


def create_app(config: ServeConfig | None = None, *, client: Any = None) -> ServingApp:
    """The inference server for ``config`` (default: from ``LOOPLINE_SERVE_*`` variables)."""
    config = config or ServeConfig.from_env()
    metrics = Metrics()
    runtime = Runtime(
        model_uri=config.model_uri,
        deployment=config.deployment,
        batching=config.batching,
        poll_interval=config.poll_interval,
        allow_pickle=config.allow_pickle,
        name=config.name,
        version=config.version,
        client=client,
    )
    inference_log = None
    if config.inference_log:
        from loopline.tracking import Client, default_client

        tracking = client if isinstance(client, Client) else default_client()
        inference_log = InferenceLog(
            tracking.artifacts,
            flush_interval=config.log_flush_interval,
            on_drop=lambda n: metrics.log_dropped.inc(n),
        )
    settings = getattr(client, "settings", None)
    features = None
    if config.feature_service:
        from loopline.features import FeatureStore

        features = FeatureLookup(
            config.feature_service, FeatureStore(settings) if settings is not None else None
        )
    gate = None
    if config.auth:
        from loopline.serving.auth import PredictionGate

        gate = PredictionGate.for_settings(settings or Settings.from_env())
    return ServingApp(
        runtime,
        config=config,
        metrics=metrics,
        inference_log=inference_log,
        features=features,
        settings=settings,
        gate=gate,
    )
