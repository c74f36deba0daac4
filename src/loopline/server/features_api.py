"""The features routes under ``/api/2.0/loopline/features``: the feature store through the server.

``FeatureStore`` with an ``http://`` tracking URI speaks these (``loopline.features.rest_store``);
the work runs here, on the server's database, sources and online store (SQLite beside the
database, or ``LOOPLINE_ONLINE_STORE=redis://…``), so every client reads what any client wrote.
Errors are 4xx ``{"error_code", "message"}`` for bad input.

Definitions (specs are the JSON the definition classes write, see ``features.definitions``)::

    GET  features/definitions[?kind=feature_view]
         → {"definitions": [{"kind", "name", "spec", "digest", "creation_time", "last_updated_time"}]}
    GET  features/definitions/get?name=driver_stats[&kinds=feature_view,feature_service]
         → {"definition": {…}}
    POST features/apply {"changes": [{"op": "add"|"change"|"remove", "kind", "name", "spec"}],
                         "edges": [[from_uri, to_uri, relation]]}
         → {"applied": 3}
         Sources of added or changed views are checked here (the server must be able to read them);
         removed views leave the online store. Idempotent: a retry changes nothing twice.
    GET  features/lineage?uri=features:/driver_stats → {"edges": [{"from_uri", "to_uri", "relation"}]}
    POST features/lineage/record {"action", "uri", "edges": [[…]], "payload": {…}} → {}
    GET  features/materializations[?view=&limit=50] → {"materializations": [{…}]}
    GET  features/materializations/last-end?view=… → {"end_ms": 1767225600000 | null}

Data work::

    POST features/materialize {"views": ["driver_stats"] | null, "start_us": 1767139200000000 | null,
                               "end_us": …, "incremental": false, "batch_rows": 50000}
         → {"results": [{"view", "start_us", "end_us", "rows", "resumed_from"}]}
         A job (``server/jobs.py``): with ``Prefer: respond-async`` it answers 202 {"job_id"} past
         LOOPLINE_JOB_WAIT seconds, and GET jobs/{id} has the rows written so far, then this body.
         Streamed in batches; an interrupted materialisation resumes when the same window is sent again.
    POST features/historical?features=driver_stats:conv_rate&features=…|feature_service=…
         &timestamp_column=event_timestamp&full_feature_names=false[&save_as=name&run_id=…]
         body: the entity frame as an Arrow IPC stream (application/vnd.apache.arrow.stream)
         → the training set as an Arrow IPC stream
    POST features/online {"features": ["driver_stats:conv_rate", …] | "feature_service": "…",
                          "entities": {"driver_id": [1001, 1002]} | "entity_rows": [{"driver_id": 1001}],
                          "full_feature_names": false}
         → {"features": {"driver_id": [1001, 1002], "conv_rate": [0.52, null]}}
           (+ "timestamps": [column, …] naming the columns of ISO 8601 times, when there are any)
    POST features/push?name=driver_push&to=online  body: rows as an Arrow IPC stream → {"written": 3}

    POST features/training-sets?name=train&refs=driver_stats:conv_rate&refs=…[&run_id=…]
         body: a training set as an Arrow IPC stream → {"uri": "datasets:/train/1"}
         (what ``get_historical_features(save_as=…)`` through a server stores, with its lineage)

On-demand views are Python that ``apply`` stored as source text. The server runs none by default:
``FeatureStore`` through a server reads their input features here and runs them in the client,
and a request here that names one is refused (400) unless the server was started with
``LOOPLINE_SERVER_RUN_UDFS=1`` (then anyone who may apply definitions may run code on it).

File sources name paths on the server's disk: a path only the client has is refused with 400
(use a ``DatasetSource``, ``datasets:/name/version``, or a shared path or ``s3://…``).
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from loopline.errors import InvalidInput, NotFound
from loopline.features.arrow_ipc import MEDIA_TYPE, from_ipc, to_ipc
from loopline.features.definitions import (
    Definition,
    FeatureView,
    FileSource,
    OnDemandFeatureView,
    PushSource,
    from_spec,
)
from loopline.features.online_read import OnlineResponse
from loopline.features.registry import digest
from loopline.features.retrieval import refs_of, resolve
from loopline.features.store import FeatureStore
from loopline.features.types import VIEW_URI_KINDS, DefinitionChange, to_json
from loopline.protocol.jobs import ProgressFn
from loopline.server import features_models as fm
from loopline.server.features_models import (
    ApplyRequest,
    ApplyResponse,
    MaterializeRequest,
    MaterializeResponse,
    RecordLineageRequest,
    SavedResponse,
    WrittenResponse,
)
from loopline.server.http import (
    blocking,
    json_body,
    json_response,
    optional_int,
    optional_str,
    params,
    query_dict,
    required_str,
)
from loopline.server.jobs import ACCEPTED, run_job
from loopline.server.openapi_models import DocumentedRoute, Empty, documented
from loopline.server.state import context

router = APIRouter(prefix="/api/2.0/loopline", route_class=DocumentedRoute)
_KINDS = ("entity", *VIEW_URI_KINDS)
_STORES_LOCK = threading.Lock()


def _features(request: Request) -> FeatureStore:
    """The ``FeatureStore`` of the caller's workspace and actor, kept for the process: it holds the
    online store's connections and the resolved feature lists that make online reads fast."""
    ctx = context(request)
    with _STORES_LOCK:
        stores: dict[tuple[str, str], FeatureStore] | None = getattr(
            request.app.state, "loopline_features", None
        )
        if stores is None:
            stores = request.app.state.loopline_features = {}
        store = stores.get((ctx.workspace, ctx.actor))
        if store is None:
            store = stores[(ctx.workspace, ctx.actor)] = FeatureStore(context=ctx)
    return store


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def require_server_readable(view: FeatureView) -> None:
    """400 when the view reads a file path this server does not have (a path on a client's disk)."""
    src = view.source.batch_source if isinstance(view.source, PushSource) else view.source
    if not isinstance(src, FileSource) or "://" in src.path or any(c in src.path for c in "*?["):
        return
    if not Path(src.path).exists():
        raise InvalidInput(
            f"The server cannot read the source of feature view {view.name!r}: "
            f"{src.path} does not exist on the server.",
            hint="Use a DatasetSource(uri='datasets:/name/version') (push the data with `loopline data`), "
            "or a FileSource path the server can read (a shared folder, s3://…).",
        )


