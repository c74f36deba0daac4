"""Nothing crosses between workspaces, through any route of a real ``loopline server``.

Workspace A gets objects of every kind (``isolation_seed``). Then every operation of the server's
OpenAPI document (and MLflow's ``/ajax-api`` twins of its routes), generated from the document so a
new route is covered without editing this file, is called acting in workspace B (and, for reads, in
the server's own workspace, as MLflow's client does) with A's identifiers: its names, run, model,
job and pipeline ids, artifact paths, blob digests. Reads must answer 4xx or a page without A's
objects; no answer may hold A's secrets or an id of A the request did not name; writes must leave A
exactly as it was (compared, before and after, through A's own reads).

Blobs: each workspace has its own artifact store (``loopline.artifacts.workspaces``), so a content
hash B knows opens a blob only when B's store holds it (B uploaded those bytes, or holds a dataset
version that names it): never one of A's.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from isolation_seed import ALIAS, HEADER, LOOPLINE, MLFLOW, NAME, SECRET, Seeded, seed
from support import serve_loopline

A, B = "team-a", "team-b"
ENV = {  # nothing moves in the background while the test compares A before and after
    "LOOPLINE_CONTROLLER_INTERVAL": "0",
    "LOOPLINE_MONITOR_POLL": "3600",
    "LOOPLINE_SCHEDULER_INTERVAL": "3600",
}


@dataclass(frozen=True)
class World:
    url: str
    a: Seeded
    openapi: dict[str, Any]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("isolation")
    with serve_loopline(home / "server", env=ENV) as url:
        seeded = seed(
            url, A, home, f"sqlite:///{home / 'server' / 'server.db'}", str(home / "server" / "artifacts")
        )
        spec = httpx.get(f"{url}/openapi.json").json()
        yield World(url, seeded, spec)


def _in(workspace: str | None) -> dict[str, str]:
    return {HEADER: workspace} if workspace else {}


# ---- A's state, read by A ----------------------------------------------------------------------


def _snapshot(w: World) -> dict[str, Any]:
    """Everything A can read about its objects (answers as JSON, files as text)."""
    a = w.a
    reads: list[tuple[str, dict[str, Any]]] = [
        (f"{MLFLOW}/experiments/get", {"experiment_id": a.experiment_id}),
        (f"{MLFLOW}/experiments/search", {"max_results": 100, "view_type": "ALL"}),
        (f"{MLFLOW}/runs/get", {"run_id": a.run_id}),
        (f"{MLFLOW}/metrics/get-history", {"run_id": a.run_id, "metric_key": "auc"}),
        (f"{MLFLOW}/artifacts/list", {"run_id": a.run_id}),
        (f"/api/2.0/mlflow-artifacts/artifacts/{a.artifact_path}", {}),
        (f"/api/2.0/mlflow-artifacts/artifacts/{a.model_artifact_path}", {}),
        ("/api/2.0/mlflow-artifacts/artifacts", {"path": a.experiment_id}),
        (f"{MLFLOW}/registered-models/get", {"name": NAME}),
        (f"{MLFLOW}/registered-models/alias", {"name": NAME, "alias": ALIAS}),
        (f"{MLFLOW}/model-versions/search", {}),
        (f"{MLFLOW}/logged-models/{a.logged_model_id}", {}),
        (f"{LOOPLINE}/data/datasets", {}),
        (f"{LOOPLINE}/data/versions", {"name": NAME}),
        (f"{LOOPLINE}/data/files", {"uri": a.dataset_uri}),
        (f"{LOOPLINE}/data/validations", {"uri": a.dataset_uri}),
        (f"{LOOPLINE}/data/blobs/{a.file_digest}", {}),
        (f"{LOOPLINE}/features/definitions", {}),
        (f"{LOOPLINE}/features/materializations", {}),
        (f"{LOOPLINE}/pipelines/runs", {}),
        (f"{LOOPLINE}/pipelines/runs/{a.pipeline_run_id}/steps", {}),
        (f"{LOOPLINE}/pipelines/sweeps/{a.sweep_id}", {}),
        (f"{LOOPLINE}/pipelines/schedules", {}),
        (f"{LOOPLINE}/deployments/list", {}),
        (f"{LOOPLINE}/deployments/revisions", {"name": NAME}),
        (f"{LOOPLINE}/monitors/list", {}),
        (f"{LOOPLINE}/monitors/runs", {"name": NAME}),
        (f"{LOOPLINE}/automation/policies/list", {}),
        (f"{LOOPLINE}/automation/rollouts/list", {}),
        (f"{LOOPLINE}/jobs", {}),
        (f"{LOOPLINE}/uploads/{a.upload_id}", {}),
        (f"{LOOPLINE}/events", {"max_results": 10_000}),
        (f"{LOOPLINE}/lineage/downstream", {"uri": f"runs:/{a.run_id}"}),
    ]
    out: dict[str, Any] = {}
    with httpx.Client(base_url=w.url, headers=_in(A), timeout=60) as http:
        for path, query in reads:
            r = http.get(path, params=query)
            assert r.status_code == 200, (path, r.status_code, r.text)
            kind = r.headers.get("content-type", "")
            out[f"{path} {query}"] = r.json() if kind.startswith("application/json") else r.text
    return out


def test_a_reads_its_own_objects(world: World) -> None:
    """The seed is what the sweep looks for: A sees its secrets through its own reads."""
    snap = json.dumps(_snapshot(world))
    assert SECRET in snap
    for name, value in world.a.ids().items():
        assert value in snap, name


# ---- requests generated from the OpenAPI document --------------------------------------------


def _values(a: Seeded) -> dict[str, list[Any]]:
    """Per parameter name, the values of A's objects to try (the first is used where one is needed)."""
    run_uri, model_uri = f"runs:/{a.run_id}", f"models:/{NAME}/1"
    return {
        "name": [NAME],
        "new_name": [f"{NAME}-moved"],
        "alias": [ALIAS, "prod"],
        "version": ["1", 1],
        "experiment_id": [a.experiment_id],
        "experiment_ids": [[a.experiment_id]],
        "run_id": [a.run_id, a.pipeline_run_id],
        "run_uuid": [a.run_id],
        "model_id": [a.logged_model_id],
        "model_ids": [[a.logged_model_id]],
        "source_run_id": [a.run_id],
        "job_id": [a.job_id],
        "sweep_id": [a.sweep_id],
        "upload_id": [a.upload_id],
        "rollout_id": [a.rollout_id],
        "id": [a.rollout_id, a.monitor_run_id],
        "digest": [a.file_digest, a.manifest_digest],
        "digests": [[a.file_digest, a.manifest_digest]],
        "path": [a.artifact_path, a.model_artifact_path, f"{a.experiment_id}/{a.run_id}/artifacts"],
        "artifact_file_path": ["MLmodel"],
        "artifact_directory_path": [""],
        "uri": [
            a.dataset_uri,
            run_uri,
            model_uri,
            f"models:/{a.logged_model_id}",
            f"pipelines:/{NAME}/{a.pipeline_run_id}",
        ],
        "object_uri": [run_uri, a.dataset_uri],
        "from_uri": [run_uri],
        "to_uri": [model_uri],
        "a": [a.dataset_uri],
        "b": [a.dataset_uri],
        "source": [f"mlflow-artifacts:/{a.artifact_path.rsplit('/', 1)[0]}", f"runs:/{a.run_id}/secret.txt"],
        "monitor": [NAME],
        "deployment": [NAME],
        "policy": [NAME],
        "schedule": [NAME],
        "view": [NAME],
        "views": [[NAME]],
        "feature_service": [NAME],
        "features": [[f"{NAME}:conv"]],
        "direction": ["upstream", "downstream"],
        "request_id": [uuid.uuid4().hex],
        "part_number": [1],
        "tag_key": ["note"],
        "key": ["note"],
        "metric_key": ["auc"],
        "keys": [["auc"]],
        "max_results": [100],
        "page_token": [None],
        "filter": [None],
        "filter_string": [None],
        "comment": ["by B"],
        "reason": ["by B"],
        "description": ["changed by B"],
    }


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _example(
    spec: dict[str, Any], schema: dict[str, Any], values: dict[str, list[Any]], pick: int, depth: int = 0
) -> Any:
    """A value of ``schema``: for an object, A's value of each property it knows (all of them) and a
    typed placeholder for each other required one."""
    schema = _resolve(spec, schema)
    if "default" in schema and schema["default"] is not None and depth > 0:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [o for o in schema[key] if _resolve(spec, o).get("type") != "null"]
            return _example(spec, options[0], values, pick, depth) if options else None
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        out: dict[str, Any] = {}
        required = set(schema.get("required", []))
        for prop, sub in schema.get("properties", {}).items():
            if prop in values:
                options = values[prop]
                value = options[pick % len(options)]
                if value is not None:
                    out[prop] = value
            elif prop in required and depth < 6:
                out[prop] = _example(spec, sub, values, pick, depth + 1)
        return out
    if kind == "array":
        return [_example(spec, schema.get("items", {}), values, pick, depth + 1)] if depth < 6 else []
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return 0.5
    if kind == "boolean":
        return False
    return "x"


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    query: dict[str, Any]
    body: Any  # JSON, bytes, or None
    named: str  # every value the request carries (A's ids in it are the caller's own words)

    def send(self, http: httpx.Client) -> httpx.Response:
        kwargs: dict[str, Any] = {"params": {k: v for k, v in self.query.items() if v is not None}}
        if isinstance(self.body, bytes):
            kwargs["content"] = self.body
        elif self.body is not None:
            kwargs["json"] = self.body
        return http.request(self.method, self.path, **kwargs)


