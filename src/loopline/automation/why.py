"""``loopline why REQUEST_ID``: why did this prediction come out this way?

From one request id to everything that shaped its answer, one hop at a time:

1. the inference log (``serving/log_schema.py``'s layout): the record → deployment, model, version,
   time (newest parts first; a shadow's record of the same request is named too);
2. the deployment's revision in force at that time (its routes, weights and resolved aliases);
3. the model version (registry) → its run (tracking): params, metrics, tags, code commit, datasets;
4. the version's upstream lineage: dataset versions, features, pipeline runs, code;
5. the loop: the ``loop.gate`` verdict on the version (a rollout whose payload ``candidate`` is it)
   and every event of that rollout (steps, approval, promotion or rollback).

What cannot be found (a deleted deployment, a version from another registry, a version the loop
never judged) is said in ``notes`` rather than failing the whole answer. ``explain(context, id)``
works on the context's database and artifact store, or asks its ``loopline server``
(``GET /api/2.0/loopline/why/{request_id}``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from loopline.automation import events as ev
from loopline.errors import InvalidInput, NotFound
from loopline.metadata.lineage import Event

if TYPE_CHECKING:
    from loopline.artifacts import ArtifactStore
    from loopline.context import Context
    from loopline.tracking import Client

REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"  # what the inference server accepts as X-Request-Id
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
_PART = re.compile(r"date=([^/]+)/hour=([^/]+)/part-(\d+)")
GIT_COMMIT_TAG = "mlflow.source.git.commit"
GIT_DIRTY_TAG = "loopline.source.git.dirty"


@dataclass(frozen=True)
class Served:
    """The inference log's record of the request (the primary's, when a shadow answered too)."""

    request_id: str
    time_ms: int
    deployment: str  # "" when a model was served without a deployment
    model: str
    version: str
    role: str  # primary | shadow
    rows: int
    status: int
    latency_ms: float
    error: str = ""
    inputs: Any = None
    outputs: Any = None

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model}/{self.version}"


@dataclass(frozen=True)
class DeploymentState:
    """The deployment's revision in force when the request was served."""

    name: str
    revision: int
    time_ms: int
    actor: str
    comment: str
    routes: Mapping[str, float]  # model URI of the spec → weight
    resolved: Mapping[str, str]  # model URI of the spec → the version it named then
    shadow: str | None = None
    route: str | None = None  # the route whose version answered (None: not one of the routes)


@dataclass(frozen=True)
class VersionFacts:
    uri: str
    source: str
    run_id: str
    created_ms: int
    aliases: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class DatasetUse:
    name: str
    digest: str
    source: str = ""
    context: str = ""  # training, eval, … (the input's mlflow.data.context tag)


@dataclass(frozen=True)
class RunFacts:
    run_id: str
    run_name: str
    experiment_id: str
    status: str
    start_ms: int | None
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)  # the user's, not mlflow.*/loopline.*
    code_commit: str = ""
    code_dirty: bool = False
    datasets: tuple[DatasetUse, ...] = ()


@dataclass(frozen=True)
class Upstream:
    """The version's upstream lineage, by kind of object (URIs, in the order found)."""

    datasets: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    pipelines: tuple[str, ...] = ()
    code: tuple[str, ...] = ()
    runs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Explanation:
    """Why request ``served.request_id`` got its answer."""

    served: Served
    deployment: DeploymentState | None = None
    version: VersionFacts | None = None
    run: RunFacts | None = None
    upstream: Upstream = field(default_factory=Upstream)
    gate: Event | None = None  # the loop.gate event that judged the version
    rollout: tuple[Event, ...] = ()  # every event of the version's rollout, oldest first
    shadows: tuple[str, ...] = ()  # model versions that shadowed the request
    notes: tuple[str, ...] = ()  # what could not be found, and why

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["served"]["model_uri"] = self.served.model_uri
        plain: dict[str, Any] = json.loads(json.dumps(out, default=str))  # tuples as lists
        return plain

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Explanation:
        served = dict(data["served"])
        served.pop("model_uri", None)
        run = data.get("run")
        return cls(
            served=Served(**served),
            deployment=DeploymentState(**data["deployment"]) if data.get("deployment") else None,
            version=VersionFacts(**{**data["version"], "aliases": tuple(data["version"]["aliases"])})
            if data.get("version")
            else None,
            run=RunFacts(**{**run, "datasets": tuple(DatasetUse(**d) for d in run["datasets"])})
            if run
            else None,
            upstream=Upstream(**{k: tuple(v) for k, v in (data.get("upstream") or {}).items()}),
            gate=_event(data["gate"]) if data.get("gate") else None,
            rollout=tuple(_event(e) for e in data.get("rollout") or ()),
            shadows=tuple(data.get("shadows") or ()),
            notes=tuple(data.get("notes") or ()),
        )

    @property
    def gate_passed(self) -> bool | None:
        """The gate's verdict: True or False, None when no gate judged the version."""
        return None if self.gate is None else bool(self.gate.payload.get("passed"))