def refuse_user_code(defs: dict[str, Definition], features: list[str] | str, *, allowed: bool) -> None:
    """400 when ``features`` need an on-demand view and this server does not run stored code."""
    if allowed:
        return
    views = {ref.partition(":")[0] for ref in refs_of(features, defs)}
    on_demand = sorted(v for v in views if isinstance(defs.get(v), OnDemandFeatureView))
    if on_demand:
        raise InvalidInput(
            f"This server does not run on-demand views ({', '.join(on_demand)}): they are Python code.",
            hint="Ask through FeatureStore (it runs them in the client), ask for their input features, "
            "or start the server with LOOPLINE_SERVER_RUN_UDFS=1.",
        )


# ---- definitions --------------------------------------------------------------------------------


@router.get("/features/definitions")
@documented(fm.ListDefinitions, answer=fm.Definitions, errors=())
async def definitions(request: Request) -> Response:
    kind = optional_str(await params(request), "kind")
    if kind is not None and kind not in _KINDS:
        raise InvalidInput(f"Unknown kind {kind!r}.", hint=f"Use one of {', '.join(_KINDS)}.")
    stored = await blocking(_features(request).registry.list_definitions, kind)
    return json_response({"definitions": [to_json(d) for d in stored]})


@router.get("/features/definitions/get")
@documented(fm.GetDefinition, answer=fm.DefinitionAnswer)
async def get_definition(request: Request) -> Response:
    body = await params(request)
    name = required_str(body, "name")
    kinds = tuple((optional_str(body, "kinds") or ",".join(VIEW_URI_KINDS)).split(","))
    unknown = [k for k in kinds if k not in _KINDS]
    if unknown:
        raise InvalidInput(f"Unknown kind(s) {unknown}.", hint=f"Use {', '.join(_KINDS)}.")
    d = await blocking(_features(request).registry.get_definition, name, kinds)
    return json_response({"definition": to_json(d)})