def _value(
    spec: dict[str, Any], values: dict[str, list[Any]], name: str, schema: dict[str, Any], pick: int
) -> Any:
    """A's ``pick``-th value of parameter ``name``, or a placeholder of its schema."""
    options = values.get(name)
    return options[pick % len(options)] if options else _example(spec, schema, values, pick, 1)


def _calls(w: World) -> list[Call]:
    """Requests for every operation of the document, with each of A's values of its parameters."""
    spec, values = w.openapi, _values(w.a)
    calls: list[Call] = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            params = op.get("parameters") or []
            names = [p["name"] for p in params] + re.findall(r"{(\w+)(?::\w+)?}", path)
            body_spec = ((op.get("requestBody") or {}).get("content")) or {}
            body_schema = body_spec.get("application/json", {}).get("schema")
            if body_schema:
                names += list(_resolve(spec, body_schema).get("properties", {}))
            tries = max([len(values[n]) for n in names if n in values] or [1])
            for pick in range(tries):
                filled = path
                for n in re.findall(r"{(\w+)(?::\w+)?}", path):
                    filled = re.sub(
                        r"{" + n + r"(?::\w+)?}",
                        str(_value(spec, values, n, {"type": "string"}, pick)),
                        filled,
                    )
                query = {
                    p["name"]: _value(spec, values, p["name"], p.get("schema", {}), pick)
                    for p in params
                    if p.get("in") == "query" and (p.get("required") or p["name"] in values)
                }
                query = {k: json.dumps(v) if isinstance(v, list) else v for k, v in query.items()}
                body: Any = None
                if body_schema:
                    body = _example(spec, body_schema, values, pick)
                elif body_spec:  # bytes: a blob, an artifact, a part
                    body = f"written by {B}".encode()
                named = json.dumps([filled, query, body if not isinstance(body, bytes) else ""], default=str)
                calls.append(Call(method.upper(), filled, query, body, named))
                if filled.startswith(MLFLOW + "/"):  # the MLflow UI's twin of the route
                    ajax = "/ajax-api/2.0/mlflow/" + filled.removeprefix(MLFLOW + "/")
                    calls.append(Call(method.upper(), ajax, query, body, named))
    return calls


