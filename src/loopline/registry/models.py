"""Save, log, register and load models.

    info = loopline.log_model(model, "model", input_example=X[:5], registered_model_name="churn")
    loopline.RegistryClient().set_alias("churn", "champion", info.registered_model_version)
    model = loopline.load_model("models:/churn@champion")
    model.predict(X_new)            # checked against the signature first

Every file of a saved model gets a BLAKE3 digest; registering a version stores them, and loading
through the registry hashes what it downloaded and refuses any file that does not match.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from loopline.artifacts.digests import hash_file
from loopline.artifacts.paths import join
from loopline.errors import InvalidInput, NotFound
from loopline.registry import flavors
from loopline.registry.flavors.base import Trust
from loopline.registry.mlmodel import PYFUNC, MLmodel
from loopline.registry.signature import Signature, enforce, infer_signature
from loopline.registry.types import STAGES, LoggedModelStatus, ModelVersion
from loopline.uris import artifact_path, parse

if TYPE_CHECKING:
    from loopline.registry.store import RegistryStore
    from loopline.tracking.store import TrackingStore


@dataclass(frozen=True)
class ModelInfo:
    """What ``log_model`` made."""

    model_id: str
    model_uri: str
    artifact_location: str
    run_id: str | None
    signature: Signature | None
    flavor: str
    digests: Mapping[str, str]
    registered_model_version: int | None = None


def digests_of(directory: Path) -> dict[str, str]:
    """``{relative path: BLAKE3}`` for every file below ``directory``."""
    return {
        p.relative_to(directory).as_posix(): hash_file(p) for p in sorted(directory.rglob("*")) if p.is_file()
    }


def _write_env_files(directory: Path, requirements: list[str]) -> None:
    from loopline.registry.mlmodel import python_version

    (directory / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
    (directory / "python_env.yaml").write_text(
        f"python: {python_version()}\nbuild_dependencies:\n- pip\ndependencies:\n- -r requirements.txt\n"
    )
    pip = "".join(f"  - {r}\n" for r in requirements)
    deps = f"dependencies:\n- python={python_version()}\n- pip\n- pip:\n{pip}"
    (directory / "conda.yaml").write_text(f"channels:\n- conda-forge\n{deps}name: env\n")


def _write_input_example(directory: Path, example: Any) -> dict[str, Any] | None:
    if example is None:
        return None
    if hasattr(example, "to_dict") and hasattr(example, "columns"):
        payload = json.loads(example.to_json(orient="split", index=False, date_format="iso"))
        (directory / "input_example.json").write_text(json.dumps(payload))
        (directory / "serving_input_example.json").write_text(
            json.dumps({"dataframe_split": payload}, indent=2)
        )
        return {
            "artifact_path": "input_example.json",
            "pandas_orient": "split",
            "type": "dataframe",
            "serving_input_path": "serving_input_example.json",
        }
    import numpy as np

    arr = np.asarray(example)
    (directory / "input_example.json").write_text(json.dumps(arr.tolist()))
    (directory / "serving_input_example.json").write_text(json.dumps({"inputs": arr.tolist()}, indent=2))
    return {
        "artifact_path": "input_example.json",
        "type": "ndarray",
        "format": "tf-serving",
        "serving_input_path": "serving_input_example.json",
    }


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    input_example: Any = None,
    signature: Signature | None = None,
    extra_requirements: list[str] | None = None,
    model_id: str | None = None,
    run_id: str | None = None,
) -> MLmodel:
    """Write ``model`` to folder ``path`` in MLflow's model layout (MLmodel + flavor files)."""
    directory = Path(path)
    if directory.exists() and any(directory.iterdir()):
        raise InvalidInput(f"{directory} is not empty.", hint="Save into a new or empty folder.")
    directory.mkdir(parents=True, exist_ok=True)
    flavor = flavors.for_model(model)
    saved = flavor.save(model, directory)
    if signature is None and input_example is not None:
        output = None
        try:
            predict = getattr(flavor, "predict", None)
            output = predict(model, input_example) if predict else model.predict(input_example)
        except Exception:  # the signature's output half is optional
            output = None
        signature = infer_signature(input_example, output)
    meta = MLmodel(
        flavors={PYFUNC: saved.pyfunc, flavors.MLFLOW_NAMES[flavor.NAME]: saved.flavor},
        signature=signature,
        run_id=run_id,
        model_id=model_id,
        artifact_path=directory.name,
        saved_input_example_info=_write_input_example(directory, input_example),
    )
    meta.save(directory)
    _write_env_files(directory, saved.requirements + list(extra_requirements or []))
    return meta


class LoadedModel:
    """A model ready to predict: its input is checked against the signature first."""

    def __init__(
        self,
        native: Any,
        meta: MLmodel,
        flavor: ModuleType,
        uri: str,
        version: ModelVersion | None,
        verified: bool,
    ) -> None:
        self.native = native
        self.metadata = meta
        self.flavor = flavor.NAME
        self.uri = uri
        self.version = version
        self.verified = verified
        self._predict = getattr(flavor, "predict", None)

    @property
    def signature(self) -> Signature | None:
        return self.metadata.signature

    def predict(self, data: Any) -> Any:
        checked = enforce(self.metadata.signature, data)
        if self._predict is not None:
            return self._predict(self.native, checked)
        return self.native.predict(checked)

    def __repr__(self) -> str:
        return f"LoadedModel({self.uri!r}, flavor={self.flavor!r})"