def _apply(store: FeatureStore, req: ApplyRequest) -> int:
    changes: list[DefinitionChange] = []
    views: list[FeatureView] = []
    for c in req.changes:
        if c.op == "remove":
            changes.append(DefinitionChange(c.op, c.kind, c.name))
            continue
        if c.spec is None:
            raise InvalidInput(f"The {c.op} of {c.kind} {c.name!r} carries no 'spec'.")
        d = _definition(c.kind, c.name, c.spec)
        if isinstance(d, FeatureView):
            require_server_readable(d)
            views.append(d)
        changes.append(DefinitionChange(c.op, c.kind, c.name, c.spec, digest(c.spec)))
    store.compute.check_sources(views)
    store.registry.apply(changes, req.edges)
    store.compute.forget([c.name for c in req.changes if c.op == "remove" and c.kind == "feature_view"])
    store.definitions()  # reloads the cached definitions: the next online read sees the new ones
    return len(changes)


def _definition(kind: str, name: str, spec: dict[str, Any]) -> Definition:
    """The definition a spec describes; 400 when the spec is not one ``apply`` writes."""
    hint = "Send the spec the definition's .spec() writes (FeatureStore.apply does)."
    try:
        d = from_spec(kind, name, spec)
    except InvalidInput:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise InvalidInput(
            f"The spec of {kind} {name!r} is not valid: {type(e).__name__}: {e}.", hint=hint
        ) from None
    # Only what a definition would write is stored: a spec that does not survive the round trip
    # (a string where a list belongs, keys that are ignored) would load as something else later.
    if _canonical(d.spec()) != _canonical(spec):
        raise InvalidInput(f"The spec of {kind} {name!r} is not what such a definition writes.", hint=hint)
    return d


def _canonical(spec: dict[str, Any]) -> dict[str, Any]:
    features = spec.get("features")
    if isinstance(features, list) and all(isinstance(f, str) for f in features):
        return {**spec, "features": sorted(features)}  # a service's refs come back grouped by view
    return spec


@router.post("/features/apply", response_model=ApplyResponse)
async def apply(request: Request, body: ApplyRequest) -> Response:
    applied = await blocking(_apply, _features(request), body)
    return json_response({"applied": applied})


@router.get("/features/lineage")
@documented(fm.LineageQuery, answer=fm.LineageEdges, errors=())
async def lineage(request: Request) -> Response:
    uri = required_str(await params(request), "uri")
    edges = await blocking(_features(request).registry.lineage, uri)
    return json_response({"edges": [to_json(e) for e in edges]})


@router.post("/features/lineage/record")
@documented(answer=Empty, errors=())
async def record_lineage(request: Request, body: RecordLineageRequest) -> Response:
    store = _features(request)
    await blocking(_record, store, body)
    return json_response({})


def _record(store: FeatureStore, req: RecordLineageRequest) -> None:
    taken = sorted(set(req.payload) & {"action", "uri", "edges", "conn", "self"})
    if taken:
        raise InvalidInput(f"The payload may not use the key(s) {taken}.")
    store.registry.record_lineage(req.action, req.uri, req.edges, **req.payload)


@router.get("/features/materializations")
@documented(fm.ListMaterializations, answer=fm.Materializations, errors=())
async def materializations(request: Request) -> Response:
    body = await params(request)
    limit = optional_int(body, "limit", 50)
    assert limit is not None
    if not 1 <= limit <= 1000:
        raise InvalidInput(f"Invalid value {limit} for parameter 'limit': it must be between 1 and 1000.")
    jobs = await blocking(
        _features(request).registry.list_materializations, optional_str(body, "view"), limit
    )
    return json_response({"materializations": [to_json(j) for j in jobs]})