def _leaks(w: World, call: Call, r: httpx.Response, ids: bool) -> list[str]:
    """What of A an answer holds that its request did not name (``ids``: A's ids too)."""
    text = r.text
    found = [f"A's secret {SECRET}"] if SECRET in text else []
    if ids:
        found += [f"A's {k} {v}" for k, v in w.a.ids().items() if v in text and v not in call.named]
    return found


READ = frozenset({"GET", "HEAD"})


def _sweep(w: World, calls: list[Call], workspace: str | None, *, ids: bool = True) -> list[str]:
    problems: list[str] = []
    with httpx.Client(base_url=w.url, headers=_in(workspace), timeout=60) as http:
        for call in calls:
            r = call.send(http)
            where = f"{call.method} {call.path} {call.query} as {workspace or 'the server workspace'}"
            if r.status_code >= 500:
                problems.append(f"{where}: {r.status_code} {r.text[:200]}")
            leaks = _leaks(w, call, r, ids)
            if leaks:
                problems.append(f"{where}: {r.status_code} shows {', '.join(leaks)}: {r.text[:300]}")
    return problems


def test_no_route_lets_another_workspace_read_or_change_a(world: World) -> None:
    calls = _calls(world)
    assert len({(c.method, c.path.split("?")[0]) for c in calls}) > 140  # the whole document, twins too
    before = _snapshot(world)
    reads = [c for c in calls if c.method in READ]
    writes = [c for c in calls if c.method not in READ]
    problems = _sweep(world, reads, B) + _sweep(world, reads, None)
    problems += _sweep(world, writes, B)
    # After B's writes: still nothing of A (B's own objects may now hold ids B wrote into them).
    problems += _sweep(world, reads, B, ids=False)
    assert not problems, "\n".join(problems)
    after = _snapshot(world)
    changed = [k for k in before if before[k] != after[k]]
    assert not changed, "\n".join(f"{k}:\n  before {before[k]}\n  after  {after[k]}" for k in changed)


