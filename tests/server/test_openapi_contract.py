"""The OpenAPI document at ``/openapi.json`` tells the truth about every route (issue 15).

Schemathesis generates requests from the live document of a real ``loopline server`` and checks what
the server answers: never a 5xx; a 2xx body of the documented shape (answers forbid undocumented
fields); a 4xx body that is MLflow's ``{"error_code", "message"}``; and a request that fits its schema
is taken (2xx, 404 for an object that does not exist, 409, or 400 for a name that is taken), unless
it carries a field whose grammar the schema can only describe (a filter, a page token, a cron
expression) or breaks one of the few rules listed in ``TOLERATED`` with the reason the schema cannot
say it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance
from support import serve_loopline

from loopline.server.routing import plain_endpoint

SKIPPED_PREFIXES: tuple[str, ...] = ()
# Arrow IPC bodies (features routes) and blob frames (data routes) are bytes, sent as generated.
schemathesis.serializer.alias(
    ["application/vnd.apache.arrow.stream", "application/x-loopline-blobs"], "application/octet-stream"
)
POSITIVE_EXAMPLES = 6
NEGATIVE_EXAMPLES = 3
METHODS = ("get", "put", "post", "patch", "delete")

# Fields whose values follow a grammar the schema only describes: a schema-valid string may be refused.
GRAMMAR = {"filter", "order_by", "page_token", "cron", "schedule", "spec", "source", "uri", "a", "b"}

# Rules the schema cannot state (they join fields, or depend on what a value names), by operation:
# a 400 whose message holds one of the phrases is what the rule asks for.
TOLERATED: dict[str, tuple[str, ...]] = {
    # weights may be 0, but not all of them; a models:/ URI must name a version or alias
    "POST /api/2.0/loopline/deployments/set": ("weights add up to 0", "names no version or alias"),
    # every step reported must belong to the run in the path
    "POST /api/2.0/loopline/pipelines/runs/{run_id}/progress": ("is not of run",),
    "POST /api/2.0/loopline/pipelines/runs/create": ("a node is listed twice",),
    # a batch may not log one param twice with different values
    "POST /api/2.0/mlflow/runs/log-batch": ("appears twice in one batch",),
    "POST /api/2.0/loopline/runs/create": ("appears twice in one batch",),
    # a monitor's reference file must exist on the server; config options have types of their own
    "POST /api/2.0/loopline/monitors/create": ("No such reference file", "monitor option", "webhook"),
    # an apply checks that a view's sources are readable and specs are what definitions write
    "POST /api/2.0/loopline/features/apply": ("spec", "source"),
    # a sweep's method and direction are checked against the optimiser's vocabulary
    "POST /api/2.0/loopline/pipelines/sweeps/create": ("Unknown direction", "Unknown method", "space"),
    # views that exist but are not online are refused, as are names of no view at all
    "POST /api/2.0/loopline/features/materialize": ("No online feature view", "after its end"),
    # Arrow IPC bodies: random bytes are not a stream
    "POST /api/2.0/loopline/features/historical": ("Arrow", "IPC"),
    "POST /api/2.0/loopline/features/push": ("Arrow", "IPC"),
    "POST /api/2.0/loopline/features/training-sets": ("Arrow", "IPC"),
    # blob frames and blob bodies: random bytes are not frames, nor the bytes of the digest named
    "POST /api/2.0/loopline/data/blobs/batch": ("frame", "loopline-blobs", "magic", "digest"),
    "PUT /api/2.0/loopline/data/blobs/{digest}": ("digest", "BLAKE3"),
    # a version's manifest must already be on the server; validations name one version, by uri or name
    "POST /api/2.0/loopline/data/versions": ("not on the server", "manifest"),
    "GET /api/2.0/loopline/data/validations": ("required parameter 'name'",),
    # an alias may not read as a version number (datasets:/d/3 would be ambiguous)
    "POST /api/2.0/loopline/data/aliases": ("reads as a version",),
    # a cron expression is checked by croniter; the two aliases of a policy must differ; its webhooks
    # must be http(s) URLs of public hosts (LOOPLINE_WEBHOOK_ALLOW allows more)
    "POST /api/2.0/loopline/automation/policies/put": ("Invalid cron expression", "must differ", "webhook"),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # check_log: every generated request, bad ones included, was answered on purpose (no traceback).
    with serve_loopline(tmp_path_factory.mktemp("openapi"), check_log=True) as url:
        yield url


@pytest.fixture(scope="module")
def document(server: str) -> dict[str, Any]:
    spec: dict[str, Any] = httpx.get(f"{server}/openapi.json", timeout=30).json()
    return spec


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item and not path.startswith(SKIPPED_PREFIXES):
                yield method.upper(), path, item[method]


def _answer_schema(op: dict[str, Any]) -> Any:
    content = op.get("responses", {}).get("200", {}).get("content", {})
    if "application/json" in content:
        return content["application/json"].get("schema") or None
    return next(iter(content.values()), {}).get("schema")  # bytes: {"type": "string", "format": "binary"}


# ---- the document itself (cheap) ----------------------------------------------------------------


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    from openapi_spec_validator import validate

    validate(document)  # raises, naming the first part that breaks the OpenAPI 3.1 schema
    assert len(list(_operations(document))) > 100


# Operations that take no argument at all (documented as such by having none).
TAKES_NOTHING = {
    ("GET", "/api/3.0/mlflow/server-info"),
    ("GET", "/api/2.0/loopline/monitors/list"),
    ("GET", "/api/2.0/loopline/monitors/latest-metrics"),
    ("GET", "/api/2.0/loopline/automation/policies/list"),
    ("GET", "/api/2.0/loopline/data/datasets"),
    ("GET", "/api/2.0/loopline/workspaces"),
    ("GET", "/api/2.0/loopline/auth/whoami"),
    ("GET", "/api/2.0/loopline/auth/users"),
}
# Operations not documented yet, and why.
UNDOCUMENTED = {
    ("GET", "/api/3.0/mlflow/server-info"): "a hand-built answer in server/probes.py",
}


def test_every_indexed_route_stays_indexed_and_is_documented(document: dict[str, Any]) -> None:
    from fastapi.routing import APIRoute

    from loopline.server import (
        automation_api,
        automation_reports_api,
        data_api,
        deployments_api,
        features_api,
        jobs,
        loopline_api,
        mlflow_artifacts,
        mlflow_registry,
        mlflow_tracking,
        monitoring_api,
        pipelines_api,
    )

    modules = (mlflow_tracking, mlflow_artifacts, mlflow_registry, loopline_api, jobs, deployments_api)
    routes = [
        r
        for module in (
            *modules,
            features_api,
            monitoring_api,
            pipelines_api,
            data_api,
            automation_api,
            automation_reports_api,
        )
        for r in module.router.routes
        if isinstance(r, APIRoute)
    ]
    # Documenting a route never takes it out of the one-lookup index: every MLflow route without a
    # path parameter is plain, as it was before it was documented.
    mlflow = [
        r for r in routes if "/2.0/mlflow/" in r.path and "{" not in r.path and "artifacts" not in r.path
    ]
    assert len(mlflow) > 90
    assert [r.path for r in mlflow if plain_endpoint(r) is None] == []
    documented = {(m, p) for m, p, _ in _operations(document)}
    undocumented = [
        f"{m} {r.path}"
        for r in routes
        if r.include_in_schema and plain_endpoint(r) is not None
        for m in r.methods
        if (m, r.path) not in documented and not r.path.startswith(SKIPPED_PREFIXES)
    ]
    assert undocumented == []


def test_every_operation_documents_its_arguments_answer_and_errors(document: dict[str, Any]) -> None:
    missing_args, missing_answers, missing_errors = [], [], []
    for method, path, op in _operations(document):
        if not (op.get("requestBody") or op.get("parameters")) and (method, path) not in TAKES_NOTHING:
            missing_args.append(f"{method} {path}")
        if (method, path) in UNDOCUMENTED:
            continue
        if _answer_schema(op) is None:
            missing_answers.append(f"{method} {path}")
        error = op["responses"].get("400", {}).get("content", {}).get("application/json", {}).get("schema")
        if error != {"$ref": "#/components/schemas/ErrorBody"}:
            missing_errors.append(f"{method} {path}")
        assert "422" not in op["responses"], f"{method} {path}: this app answers 400, not FastAPI's 422"
    assert missing_args == [], "operations documenting no arguments"
    assert missing_answers == [], "operations documenting no answer"
    assert missing_errors == [], "operations documenting no error body"


# ---- what the server answers to data generated from the document -----------------------------------


def _carries_grammar(case: Case) -> bool:
    fields: set[str] = set()
    for part in (case.query, case.body):
        if isinstance(part, dict):
            fields |= {k for k, v in part.items() if v not in (None, "", [])}
            fields |= {k for v in part.values() if isinstance(v, dict) for k in v}  # e.g. schedule.cron
    return bool(fields & GRAMMAR)


def _judge(label: str, case: Case, response: requests.Response, positive: bool) -> str | None:
    """What is wrong with ``response`` to ``case``, or None."""
    status = response.status_code
    if status >= 500:
        return f"{status}: {response.text[:300]}"
    if 200 <= status < 300:
        try:
            case.validate_response(response, checks=[response_schema_conformance])
        except (AssertionError, BaseExceptionGroup) as e:
            return f"{status} answer not as documented: {str(e)[:600]}"
        return None
    try:
        body = response.json()
    except json.JSONDecodeError:
        return f"{status} with a body that is not JSON: {response.text[:200]}"
    if not (isinstance(body, dict) and isinstance(body.get("error_code"), str) and "message" in body):
        return f"{status} without MLflow's error body: {response.text[:200]}"
    if not positive or status in (404, 409) or _carries_grammar(case):
        return None
    message = str(body["message"])
    if body["error_code"] == "RESOURCE_ALREADY_EXISTS" or any(p in message for p in TOLERATED.get(label, ())):
        return None
    return f"schema-valid request refused with {status}: {message[:300]}"


def _exercise(
    op: Any, mode: GenerationMode, examples: int, server: str, session: requests.Session
) -> str | None:
    """The first problem of ``examples`` requests generated for ``op`` in ``mode``, or None."""
    found: list[str] = []

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(case=op.as_strategy(generation_mode=mode))
    def call(case: Case) -> None:
        response = case.call(base_url=server, session=session, timeout=60)
        problem = _judge(op.label, case, response, mode is GenerationMode.POSITIVE)
        if problem is not None and not found:
            found.append(f"{problem}\n    {case.as_curl_command()[:500]}")

    with contextlib.suppress(Unsatisfiable):  # nothing to negate (an operation without arguments)
        call()
    return found[0] if found else None


def test_generated_requests_get_documented_answers(server: str) -> None:
    schema = schemathesis.openapi.from_url(
        f"{server}/openapi.json",
        # No route takes NUL in a string (PostgreSQL's text cannot hold one); ErrorBody says so.
        config=schemathesis.Config.from_dict({"generation": {"allow-x00": False}}),
    )
    session = requests.Session()
    problems: dict[str, str] = {}
    operations = [
        op for op in (r.ok() for r in schema.get_all_operations()) if not op.path.startswith(SKIPPED_PREFIXES)
    ]
    assert len(operations) > 100
    for op in operations:
        for mode, examples in (
            (GenerationMode.POSITIVE, POSITIVE_EXAMPLES),
            (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES),
        ):
            problem = _exercise(op, mode, examples, server, session)
            if problem is not None:
                problems.setdefault(op.label, f"{mode.value}: {problem}")
    assert problems == {}, "\n".join(f"{k}: {v}" for k, v in sorted(problems.items()))