@router.get("/features/materializations/last-end")
@documented(fm.ViewQuery, answer=fm.LastEnd, errors=())
async def last_materialized_end(request: Request) -> Response:
    view = required_str(await params(request), "view")
    return json_response({"end_ms": await blocking(_features(request).registry.last_materialized_end, view)})


# ---- data work ----------------------------------------------------------------------------------


def _materialize(store: FeatureStore, req: MaterializeRequest, progress: ProgressFn) -> dict[str, Any]:
    defs = store.definitions()
    for d in defs.values():
        if isinstance(d, FeatureView) and d.online and (req.views is None or d.name in req.views):
            require_server_readable(d)
    results = store.compute.materialize(
        req.start_us,
        req.end_us,
        req.views,
        batch_rows=req.batch_rows,
        incremental=req.incremental,
        progress=progress,
    )
    return {
        "results": [
            {
                "view": r.view,
                "start_us": r.start_us,
                "end_us": r.end_us,
                "rows": r.rows,
                "resumed_from": r.resumed_from,
            }
            for r in results
        ]
    }


@router.post("/features/materialize", response_model=MaterializeResponse, responses=ACCEPTED)
async def materialize(request: Request, body: MaterializeRequest) -> Response:
    """Runs as a job: answered when done, or 202 with a job id to poll (``server/jobs.py``)."""
    if not body.incremental and body.start_us is None:
        raise InvalidInput("A materialisation that is not incremental needs 'start_us'.")
    store = _features(request)
    kind = "features.materialize-incremental" if body.incremental else "features.materialize"
    return await run_job(request, kind, lambda progress: _materialize(store, body, progress))


def _features_arg(query: dict[str, Any]) -> list[str] | str:
    """``features`` (repeated) or ``feature_service`` from a query string, exactly one of them."""
    features, service = query.get("features"), query.get("feature_service")
    if (features is None) == (service is None):
        raise InvalidInput(
            "Send exactly one of 'features' (repeat it: features=view:feature) or 'feature_service'."
        )
    if service is not None:
        if not isinstance(service, str) or not service:
            raise InvalidInput("Send one 'feature_service'.")
        return service
    if isinstance(features, str):
        return [features]
    if not isinstance(features, list):
        raise InvalidInput("Send 'features' as view:feature references.")
    return [str(f) for f in features]


def _flag(query: dict[str, Any], name: str) -> bool:
    value = query.get(name, "false")
    if value not in ("true", "false"):
        raise InvalidInput(f"Invalid value {value!r:.100} for parameter '{name}': use true or false.")
    return bool(value == "true")


def _historical(store: FeatureStore, entity: Any, query: dict[str, Any]) -> bytes:
    features = _features_arg(query)
    full = _flag(query, "full_feature_names")
    defs = store.definitions()  # an apply through another server process shows at once
    refuse_user_code(defs, features, allowed=store.settings.server_run_udfs)
    for view in resolve(features, defs, full_feature_names=full).views:
        d = defs[view]
        if isinstance(d, FeatureView):
            require_server_readable(d)
    result = store.get_historical_features(
        entity,
        features,
        timestamp_column=optional_str(query, "timestamp_column") or "event_timestamp",
        full_feature_names=full,
        format="arrow",
        save_as=optional_str(query, "save_as"),
        run_id=optional_str(query, "run_id"),
    )
    return to_ipc(result)


def _ipc_body(request: Request, raw: bytes) -> Any:
    mime = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if mime != MEDIA_TYPE:
        raise InvalidInput(
            f"Send the rows as {MEDIA_TYPE}, not {mime or 'a body without Content-Type'}.",
            hint="pyarrow.ipc.new_stream writes it; FeatureStore does this for you.",
        )
    return from_ipc(raw, "request body")


@router.post("/features/historical")
@documented(query=fm.HistoricalQuery, request_media_type=MEDIA_TYPE, answer_media_type=MEDIA_TYPE)
async def historical(request: Request) -> Response:
    """The point-in-time join of the entity frame (Arrow IPC body) with the features asked."""
    query = query_dict(request)
    entity = _ipc_body(request, await request.body())
    data = await blocking(_historical, _features(request), entity, query)
    return Response(data, media_type=MEDIA_TYPE)