def load_from_directory(
    directory: Path,
    *,
    uri: str = "",
    version: ModelVersion | None = None,
    verified: bool = False,
    allow_pickle: bool = False,
) -> LoadedModel:
    meta = MLmodel.load(directory)
    flavor, conf = flavors.for_mlmodel(meta.flavors)
    native = flavor.load(directory, conf, Trust(verified, allow_pickle))
    return LoadedModel(native, meta, flavor, uri or str(directory), version, verified)


def verify(directory: Path, expected: Mapping[str, str]) -> None:
    """Refuse a model whose files differ from the digests the registry holds."""
    actual = digests_of(directory)
    extra = sorted(set(actual) - set(expected))
    missing = sorted(set(expected) - set(actual))
    changed = sorted(p for p in set(actual) & set(expected) if actual[p] != expected[p])
    if extra or missing or changed:
        parts = [
            f"{label}: {', '.join(paths)}"
            for label, paths in (("changed", changed), ("missing", missing), ("unexpected", extra))
            if paths
        ]
        raise InvalidInput(
            "Refusing to load the model: its files do not match the digests recorded when it was "
            f"registered ({'; '.join(parts)}).",
            hint="The artifacts were altered after registration. Re-register the model from a trusted run.",
        )


def fetch(store: Any, prefix: str, dst: Path) -> dict[str, str]:
    """Download every file below ``prefix`` into ``dst``; returns the store's digests where it has them."""
    known: dict[str, str] = {}
    for f in store.walk(prefix):
        rel = f.path[len(prefix) :].lstrip("/")
        store.get_file(f.path, dst / rel)
        if f.digest:
            known[rel] = f.digest
    if not any(dst.iterdir()):
        raise NotFound(f"No model files at {prefix!r}.")
    return known


def resolve(uri: str, registry: RegistryStore, tracking: TrackingStore) -> tuple[str, ModelVersion | None]:
    """A model URI → (artifact-store prefix of its files, the registered version if any).

    ``models:/<name>/<version>``, ``models:/<name>/latest``, ``models:/<name>/<stage>`` (MLflow's
    legacy stages: the newest version in that stage), ``models:/<name>@<alias>``,
    ``models:/<model id>`` and ``runs:/<run id>/<path>`` (a model the run logged under that name,
    as MLflow 3 logs them, else the run's own artifacts at that path).
    """
    if uri.startswith(("models:/", "runs:/")):
        ref = parse(uri)
        if ref.scheme == "runs":
            return _run_files(ref.name, ref.path, registry, tracking), None
        if ref.alias is not None:
            mv = registry.get_model_version_by_alias(ref.name, ref.alias)
        elif ref.version is not None:
            mv = _version(ref.name, ref.version, registry)
        else:
            return artifact_path(registry.get_logged_model(ref.name).artifact_location), None
        if mv.source.startswith(("models:/", "runs:/")):  # MLflow's server stores models:/m-… sources
            return resolve(mv.source, registry, tracking)[0], mv
        return artifact_path(mv.source), mv
    raise InvalidInput(
        f"Cannot load a model from {uri!r}.",
        hint="Use models:/<name>/<version>, models:/<name>@<alias>, models:/<name>/<stage>, "
        "runs:/<run>/<path> or a folder.",
    )


def _version(name: str, version: str, registry: RegistryStore) -> ModelVersion:
    """The version ``models:/<name>/<version>`` names: a number, ``latest`` or a legacy stage."""
    if version.isdigit():
        return registry.get_model_version(name, version)
    if version.lower() == "latest":
        latest = registry.get_registered_model(name).latest_versions
        if not latest:
            raise NotFound(f"Registered model {name!r} has no versions.", hint="Register one first.")
        return registry.get_model_version(name, max(v.version for v in latest))
    stage = {s.lower(): s for s in STAGES}.get(version.lower())
    if stage is None:
        raise InvalidInput(
            f"{version!r} in models:/{name}/{version} is neither a version number, 'latest' nor a stage.",
            hint=f"Use a number, latest, an alias (models:/{name}@<alias>) or one of {', '.join(STAGES)}.",
        )
    in_stage = registry.get_latest_versions(name, [stage])  # MLflow: the newest version in that stage
    if not in_stage:
        raise NotFound(
            f"No version of registered model {name!r} is in stage {stage!r}.",
            hint="Move one there (transition_model_version_stage), or load by alias or version.",
        )
    return registry.get_model_version(name, max(v.version for v in in_stage))