def _event(d: Mapping[str, Any]) -> Event:
    return Event(
        int(d["id"]), int(d["time_ms"]), d["actor"], d["action"], d["object_uri"], d["payload"], d["reason"]
    )


# ---- 1. the inference log -------------------------------------------------------------------------


def _recency(path: str) -> tuple[str, str, int]:
    m = _PART.search(path)
    return (m[1], m[2], int(m[3])) if m else ("", "", 0)


def find_records(store: ArtifactStore, request_id: str) -> list[dict[str, Any]]:
    """The inference log's records of ``request_id`` (its primary's and shadows'), reading the
    parts newest first and only their ``request_id`` column until one matches."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from loopline.serving import log_schema as ls

    try:
        paths = [f.path for f in store.walk(ls.PREDICTIONS) if f.path.endswith(".parquet")]
    except (NotFound, FileNotFoundError):
        return []
    found: list[dict[str, Any]] = []
    hour: tuple[str, str] | None = None
    for path in sorted(paths, key=_recency, reverse=True):
        if hour is not None and _recency(path)[:2] != hour:
            break  # a request's records are logged under the hour it was served in
        with store.open(path) as fh:
            # Read in this thread from bytes (see serving.inference_log.read_log for why).
            part = pq.ParquetFile(pa.BufferReader(fh.read()))
        mask = pc.equal(part.read(columns=[ls.REQUEST_ID], use_threads=False).column(0), request_id)
        if pc.any(mask).as_py():
            found += part.read(use_threads=False).filter(mask).to_pylist()
            hour = _recency(path)[:2]
    return found


def _served(record: Mapping[str, Any]) -> Served:
    ts = record["timestamp"]
    ms = int(ts.timestamp() * 1000) if isinstance(ts, dt.datetime) else int(ts)

    def parsed(text: Any) -> Any:
        try:
            return json.loads(text) if isinstance(text, str) else text
        except ValueError:
            return text

    return Served(
        request_id=record["request_id"],
        time_ms=ms,
        deployment=record.get("deployment") or "",
        model=record["model"],
        version=str(record["version"]),
        role=record.get("role") or "primary",
        rows=int(record.get("rows") or 0),
        status=int(record.get("status") or 0),
        latency_ms=float(record.get("latency_ms") or 0.0),
        error=record.get("error") or "",
        inputs=parsed(record.get("inputs")),
        outputs=parsed(record.get("outputs")),
    )


# ---- 2-5. what shaped it ------------------------------------------------------------------------


def _deployment_state(client: Client, served: Served, notes: list[str]) -> DeploymentState | None:
    from loopline.serving.deployments import deployment_store

    store = deployment_store(client)
    token: str | None = None
    try:
        while True:
            page = store.list_revisions(served.deployment, 100, token)
            for rev in page.items:  # newest first: the first one written before the request
                if rev.time_ms <= served.time_ms:
                    spec = rev.spec
                    route = next(
                        (
                            r.model
                            for r in spec.routes
                            if rev.resolved.get(r.model, r.model) == served.model_uri
                        ),
                        None,
                    )
                    return DeploymentState(
                        name=rev.name,
                        revision=rev.revision,
                        time_ms=rev.time_ms,
                        actor=rev.actor,
                        comment=rev.comment,
                        routes={r.model: r.weight for r in spec.routes},
                        resolved=dict(rev.resolved),
                        shadow=spec.shadow.model if spec.shadow else None,
                        route=route,
                    )
            token = page.next_page_token
            if not token:
                break
    except NotFound:
        notes.append(f"Deployment {served.deployment!r} no longer exists: its history went with it.")
        return None
    notes.append(f"Deployment {served.deployment!r} has no revision from before the request.")
    return None


def _version(client: Client, served: Served, notes: list[str]) -> VersionFacts | None:
    from loopline.registry import RegistryClient

    if not served.version.isdigit():
        notes.append(f"{served.model} was served from {served.version!r}, not a registered version.")
        return None
    try:
        v = RegistryClient(client).get_model_version(served.model, served.version)
    except NotFound:
        notes.append(f"{served.model_uri} is not in this registry (deleted, or another server's).")
        return None
    return VersionFacts(
        v.uri, v.source, v.run_id, v.creation_timestamp, tuple(v.aliases), dict(v.tags), v.description
    )


def _run(client: Client, run_id: str, notes: list[str]) -> RunFacts | None:
    try:
        run = client.get_run(run_id)
    except NotFound:
        notes.append(f"Run {run_id} is not in this tracking store (deleted, or another server's).")
        return None
    tags = run.data.tags
    return RunFacts(
        run_id=run.info.run_id,
        run_name=run.info.run_name,
        experiment_id=run.info.experiment_id,
        status=str(run.info.status),
        start_ms=run.info.start_time,
        params=dict(run.data.params),
        metrics=run.data.metrics,
        tags={k: v for k, v in tags.items() if not k.startswith(("mlflow.", "loopline."))},
        code_commit=tags.get(GIT_COMMIT_TAG, ""),
        code_dirty=tags.get(GIT_DIRTY_TAG, "").lower() == "true",
        datasets=tuple(
            DatasetUse(
                i.dataset.name, i.dataset.digest, i.dataset.source, i.tags.get("mlflow.data.context", "")
            )
            for i in run.inputs
        ),
    )


def _upstream(context: Context, uri: str) -> Upstream:
    from loopline.tracking.lineage import open_lineage_reader

    kinds: dict[str, list[str]] = {"datasets": [], "features": [], "pipelines": [], "code": [], "runs": []}
    for edge in open_lineage_reader(context).upstream(uri):
        scheme = edge.from_uri.partition(":")[0]
        found = kinds.get(scheme)
        if found is not None and edge.from_uri not in found:
            found.append(edge.from_uri)
    return Upstream(**{k: tuple(v) for k, v in kinds.items()})


def _loop_events(context: Context, candidate: str) -> tuple[Event | None, tuple[Event, ...]]:
    """The gate verdict on ``candidate`` and every event of its newest rollout, oldest first."""
    from sqlalchemy import select

    from loopline.metadata import schema as t

    e = t.events.c
    needle = json.dumps({"candidate": candidate})[1:-1]  # append_event writes json.dumps' spacing
    q = (
        select(e.object_uri, e.payload)
        .where(
            e.workspace == context.workspace,
            e.action.in_((ev.GATE, ev.PROMOTE, ev.RETRAIN_FINISH, ev.ROLLOUT_STEP)),
            e.payload.contains(needle, autoescape=True),
        )
        .order_by(e.id.desc())
    )
    with context.engine.connect() as conn:
        rollout = next(
            (uri for uri, text in conn.execute(q) if json.loads(text).get("candidate") == candidate), None
        )
        if rollout is None:
            return None, ()
        rows = conn.execute(
            select(t.events)
            .where(e.workspace == context.workspace, e.object_uri == rollout, e.action.startswith("loop."))
            .order_by(e.id)
        ).all()
    story = tuple(
        Event(r.id, r.time_ms, r.actor, r.action, r.object_uri, json.loads(r.payload), r.reason) for r in rows
    )
    gates = [x for x in story if x.action == ev.GATE]
    return (gates[-1] if gates else None), story


def explain(context: Context, request_id: str) -> Explanation:
    """Why request ``request_id`` got its answer; ``NotFound`` when the inference log has no record
    of it. On a server's URI, the server answers (it holds the log and the database)."""
    if not _REQUEST_ID.match(request_id):
        raise InvalidInput(
            f"Invalid request id {request_id!r:.140}.",
            hint="Use the X-Request-Id the inference server answered with (letters, digits, . _ : -).",
        )
    if context.is_remote:
        body = context.http.call("GET", f"/api/2.0/loopline/why/{quote(request_id, safe='')}")
        return Explanation.from_json(body)
    records = find_records(context.artifacts, request_id)
    if not records:
        raise NotFound(
            f"No request {request_id} in the inference log.",
            hint="Use the X-Request-Id of a request served with the inference log on (it is written "
            "every few seconds), against the tracking URI and artifact store the server logs to.",
        )
    primary = next((r for r in records if r.get("role") == "primary"), records[0])
    served = _served(primary)
    shadows = tuple(
        f"models:/{r['model']}/{r['version']}"
        for r in records
        if r is not primary and r.get("role") == "shadow"
    )
    from loopline.tracking import Client

    notes: list[str] = []
    client = Client(context=context)
    try:
        deployment = _deployment_state(client, served, notes) if served.deployment else None
        version = _version(client, served, notes)
        run = _run(client, version.run_id, notes) if version is not None and version.run_id else None
    finally:
        client.close()
    if version is not None and not version.run_id:
        notes.append(f"{version.uri} was registered without a run: no params, code or data to show.")
    upstream = _upstream(context, served.model_uri) if version is not None else Upstream()
    gate, rollout = _loop_events(context, served.model_uri)
    if gate is None:
        notes.append(
            f"No loop.gate event judged {served.model_uri}: it was not rolled out by the loop "
            "(promoted by hand, or before the loop ran)."
        )
    return Explanation(served, deployment, version, run, upstream, gate, rollout, shadows, tuple(notes))


__all__ = [
    "REQUEST_ID_PATTERN",
    "DatasetUse",
    "DeploymentState",
    "Explanation",
    "RunFacts",
    "Served",
    "Upstream",
    "VersionFacts",
    "explain",
    "find_records",
]