@router.post("/features/push", response_model=WrittenResponse)
@documented(query=fm.PushQuery, request_media_type=MEDIA_TYPE)
async def push(request: Request) -> Response:
    query = query_dict(request)
    name = required_str(query, "name")
    to = optional_str(query, "to") or "online"
    rows = _ipc_body(request, await request.body())
    store = _features(request)
    written = await blocking(store.push, name, rows, to=to)  # type: ignore[arg-type]  # checked by push
    return json_response({"written": written})


def _save(store: FeatureStore, table: Any, query: dict[str, Any]) -> str:
    from loopline.features.training import save_training_set

    name = required_str(query, "name")
    raw = query.get("refs")
    refs = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    pairs = [tuple(r.split(":")) for r in refs]
    if not pairs or any(len(p) != 2 or not all(p) for p in pairs):
        raise InvalidInput("Send the training set's features as refs=view:feature (repeat it).")
    defs = store.definitions()
    unknown = sorted({v for v, _ in pairs if v not in defs})
    if unknown:
        raise NotFound(f"Unknown feature view(s) {unknown} in 'refs'.")
    return save_training_set(store.catalog, table, name, pairs, optional_str(query, "run_id"))


@router.post("/features/training-sets", response_model=SavedResponse, responses=ACCEPTED)
@documented(query=fm.TrainingSetQuery, request_media_type=MEDIA_TYPE)
async def save_training_set(request: Request) -> Response:
    """Version a training set the client assembled as a dataset, with lineage to its views; a job
    (a big set takes a while to write): answered when done, or 202 with a job id to poll."""
    query = query_dict(request)
    table = _ipc_body(request, await request.body())
    store = _features(request)
    return await run_job(request, "features.training-set", lambda _: {"uri": _save(store, table, query)})


def _online(store: FeatureStore, features: list[str] | str, entities: Any, full: bool) -> OnlineResponse:
    refuse_user_code(store.definitions(fresh=False), features, allowed=store.settings.server_run_udfs)
    return store.get_online_features(features, entities, full_feature_names=full)


@router.post("/features/online")
@documented(fm.OnlineRequest, answer=fm.OnlineAnswer)
async def online_features(request: Request) -> Response:
    body = await json_body(request)
    features = body.get("features")
    service = body.get("feature_service")
    if (features is None) == (service is None):
        raise InvalidInput("Send exactly one of 'features' (a list of 'view:feature') or 'feature_service'.")
    if features is not None and (
        not isinstance(features, list) or not all(isinstance(f, str) for f in features)
    ):
        raise InvalidInput("'features' must be a list of 'view:feature' strings.")
    if service is not None and not isinstance(service, str):
        raise InvalidInput("'feature_service' must be a string.")
    entities = body.get("entities", body.get("entity_rows"))
    if isinstance(entities, dict):
        if not all(isinstance(v, list) for v in entities.values()):
            raise InvalidInput("'entities' must map each join key to a list of values.")
    elif not isinstance(entities, list) or not all(isinstance(r, dict) for r in entities):
        raise InvalidInput(
            "Send 'entities' ({key: [values]}) or 'entity_rows' ([{key: value}, …]).",
            hint='e.g. {"features": ["driver_stats:conv_rate"], "entities": {"driver_id": [1001]}}',
        )
    full = body.get("full_feature_names", False)
    if not isinstance(full, bool):
        raise InvalidInput("'full_feature_names' must be true or false.")
    wanted: list[str] | str = features if features is not None else str(service)
    out = await blocking(_online, _features(request), wanted, entities, full)
    columns = out.to_dict()
    # JSON has no time type: name the columns holding times, so a client can turn them back.
    times = [k for k, vs in columns.items() if any(isinstance(v, dt.datetime) for v in vs)]
    answer: dict[str, Any] = {"features": {k: [_jsonable(v) for v in vs] for k, vs in columns.items()}}
    if times:
        answer["timestamps"] = times
    return json_response(answer)


__all__ = ["refuse_user_code", "require_server_readable", "router"]
