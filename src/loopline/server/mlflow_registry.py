"""MLflow's model-registry REST API and MLflow 3's logged-models API.

Registered models (``registered-models/*``: create, get, rename, update, delete, search, tags,
aliases, get-latest-versions), model versions (``model-versions/*``: create, get, update,
delete, search, transition-stage, tags, get-download-uri), logged models (``logged-models``:
create, get, finalize, tags, params, delete, search) and ``runs/outputs``, under
``/api/2.0/mlflow`` and ``/ajax-api/2.0/mlflow``. Shapes and error codes follow MLflow's server
(``mlflow/server/handlers.py``); MLflow's client sends ``DELETE`` arguments in a JSON body, so
those routes read the body as well as the query string.

Where Loopline differs on purpose:

- A version's ``source`` is stored resolved: ``models:/<model_id>``, ``models:/<name>/<version>``
  and ``runs:/<run_id>/<path>`` become the artifact location they name (MLflow keeps the URI in
  ``source`` and the location in a hidden ``storage_location``). ``get-download-uri`` answers the
  same location, so MLflow's loader is unaffected.
- ``model-versions/create`` pins the version's files: it takes the BLAKE3 digests a Loopline
  client sends in ``loopline_digests`` (after checking them against what the artifact store
  holds), or inherits them from a ``models:/name/version`` source, or else computes them from the
  artifact store (an MLflow client sends none). ``loopline.load_model`` refuses files that differ.
- An unknown alias is 404 ``RESOURCE_DOES_NOT_EXIST`` naming the aliases that exist (MLflow
  answers 400 ``INVALID_PARAMETER_VALUE``).
- A ``file://`` source on another host is bad input, 400 (MLflow answers 500).

As in MLflow, a version may name a run this server does not know (a registry shared by several
tracking servers): a ``runs:/`` source of it is kept as given and its lineage edge marked external.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from loopline import uris
from loopline.artifacts.blobs import BlobArtifactStore
from loopline.artifacts.paths import join, safe_path
from loopline.errors import InvalidInput, NotFound
from loopline.metadata.filter import Attributes, Clause, parse_filter
from loopline.registry import mlflow_json as rj
from loopline.registry.sql_store import MODEL_ATTRIBUTES, VERSION_ATTRIBUTES, SqlRegistryStore
from loopline.registry.types import LoggedModel, ModelVersion, RegisteredModel
from loopline.server import mlflow_registry_models as rm
from loopline.server.http import (
    blocking,
    experiment_id,
    json_body,
    json_response,
    list_arg,
    max_results,
    mlflow_route,
    optional_str,
    page_response,
    page_token,
    params,
    query_dict,
    required_str,
    str_list,
)
from loopline.server.openapi_models import DocumentedRoute, Empty, documented
from loopline.server.state import registry, tracking
from loopline.server.workspace_artifacts import artifacts
from loopline.tracking import mlflow_json as mj
from loopline.tracking.sql_store import SqlTrackingStore

router = APIRouter(route_class=DocumentedRoute)
route = mlflow_route(router)

PROMPT_TAG = "mlflow.prompt.is_prompt"  # MLflow keeps prompts as registered models with this tag
MODEL_VERSIONS_TAG = "mlflow.modelVersions"  # on a logged model: the versions registered from it
_ALIAS = re.compile(r"^[\w\-]*$")
_INT64_MAX = 2**63 - 1


# ---- request helpers -----------------------------------------------------------------------


async def _args(request: Request) -> dict[str, Any]:
    """The call's arguments; for DELETE the query string and the JSON body (MLflow's client)."""
    if request.method == "DELETE":
        return {**query_dict(request), **await json_body(request)}
    return await params(request)


def _version(body: dict[str, Any]) -> str:
    """A version number: MLflow sends it as a string; a number is accepted too."""
    value = body.get("version")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    version = required_str({"version": value}, "version")
    if version.isascii() and version.isdigit() and (len(version) > 19 or int(version) > _INT64_MAX):
        raise InvalidInput(f"Invalid model version {version:.30}: versions are positive 64-bit integers.")
    return version


def _alias(body: dict[str, Any]) -> str:
    alias = required_str(body, "alias")
    if not _ALIAS.match(alias) or len(alias) > 255:
        raise InvalidInput(
            f"Invalid alias name: '{alias:.300}'. Names may only contain alphanumerics, "
            "underscores (_), and dashes (-), at most 255 of them."
        )
    return alias


def _bool(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidInput(f"Invalid value {value!r:.100} for parameter '{name}': expected true or false.")


# ---- MLflow's prompt rule for searches ------------------------------------------------------


def _quote(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _format(c: Clause) -> str:
    ident = c.key if c.kind == "attribute" else f"{c.kind}s.`{c.key}`"
    if c.value is None:
        return f"{ident} {c.op}"
    if isinstance(c.value, tuple):
        return f"{ident} {c.op} ({', '.join(_quote(v) for v in c.value)})"
    if isinstance(c.value, float):
        return f"{ident} {c.op} {c.value!r}"
    return f"{ident} {c.op} {_quote(c.value)}"


def _prompt_rule(filter_string: str | None, attrs: Attributes) -> tuple[str | None, bool]:
    """MLflow's searches hide prompts unless the filter asks for them.

    Its client adds ``tag.`mlflow.prompt.is_prompt` != 'true'`` to every model search, and its
    server reads that clause as "not a prompt", which includes models without the tag. A plain
    tag comparison would need the tag to exist, so the clause is taken out here and prompts are
    dropped from the results instead. Returns the filter to run and whether prompts are wanted.
    """
    clauses = parse_filter(filter_string, attrs)
    prompt = next((c for c in clauses if c.kind == "tag" and c.key == PROMPT_TAG), None)
    if prompt is None:
        return filter_string, False
    value = prompt.value.lower() if isinstance(prompt.value, str) else ""
    if (prompt.op, value) in (("=", "true"), ("!=", "false")):
        return filter_string, True
    rest = [c for c in clauses if not (c.kind == "tag" and c.key == PROMPT_TAG)]
    return " AND ".join(_format(c) for c in rest) or None, False


def _is_prompt(tags: Mapping[str, str]) -> bool:
    return tags.get(PROMPT_TAG, "").lower() == "true"


# ---- registered models ---------------------------------------------------------------------


def _rm(rm: RegisteredModel) -> Response:
    return json_response({"registered_model": rj.registered_model_to_json(rm)})


def _mv(mv: ModelVersion) -> Response:
    return json_response({"model_version": rj.model_version_to_json(mv)})


@route("POST", "/registered-models/create")
@documented(rm.CreateRegisteredModel, answer=rm.RegisteredModelAnswer, errors=())
async def create_registered_model(request: Request) -> Response:
    body = await params(request)
    rm = await blocking(
        registry(request).create_registered_model,
        required_str(body, "name"),
        dict(mj.decode_kv_list(body.get("tags"), "tags")),
        mj.decode_str(body.get("description"), "description", required=False),
    )
    return _rm(rm)


@route("GET", "/registered-models/get")
@documented(rm.ModelRef, answer=rm.RegisteredModelAnswer)
async def get_registered_model(request: Request) -> Response:
    body = await params(request)
    return _rm(await blocking(registry(request).get_registered_model, required_str(body, "name")))


@route("POST", "/registered-models/rename")
@documented(rm.RenameRegisteredModel, answer=rm.RegisteredModelAnswer)
async def rename_registered_model(request: Request) -> Response:
    body = await params(request)
    rm = await blocking(
        registry(request).rename_registered_model, required_str(body, "name"), required_str(body, "new_name")
    )
    return _rm(rm)


@route("PATCH", "/registered-models/update")
@documented(rm.UpdateRegisteredModel, answer=rm.RegisteredModelAnswer)
async def update_registered_model(request: Request) -> Response:
    body = await params(request)
    rm = await blocking(
        registry(request).update_registered_model,
        required_str(body, "name"),
        mj.decode_str(body.get("description"), "description", required=False),
    )
    return _rm(rm)


@route("DELETE", "/registered-models/delete")
@documented(rm.ModelRef, answer=Empty)
async def delete_registered_model(request: Request) -> Response:
    body = await _args(request)
    await blocking(registry(request).delete_registered_model, required_str(body, "name"))
    return json_response({})


@route("GET", "/registered-models/search")
@documented(rm.SearchRegisteredModels, answer=rm.RegisteredModelsPage, errors=())
async def search_registered_models(request: Request) -> Response:
    body = await params(request)
    filter_string, prompts = _prompt_rule(optional_str(body, "filter"), MODEL_ATTRIBUTES)
    page = await blocking(
        registry(request).search_registered_models,
        filter_string,
        max_results(body, 100, 1000),
        str_list(body.get("order_by"), "order_by"),
        page_token(body),
    )
    items = [rj.registered_model_to_json(m) for m in page.items if prompts or not _is_prompt(m.tags)]
    return page_response("registered_models", items, page.next_page_token)


@route("POST", "/registered-models/set-tag")
@documented(rm.SetRegisteredModelTag, answer=Empty)
async def set_registered_model_tag(request: Request) -> Response:
    body = await params(request)
    await blocking(
        registry(request).set_registered_model_tag,
        required_str(body, "name"),
        required_str(body, "key"),
        mj.decode_str(body.get("value", ""), "value"),
    )
    return json_response({})


@route("DELETE", "/registered-models/delete-tag")
@documented(rm.DeleteRegisteredModelTag, answer=Empty)
async def delete_registered_model_tag(request: Request) -> Response:
    body = await _args(request)
    await blocking(
        registry(request).delete_registered_model_tag, required_str(body, "name"), required_str(body, "key")
    )
    return json_response({})


@route("POST", "/registered-models/alias")
@documented(rm.SetAlias, answer=Empty)
async def set_registered_model_alias(request: Request) -> Response:
    body = await params(request)
    await blocking(
        registry(request).set_registered_model_alias,
        required_str(body, "name"),
        _alias(body),
        _version(body),
    )
    return json_response({})


def _delete_alias(reg: SqlRegistryStore, name: str, alias: str) -> None:
    try:
        reg.delete_registered_model_alias(name, alias)
    except NotFound:
        reg.get_registered_model(name)  # an unknown model is 404; an unknown alias is a no-op (MLflow)


@route("DELETE", "/registered-models/alias")
@documented(rm.AliasRef, answer=Empty)
async def delete_registered_model_alias(request: Request) -> Response:
    body = await _args(request)
    await blocking(_delete_alias, registry(request), required_str(body, "name"), _alias(body))
    return json_response({})


def _by_alias(reg: SqlRegistryStore, name: str, alias: str) -> ModelVersion:
    if alias.lower() == "latest":  # MLflow's reserved alias: the highest version
        versions = reg.get_latest_versions(name)
        if not versions:
            raise NotFound(f"Latest version not found for model {name}.")
        return max(versions, key=lambda v: v.version)
    return reg.get_model_version_by_alias(name, alias)


@route("GET", "/registered-models/alias")
@documented(rm.AliasRef, answer=rm.ModelVersionAnswer)
async def get_model_version_by_alias(request: Request) -> Response:
    body = await params(request)
    return _mv(await blocking(_by_alias, registry(request), required_str(body, "name"), _alias(body)))


@route("POST", "/registered-models/get-latest-versions")
@route("GET", "/registered-models/get-latest-versions")
@documented(rm.GetLatestVersions, answer=rm.ModelVersionsPage)
async def get_latest_versions(request: Request) -> Response:
    body = await params(request)
    versions = await blocking(
        registry(request).get_latest_versions,
        required_str(body, "name"),
        str_list(body.get("stages"), "stages"),
    )
    return page_response("model_versions", [rj.model_version_to_json(v) for v in versions], None)


# ---- model versions ------------------------------------------------------------------------


def _local_path(uri: str) -> Path | None:
    """The resolved local path ``uri`` names (a path or ``file://``), or None for a remote URI."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            # MLflow answers 500 here; a source naming another host's disk is bad input: 400.
            raise InvalidInput(
                f"Invalid model version source: '{uri:.300}'. {uri:.300} is not a valid remote uri.",
                hint="Use a path on this server's disk, or a remote scheme such as s3:// or smb://.",
            )
        return Path(urllib.parse.unquote(parsed.path)).resolve()
    if parsed.scheme == "" or len(parsed.scheme) == 1:  # a path, or a Windows drive
        return Path(uri).resolve()
    return None


def _check_local_source(source: str, owner: str, owner_location: str, local: Path) -> None:
    """MLflow's rule: a local source must lie inside the artifact folder of the run (or logged
    model) the request names, so a client cannot register arbitrary files of the server's disk."""
    folder = _local_path(owner_location) if owner_location else None
    if folder is not None and (folder == local or folder in local.parents):
        return
    kind = "model_id" if owner == "model" else "run_id"
    raise InvalidInput(
        f"Invalid model version source: '{source:.300}'. To use a local path as a model version "
        f"source, the {kind} request parameter has to be specified and the local path has to be "
        f"contained within the artifact directory of the run specified by the {kind}."
    )


def _validate_source(
    reg: SqlRegistryStore, runs: SqlTrackingStore, source: str, run_id: str, model_id: str
) -> None:
    local = _local_path(source)
    if local is None:
        return
    if model_id:
        _check_local_source(source, "model", reg.get_logged_model(model_id).artifact_location, local)
    else:
        _check_local_source(source, "run", runs.get_run(run_id).info.artifact_uri if run_id else "", local)


def _resolve_source(
    reg: SqlRegistryStore, runs: SqlTrackingStore, source: str, run_id: str, model_id: str
) -> tuple[str, str, str, dict[str, str]]:
    """``source`` → (where its files are, run_id, model_id, digests recorded for it already)."""
    if not source.startswith(("models:", "runs:")):
        return source, run_id, model_id, {}
    ref = uris.parse(source)
    if ref.scheme == "runs":
        try:
            run = runs.get_run(ref.name)
        except NotFound:  # another tracking server's run (MLflow accepts it): keep the URI as given
            return source, run_id or ref.name, model_id, {}
        return join(run.info.artifact_uri, ref.path), run_id or ref.name, model_id, {}
    if ref.alias is None and ref.version is None:  # models:/<model_id>
        if model_id and model_id != ref.name:
            raise InvalidInput(
                f"Invalid model version source: '{source}'. The model_id request parameter must "
                "identify the resource that contains the source."
            )
        lm = reg.get_logged_model(ref.name)
        return join(lm.artifact_location, ref.path), run_id or lm.source_run_id, ref.name, {}
    # models:/<name>/<version> or models:/<name>@<alias>: a new version of existing files
    mv = _by_alias(reg, ref.name, ref.alias) if ref.alias else reg.get_model_version(ref.name, ref.version)
    if ref.path:
        inherited = {
            p.removeprefix(ref.path.strip("/") + "/"): d
            for p, d in mv.digests.items()
            if p.startswith(ref.path.strip("/") + "/")
        }
        return join(mv.source, ref.path), run_id or mv.run_id, model_id or mv.model_id, inherited
    return mv.source, run_id or mv.run_id, model_id or mv.model_id, dict(mv.digests)


def _held_digests(store: BlobArtifactStore, location: str) -> dict[str, str]:
    """Digests of the files the artifact store holds below ``location`` (empty if none or elsewhere)."""
    if not location.startswith(uris.ARTIFACT_SCHEME):
        return {}
    prefix = safe_path(uris.artifact_path(location), allow_root=True)
    if not prefix:
        raise InvalidInput("A model version's source cannot be the whole artifact store.")
    out: dict[str, str] = {}
    for f in store.walk(prefix):
        rel = f.path[len(prefix) :].lstrip("/")
        if not rel:
            continue
        if not f.digest:  # a store that cannot say what it holds: nothing to pin
            return {}
        out[rel] = f.digest
    return out


def _check_digests(source: str, expected: Mapping[str, str], held: Mapping[str, str]) -> None:
    changed = sorted(p for p in set(expected) & set(held) if expected[p] != held[p])
    missing = sorted(set(expected) - set(held))
    extra = sorted(set(held) - set(expected))
    if changed or missing or extra:
        parts = [
            f"{label}: {', '.join(paths[:20])}"
            for label, paths in (("changed", changed), ("missing", missing), ("unexpected", extra))
            if paths
        ]
        raise InvalidInput(
            f"The files at {source} do not match the digests given for them ({'; '.join(parts)}).",
            hint="Upload the model's files again, then register it.",
        )


def _note_registration(reg: SqlRegistryStore, lm: LoggedModel, mv: ModelVersion) -> None:
    """Tag the logged model with the versions registered from it, as MLflow's server does."""
    entry = {"name": mv.name, "version": mv.version}
    try:
        existing = json.loads(lm.tags.get(MODEL_VERSIONS_TAG, "[]"))
    except ValueError:
        existing = []
    versions = existing if isinstance(existing, list) else []
    if entry not in versions:
        versions.append(entry)
    reg.set_logged_model_tags(lm.model_id, {MODEL_VERSIONS_TAG: json.dumps(versions)})


def _create_version(
    reg: SqlRegistryStore,
    runs: SqlTrackingStore,
    store: BlobArtifactStore,
    body: dict[str, Any],
) -> ModelVersion:
    name = required_str(body, "name")
    source = required_str(body, "source")
    tags = dict(mj.decode_kv_list(body.get("tags"), "tags"))
    sent = rj.decode_digests(body.get(rj.DIGESTS_FIELD))
    run_id, model_id = optional_str(body, "run_id") or "", optional_str(body, "model_id") or ""
    _validate_source(reg, runs, source, run_id, model_id)
    reg.get_registered_model(name)  # 404 for an unknown model before any work
    location, run_id, model_id, inherited = _resolve_source(reg, runs, source, run_id, model_id)
    logged = reg.get_logged_model(model_id) if model_id else None
    if logged is not None:
        run_id = run_id or logged.source_run_id
    held = _held_digests(store, location)
    expected = sent or inherited
    if expected and held:
        _check_digests(source, expected, held)
    mv = reg.create_model_version(
        name,
        location,
        run_id=run_id,
        tags=tags,
        run_link=optional_str(body, "run_link") or "",
        description=optional_str(body, "description") or "",
        model_id=model_id,
        digests=expected or held,
    )
    if logged is not None:
        _note_registration(reg, logged, mv)
    return mv


@route("POST", "/model-versions/create")
@documented(rm.CreateModelVersion, answer=rm.ModelVersionAnswer)
async def create_model_version(request: Request) -> Response:
    body = await params(request)
    return _mv(
        await blocking(_create_version, registry(request), tracking(request), artifacts(request), body)
    )


@route("GET", "/model-versions/get")
@documented(rm.VersionRef, answer=rm.ModelVersionAnswer)
async def get_model_version(request: Request) -> Response:
    body = await params(request)
    return _mv(
        await blocking(registry(request).get_model_version, required_str(body, "name"), _version(body))
    )


def _update_version(reg: SqlRegistryStore, name: str, version: str, description: str | None) -> ModelVersion:
    if description is None:  # nothing to change
        return reg.get_model_version(name, version)
    return reg.update_model_version(name, version, description)


@route("PATCH", "/model-versions/update")
@documented(rm.UpdateModelVersion, answer=rm.ModelVersionAnswer)
async def update_model_version(request: Request) -> Response:
    body = await params(request)
    description = body.get("description")
    mv = await blocking(
        _update_version,
        registry(request),
        required_str(body, "name"),
        _version(body),
        None if description is None else mj.decode_str(description, "description"),
    )
    return _mv(mv)


@route("DELETE", "/model-versions/delete")
@documented(rm.VersionRef, answer=Empty)
async def delete_model_version(request: Request) -> Response:
    body = await _args(request)
    await blocking(registry(request).delete_model_version, required_str(body, "name"), _version(body))
    return json_response({})


@route("GET", "/model-versions/search")
@documented(rm.SearchModelVersions, answer=rm.ModelVersionsPage, errors=())
async def search_model_versions(request: Request) -> Response:
    body = await params(request)
    filter_string, prompts = _prompt_rule(optional_str(body, "filter"), VERSION_ATTRIBUTES)
    page = await blocking(
        registry(request).search_model_versions,
        filter_string,
        max_results(body, 200_000, 200_000),
        str_list(body.get("order_by"), "order_by"),
        page_token(body),
    )
    items = [rj.model_version_to_json(v) for v in page.items if prompts or not _is_prompt(v.tags)]
    return page_response("model_versions", items, page.next_page_token)


@route("POST", "/model-versions/transition-stage")
@documented(rm.TransitionStage, answer=rm.ModelVersionAnswer)
async def transition_model_version_stage(request: Request) -> Response:
    body = await params(request)
    mv = await blocking(
        registry(request).transition_model_version_stage,
        required_str(body, "name"),
        _version(body),
        required_str(body, "stage"),
        _bool(body, "archive_existing_versions"),
    )
    return _mv(mv)


@route("POST", "/model-versions/set-tag")
@documented(rm.SetModelVersionTag, answer=Empty)
async def set_model_version_tag(request: Request) -> Response:
    body = await params(request)
    await blocking(
        registry(request).set_model_version_tag,
        required_str(body, "name"),
        _version(body),
        required_str(body, "key"),
        mj.decode_str(body.get("value", ""), "value"),
    )
    return json_response({})


@route("DELETE", "/model-versions/delete-tag")
@documented(rm.DeleteModelVersionTag, answer=Empty)
async def delete_model_version_tag(request: Request) -> Response:
    body = await _args(request)
    await blocking(
        registry(request).delete_model_version_tag,
        required_str(body, "name"),
        _version(body),
        required_str(body, "key"),
    )
    return json_response({})


@route("GET", "/model-versions/get-download-uri")
@documented(rm.VersionRef, answer=rm.DownloadUri)
async def get_model_version_download_uri(request: Request) -> Response:
    body = await params(request)
    mv = await blocking(registry(request).get_model_version, required_str(body, "name"), _version(body))
    return json_response({"artifact_uri": mv.source})


# ---- logged models (MLflow 3) --------------------------------------------------------------


_MODEL_ID = {"model_id": "a logged model's ID (m-<32 hex digits>)"}


def _model_id(request: Request) -> str:
    return mj.decode_str(request.path_params["model_id"], "model_id")


@route("POST", "/logged-models")
@documented(rm.CreateLoggedModel, answer=rm.LoggedModelAnswer)
async def create_logged_model(request: Request) -> Response:
    body = await params(request)
    lm = await blocking(
        registry(request).create_logged_model,
        experiment_id(body.get("experiment_id")),
        optional_str(body, "name"),
        optional_str(body, "model_type") or "",
        optional_str(body, "source_run_id") or "",
        dict(mj.decode_kv_list(body.get("params"), "params")),
        dict(mj.decode_kv_list(body.get("tags"), "tags")),
    )
    return json_response({"model": rj.logged_model_to_json(lm)})


@route("GET", "/logged-models/{model_id}")
@documented(answer=rm.LoggedModelAnswer, path=_MODEL_ID)
async def get_logged_model(request: Request) -> Response:
    lm = await blocking(registry(request).get_logged_model, _model_id(request))
    return json_response({"model": rj.logged_model_to_json(lm)})


@route("PATCH", "/logged-models/{model_id}")
@documented(rm.FinalizeLoggedModel, answer=rm.LoggedModelAnswer, path=_MODEL_ID)
async def finalize_logged_model(request: Request) -> Response:
    body = await params(request)
    lm = await blocking(
        registry(request).finalize_logged_model,
        _model_id(request),
        rj.decode_logged_model_status(body.get("status")),
    )
    return json_response({"model": rj.logged_model_to_json(lm)})


@route("DELETE", "/logged-models/{model_id}")
@documented(answer=Empty, path=_MODEL_ID)
async def delete_logged_model(request: Request) -> Response:
    await blocking(registry(request).delete_logged_model, _model_id(request))
    return json_response({})


@route("PATCH", "/logged-models/{model_id}/tags")
@documented(rm.SetLoggedModelTags, answer=Empty, path=_MODEL_ID)
async def set_logged_model_tags(request: Request) -> Response:
    body = await params(request)
    tags = dict(mj.decode_kv_list(body.get("tags"), "tags"))
    await blocking(registry(request).set_logged_model_tags, _model_id(request), tags)
    return json_response({})


@route("DELETE", "/logged-models/{model_id}/tags/{tag_key:path}")
@documented(answer=Empty, path={**_MODEL_ID, "tag_key": "the tag's key (may hold '/')"})
async def delete_logged_model_tag(request: Request) -> Response:
    key = mj.decode_str(request.path_params["tag_key"], "tag_key")
    await blocking(registry(request).delete_logged_model_tag, _model_id(request), key)
    return json_response({})


@route("POST", "/logged-models/{model_id}/params")
@documented(rm.LogLoggedModelParams, answer=Empty, path=_MODEL_ID)
async def log_logged_model_params(request: Request) -> Response:
    body = await params(request)
    values = dict(mj.decode_kv_list(body.get("params"), "params"))
    await blocking(registry(request).log_logged_model_params, _model_id(request), values)
    return json_response({})


def _order_by(items: Sequence[Any]) -> None:
    """Loopline lists logged models newest first; that is the only order it offers yet."""
    for ob in items:
        if not isinstance(ob, dict) or not isinstance(ob.get("field_name"), str):
            raise InvalidInput("Invalid value for parameter 'order_by': expected [{'field_name': …}].")
        if ob["field_name"] not in ("creation_timestamp", "creation_time") or ob.get("ascending", True):
            raise InvalidInput(
                f"Cannot order logged models by {ob['field_name']!r:.100} "
                f"{'ascending' if ob.get('ascending', True) else 'descending'}.",
                hint="Loopline lists them newest first: omit order_by or ask for creation_timestamp "
                "descending.",
            )


def _dataset_filter(d: object) -> tuple[str, str]:
    """One entry of search's ``datasets``: {"dataset_name", "dataset_digest" (optional)}."""
    if not isinstance(d, dict):
        raise mj.invalid_value("datasets", d, "a list of {'dataset_name', 'dataset_digest'}")
    return (
        required_str(d, "dataset_name"),
        mj.decode_str(d.get("dataset_digest"), "dataset_digest", required=False),
    )


@route("POST", "/logged-models/search")
@documented(rm.SearchLoggedModels, answer=rm.LoggedModelsPage)
async def search_logged_models(request: Request) -> Response:
    body = await params(request)
    experiment_ids = [
        experiment_id(e, "experiment_ids") for e in list_arg(body, "experiment_ids", required=True)
    ]
    datasets = [_dataset_filter(d) for d in list_arg(body, "datasets")]
    _order_by(list_arg(body, "order_by"))
    page = await blocking(
        registry(request).search_logged_models,
        experiment_ids,
        optional_str(body, "filter"),
        max_results(body, 50, 50_000),
        page_token(body),
        datasets,
    )
    return page_response("models", [rj.logged_model_to_json(m) for m in page.items], page.next_page_token)


def _log_outputs(
    reg: SqlRegistryStore, runs: SqlTrackingStore, run_id: str, model_ids: list[str], steps: list[int]
) -> None:
    runs.get_run(run_id)  # 404 for an unknown run
    reg.log_outputs(run_id, model_ids, steps)


@route("POST", "/runs/outputs")
@documented(rm.LogOutputs, answer=Empty)
async def log_outputs(request: Request) -> Response:
    body = await params(request)
    run_id = required_str(body, "run_id")
    model_ids, steps = [], []
    for m in list_arg(body, "models", required=True):
        if not isinstance(m, dict):
            raise InvalidInput(f"Invalid entry {m!r:.100} in 'models': expected {{'model_id', 'step'}}.")
        model_ids.append(required_str(m, "model_id"))
        steps.append(mj.decode_int(m.get("step"), "models.step", default=0))
    await blocking(_log_outputs, registry(request), tracking(request), run_id, model_ids, steps)
    return json_response({})