def _run_files(run_id: str, path: str, registry: RegistryStore, tracking: TrackingStore) -> str:
    """Where ``runs:/<run_id>/<path>`` points: MLflow 3 (and Loopline) log a model as a logged model
    whose files live apart from the run's, so ``<path>``'s first part names a logged model of that
    run if there is one (the newest, as MLflow picks); otherwise it is a path in the run's artifacts."""
    run = tracking.get_run(run_id)
    name, _, rest = path.partition("/")
    if name and run_id.isalnum():  # run IDs are hex: safe to quote in a filter
        token = None
        while True:
            page = registry.search_logged_models(
                [run.info.experiment_id], f"source_run_id = '{run_id}'", 100, token
            )
            if match := next((m for m in page.items if m.name == name), None):
                return join(artifact_path(match.artifact_location), rest)
            if not (token := page.next_page_token):
                break
    return join(artifact_path(run.info.artifact_uri), path)


def _embedded_lookup(uri: str) -> tuple[str, ModelVersion, Any] | None:
    """``models:/name@alias`` or ``models:/name/N`` in the default embedded store, read without
    importing SQLAlchemy (see ``registry.sqlite_lookup``); None whenever the full path must decide."""
    if not uri.startswith("models:/"):
        return None
    ref = parse(uri)
    if ref.path or (ref.alias is None and not (ref.version or "").isdigit()):
        return None
    from loopline.registry.sqlite_lookup import find_model_version
    from loopline.tracking.fluent import default_settings

    settings = default_settings()
    if settings.is_remote:
        return None
    mv = find_model_version(
        settings.tracking_uri,
        settings.workspace,
        ref.name,
        version=None if ref.alias is not None else int(ref.version or 0),
        alias=ref.alias,
    )
    if mv is None or mv.source.startswith(("models:/", "runs:/")):
        return None
    from loopline.artifacts import open_artifact_store

    return (
        artifact_path(mv.source),
        mv,
        open_artifact_store(settings.artifacts_uri, workspace=settings.workspace),
    )


def load_model(uri: str | os.PathLike[str], *, allow_pickle: bool = False, client: Any = None) -> LoadedModel:
    """Load a model by URI (``models:/name@alias``, ``models:/name/3``, ``runs:/id/model``) or folder."""
    if not isinstance(uri, str) or os.path.isdir(uri):
        return load_from_directory(Path(uri), allow_pickle=allow_pickle)
    found = _embedded_lookup(uri) if client is None else None
    mv: ModelVersion | None
    if found is not None:
        prefix, mv, artifacts = found
    else:
        from loopline.registry.client import RegistryClient

        rc = client if isinstance(client, RegistryClient) else RegistryClient(client)
        prefix, mv = resolve(uri, rc.store, rc.tracking.store)
        artifacts = rc.tracking.artifacts
    with tempfile.TemporaryDirectory(prefix="loopline-model-") as tmp:  # every flavor loads into memory
        dst = Path(tmp)
        store_digests = fetch(artifacts, prefix, dst)
        # Only digests recorded at registration vouch for the files; the store's own only catch damage
        # in transit, since whoever changed a file also changed the digest the store keeps for it.
        registered = dict(mv.digests) if mv is not None and mv.digests else {}
        if registered or store_digests:  # a server that lists no digests leaves nothing to compare
            verify(dst, registered or store_digests)
        return load_from_directory(
            dst, uri=uri, version=mv, verified=bool(registered), allow_pickle=allow_pickle
        )


def log_model(
    model: Any,
    name: str = "model",
    *,
    input_example: Any = None,
    signature: Signature | None = None,
    registered_model_name: str | None = None,
    run_id: str | None = None,
    client: Any = None,
) -> ModelInfo:
    """Save ``model`` as a logged model of the active run (or ``run_id``), optionally registering it."""
    from loopline.registry.client import RegistryClient
    from loopline.tracking import active_run

    rc = client if isinstance(client, RegistryClient) else RegistryClient(client)
    if run_id is None:
        run = active_run()
        if run is None:
            raise InvalidInput("log_model needs a run.", hint="Call it inside `with loopline.start_run():`.")
        run_id = run.run_id
        if client is None:
            rc = RegistryClient(run.client)
    info = rc.tracking.store.get_run(run_id).info
    logged = rc.store.create_logged_model(info.experiment_id, name, "", run_id)
    with tempfile.TemporaryDirectory(prefix="loopline-save-") as tmp:
        directory = Path(tmp) / name
        meta = save_model(
            model,
            directory,
            input_example=input_example,
            signature=signature,
            model_id=logged.model_id,
            run_id=run_id,
        )
        digests = digests_of(directory)
        prefix = artifact_path(logged.artifact_location)
        try:
            for rel in digests:
                rc.tracking.artifacts.put_file(directory / rel, join(prefix, rel))
        except BaseException:
            rc.store.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
            raise
    rc.store.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    rc.store.log_outputs(run_id, [logged.model_id])
    flavor = next(k for k in meta.flavors if k != PYFUNC)
    version = None
    if registered_model_name:
        version = rc.register(
            logged.artifact_location,
            registered_model_name,
            run_id=run_id,
            model_id=logged.model_id,
            digests=digests,
        ).version
    return ModelInfo(
        logged.model_id,
        f"models:/{logged.model_id}",
        logged.artifact_location,
        run_id,
        meta.signature,
        flavor,
        digests,
        version,
    )