# ---- the classic leaks, one by one (as C: a workspace the sweep above never wrote to) ------------

C = "team-c"


def _b() -> dict[str, str]:
    return _in(C)


def test_numeric_and_global_ids_of_a_are_404_in_b(world: World) -> None:
    a, url = world.a, world.url
    for path, query in [
        (f"{MLFLOW}/experiments/get", {"experiment_id": a.experiment_id}),
        (f"{MLFLOW}/runs/get", {"run_id": a.run_id}),
        (f"{MLFLOW}/metrics/get-history", {"run_id": a.run_id, "metric_key": "auc"}),
        (f"{MLFLOW}/logged-models/{a.logged_model_id}", {}),
        (f"{LOOPLINE}/jobs/{a.job_id}", {}),
        (f"{LOOPLINE}/pipelines/runs/{a.pipeline_run_id}", {}),
        (f"{LOOPLINE}/pipelines/sweeps/{a.sweep_id}", {}),
        (f"{LOOPLINE}/automation/rollouts/get", {"id": a.rollout_id}),
        (f"{LOOPLINE}/uploads/{a.upload_id}", {}),
    ]:
        r = httpx.get(url + path, params=query, headers=_b())
        assert r.status_code == 404, (path, r.status_code, r.text)
        assert r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    events = httpx.get(f"{url}{LOOPLINE}/events", params={"max_results": 10_000}, headers=_b()).json()[
        "events"
    ]
    assert not {e["id"] for e in events} & set(a.event_ids)


def test_a_blob_hash_known_to_b_opens_nothing_of_a(world: World) -> None:
    """A content hash is not a capability: B reads a blob only from its own store, which holds it
    once B sent those bytes itself (and so already had them)."""
    a, url = world.a, world.url
    blob = f"{url}{LOOPLINE}/data/blobs"
    for digest in (a.file_digest, a.manifest_digest):
        assert httpx.get(f"{blob}/{digest}", headers=_b()).status_code == 404
    missing = httpx.post(f"{blob}/missing", json={"digests": [a.file_digest]}, headers=_b()).json()
    assert missing == {"missing": [a.file_digest]}  # B learns nothing of what A holds
    wrong = httpx.put(f"{blob}/{a.file_digest}", content=b"not those bytes", headers=_b())
    assert wrong.status_code == 400
    assert httpx.get(f"{blob}/{a.file_digest}", headers=_b()).status_code == 404


def test_artifact_paths_and_sources_of_a_open_nothing_in_b(world: World) -> None:
    a, url = world.a, world.url
    proxy = f"{url}/api/2.0/mlflow-artifacts/artifacts"
    assert httpx.get(f"{proxy}/{a.artifact_path}", headers=_b()).status_code == 404
    assert httpx.get(proxy, params={"path": a.experiment_id}, headers=_b()).json() == {}
    # B points a model version of its own at A's files, then asks the server to read them.
    headers = _b()
    httpx.post(f"{url}{MLFLOW}/registered-models/create", json={"name": "thief"}, headers=headers)
    folder = a.artifact_path.rsplit("/", 1)[0]
    for source in (f"mlflow-artifacts:/{folder}", f"runs:/{a.run_id}"):
        made = httpx.post(
            f"{url}{MLFLOW}/model-versions/create", json={"name": "thief", "source": source}, headers=headers
        )
        assert made.status_code == 200, made.text
        version = made.json()["model_version"]["version"]
        got = httpx.get(
            f"{url}/model-versions/get-artifact",
            params={"name": "thief", "version": version, "path": "secret.txt"},
            headers=headers,
        )
        assert got.status_code == 404 and SECRET not in got.text, (source, got.status_code, got.text)
    # B's write to the same path lands in B's store; A's file is unchanged.
    assert httpx.put(f"{proxy}/{a.artifact_path}", content=b"B", headers=headers).status_code == 200
    assert httpx.get(f"{proxy}/{a.artifact_path}", headers=_in(A)).text == SECRET
    assert httpx.get(f"{proxy}/{a.artifact_path}", headers=headers).text == "B"


def test_a_pipeline_run_of_a_cannot_be_moved_from_b(world: World) -> None:
    a, url = world.a, world.url
    steps = f"{url}{LOOPLINE}/pipelines/runs/{a.pipeline_run_id}"
    before = httpx.get(f"{steps}/steps", headers=_in(A)).json()
    node = before["steps"][0]
    step = {k: node[k] for k in ("run_id", "pipeline", "node", "step")} | {"status": "failed"}
    r = httpx.post(
        f"{steps}/progress", json={"finished": [{"step": step}], "started": [node["node"]]}, headers=_b()
    )
    assert r.status_code == 404, r.text
    assert httpx.get(f"{steps}/steps", headers=_in(A)).json() == before


def test_lineage_into_another_workspace_is_an_opaque_node(world: World) -> None:
    """B can name A's run (run ids are global): as its run's parent, as a model version's source.
    B's lineage shows that node as 'another workspace', never A's id or anything of it."""
    a, url = world.a, world.url
    headers = _b()
    exp = httpx.post(
        f"{url}{MLFLOW}/experiments/create", json={"name": f"child-{uuid.uuid4().hex[:6]}"}, headers=headers
    )
    child = httpx.post(
        f"{url}{MLFLOW}/runs/create",
        json={
            "experiment_id": exp.json()["experiment_id"],
            "tags": [{"key": "mlflow.parentRunId", "value": a.run_id}],
        },
        headers=headers,
    ).json()["run"]["info"]["run_id"]
    httpx.post(f"{url}{MLFLOW}/registered-models/create", json={"name": "from-a"}, headers=headers)
    httpx.post(
        f"{url}{MLFLOW}/model-versions/create",
        json={"name": "from-a", "source": "s3://elsewhere/model", "run_id": a.run_id},
        headers=headers,
    )
    up = httpx.get(
        f"{url}{LOOPLINE}/lineage/upstream", params={"uri": f"runs:/{child}"}, headers=headers
    ).json()
    assert [(e["from_uri"], e["to_uri"], e["external"]) for e in up["edges"]] == [
        ("runs:/(other workspace #1)", f"runs:/{child}", True)
    ]
    down = httpx.get(f"{url}{LOOPLINE}/lineage/upstream", params={"uri": "models:/from-a/1"}, headers=headers)
    assert a.run_id not in down.text and "runs:/(other workspace #1)" in down.text
    # A's own view of its run is whole, and holds nothing of B's.
    mine = httpx.get(
        f"{url}{LOOPLINE}/lineage/downstream", params={"uri": f"runs:/{a.run_id}"}, headers=_in(A)
    )
    assert child not in mine.text and "from-a" not in mine.text
