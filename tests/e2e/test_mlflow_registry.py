"""The model registry both ways: the unmodified ``mlflow`` client and Loopline's against ``loopline server``.

A model logged and registered with ``mlflow.sklearn.log_model`` loads with ``loopline.load_model``
(every file checked against digests the server took at registration), and one logged with
``loopline.log_model`` loads with ``mlflow.pyfunc.load_model``. Registry calls, aliases, stages,
logged models and the error answers are checked against what MLflow's server does.
"""

from __future__ import annotations

import base64
import functools
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from support import allow_mlflow_pickles

import loopline
from loopline.errors import InvalidInput, NotFound
from loopline.registry import RegistryClient, save_model
from loopline.tracking import Client
from loopline.uris import artifact_path

from .conftest import RunningServer

pytestmark = [
    pytest.mark.e2e,
    # mlflow.types.responses warns once, when first imported (by log_model or pyfunc.load_model).
    pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType:UserWarning"),
    # MLflow's hint about integer outputs, as an error, would make it drop the output schema.
    pytest.mark.filterwarnings("ignore:.*Inferred schema contains integer column:UserWarning"),
]

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    # Float columns only: MLflow warns (an error here) about integer columns in an input example.
    X = pd.DataFrame({"age": rng.uniform(18, 80, 120), "income": rng.normal(50, 10, 120)})
    return X, (X.age + X.income / 2 > 70).astype(int)


@pytest.fixture
def loopline_remote(server: RunningServer) -> Iterator[Client]:
    """Loopline's module-level verbs pointed at the server; the previous setting comes back after."""
    from loopline.tracking import fluent

    before = fluent._state.get()
    loopline.set_tracking_uri(server.url)
    try:
        yield fluent.default_client()
    finally:
        while loopline.active_run():
            loopline.end_run()
        fluent._state.set(before)


def _tamper(
    server: RunningServer, artifact_location: str, data: tuple[pd.DataFrame, pd.Series], tmp: Path
) -> None:
    """Overwrite the model's ``model.skops`` through the server's artifact route with another model."""
    X, y = data
    save_model(RandomForestClassifier(n_estimators=2, random_state=1).fit(X, y), tmp / "evil")
    path = artifact_path(artifact_location)
    r = httpx.put(
        f"{server.url}{ARTIFACTS}/{path}/model.skops", content=(tmp / "evil" / "model.skops").read_bytes()
    )
    assert r.status_code == 200, r.text


# ---- MLflow logs, both load ------------------------------------------------------------------


def test_mlflow_logs_and_registers_then_mlflow_and_loopline_load_it(
    mlflow_uri: str, server: RunningServer, data: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    X, y = data
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    name = _name("churn")
    mlflow.set_experiment(_name("registry"))
    with mlflow.start_run() as run:
        mlflow.log_metric("acc", 0.9)
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name, input_example=X[:5])
    assert str(info.registered_model_version) == "1"
    client = MlflowClient()
    client.set_registered_model_alias(name, "champion", "1")

    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    np.testing.assert_array_equal(pyfunc.predict(X), model.predict(X))

    # The server resolved models:/<model_id> to where the files are and pinned every file.
    mv = client.get_model_version(name, "1")
    assert (mv.run_id, mv.aliases, mv.status) == (run.info.run_id, ["champion"], "READY")
    assert mv.source == client.get_logged_model(info.model_id).artifact_location
    assert client.get_model_version_download_uri(name, "1") == mv.source
    logged = client.get_logged_model(info.model_id)
    assert logged.status == "READY" and logged.source_run_id == run.info.run_id
    assert f'"name": "{name}"' in logged.tags["mlflow.modelVersions"]

    loaded = loopline.load_model(f"models:/{name}@champion", client=Client(tracking_uri=server.url))
    assert loaded.verified and loaded.flavor == "sklearn"
    assert loaded.version is not None and loaded.version.model_id == info.model_id
    assert {"MLmodel", "model.skops", "requirements.txt"} <= set(loaded.version.digests)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    with pytest.raises(InvalidInput, match="missing column 'income'"):  # MLflow's signature, enforced
        loaded.predict(X[["age"]])

    # mlflow.register_model finds the logged model behind a runs:/ URI, or takes its models:/ URI.
    assert mlflow.register_model(f"runs:/{run.info.run_id}/model", name).version == "2"
    assert mlflow.register_model(f"models:/{info.model_id}", name).version == "3"
    assert client.get_model_version(name, "2").source == mv.source

    _tamper(server, mv.source, data, tmp_path)
    with pytest.raises(InvalidInput, match=r"do not match the digests.*changed: model\.skops"):
        loopline.load_model(f"models:/{name}/1", client=Client(tracking_uri=server.url))
    # A new version of tampered files is refused: it inherits the digests of the version it copies.
    r = httpx.post(
        server.url + API + "/model-versions/create", json={"name": name, "source": f"models:/{name}/1"}
    )
    assert "changed: model.skops" in _error(r, 400, "INVALID_PARAMETER_VALUE")


# ---- Loopline logs, MLflow loads -------------------------------------------------------------


def test_loopline_logs_and_registers_then_mlflow_loads_it(
    mlflow_uri: str,
    server: RunningServer,
    loopline_remote: Client,
    data: tuple[pd.DataFrame, pd.Series],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    allow_mlflow_pickles(monkeypatch)  # MLflow asks even for skops
    X, y = data
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    name = _name("rf")
    with loopline.start_run(experiment=_name("ll")) as run:
        info = loopline.log_model(model, "model", input_example=X[:5], registered_model_name=name)
    assert info.registered_model_version == 1
    RegistryClient().set_alias(name, "champion", 1)

    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    np.testing.assert_array_equal(pyfunc.predict(X), model.predict(X))
    mv = MlflowClient().get_model_version_by_alias(name, "champion")
    assert (mv.version, mv.run_id, mv.source) == ("1", run.run_id, info.artifact_location)
    assert MlflowClient().get_logged_model(info.model_id).status == "READY"

    # The digests Loopline's client computed travelled to the server with the version.
    got = RegistryClient().get_model_version(name, 1)
    assert got.digests == info.digests
    loaded = loopline.load_model(f"models:/{name}@champion")
    assert loaded.verified
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))

    _tamper(server, info.artifact_location, data, tmp_path)
    with pytest.raises(InvalidInput, match=r"changed: model\.skops"):
        loopline.load_model(f"models:/{name}@champion")


# ---- runs:/ and stage URIs, and the code a version came from ----------------------------------


@pytest.mark.filterwarnings("ignore:.*transition_model_version_stage.*:FutureWarning")  # old clients' stages
def test_run_and_stage_uris_and_the_code_lineage_of_mlflow_models(
    mlflow_uri: str, server: RunningServer, data: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = data
    first = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    second = LogisticRegression(C=0.01, fit_intercept=False).fit(X, y)  # MLflow's skops trusts no trees
    sha = "89abcdef0123456789abcdef0123456789abcdef"
    mlflow.set_experiment(_name("uris"))
    runs, model_ids = [], []
    for model, dirty in ((first, "false"), (second, "true")):
        with mlflow.start_run() as run:
            mlflow.set_tags({"mlflow.source.git.commit": sha, "loopline.source.git.dirty": dirty})
            info = mlflow.sklearn.log_model(model, name="model", input_example=X[:5])  # a logged model
        runs.append(run.info.run_id)
        model_ids.append(info.model_id)
    remote = Client(tracking_uri=server.url)
    # runs:/<run>/model is the logged model "model" of that run, as MLflow 3 resolves it.
    for uri in (f"runs:/{runs[0]}/model", f"models:/{model_ids[0]}"):
        loaded = loopline.load_model(uri, client=remote)
        np.testing.assert_array_equal(loaded.predict(X), first.predict(X))

    name = _name("staged")
    for run_id in runs:
        mlflow.register_model(f"runs:/{run_id}/model", name)
    client = MlflowClient()
    client.transition_model_version_stage(name, "1", "Production")
    client.transition_model_version_stage(name, "2", "Staging")
    for uri, model, version in (
        (f"models:/{name}/Production", first, 1),
        (f"models:/{name}/staging", second, 2),
    ):
        got = loopline.load_model(uri, client=remote)
        assert got.verified and got.version is not None and got.version.version == version
        np.testing.assert_array_equal(got.predict(X), model.predict(X))
        np.testing.assert_array_equal(mlflow.pyfunc.load_model(uri).predict(X), model.predict(X))
    with pytest.raises(NotFound, match="is in stage 'Archived'"):
        loopline.load_model(f"models:/{name}/Archived", client=remote)

    # Registration linked each version to the git commit its run recorded (dirty: not exactly it).
    for version, code in ((1, f"code:/{sha}"), (2, f"code:/{sha}+dirty")):
        edges = httpx.get(
            f"{server.url}/api/2.0/loopline/lineage/upstream", params={"uri": f"models:/{name}/{version}"}
        ).json()["edges"]
        assert {(e["from_uri"], e["relation"]) for e in edges if e["from_uri"].startswith("code:/")} == {
            (code, "code_of")
        }


# ---- registry calls through MLflow's client --------------------------------------------------


def _source(exp: str = "0") -> str:
    return f"mlflow-artifacts:/{exp}/models/m-{uuid.uuid4().hex}/artifacts"


def test_registry_calls_through_the_mlflow_client(mlflow_uri: str) -> None:
    client = MlflowClient()
    name = _name("reg")
    rm = client.create_registered_model(name, tags={"team": "ml"}, description="churn model")
    assert (rm.name, rm.tags, rm.description) == (name, {"team": "ml"}, "churn model")
    v1 = client.create_model_version(name, _source(), tags={"k": "v"}, description="first")
    v2 = client.create_model_version(name, _source())
    assert (v1.version, v2.version, v1.tags, v1.description) == ("1", "2", {"k": "v"}, "first")

    found = client.search_registered_models(filter_string=f"name = '{name}'")
    assert [m.name for m in found] == [name] and [v.version for v in found[0].latest_versions] == ["2"]
    assert [m.name for m in client.search_registered_models(filter_string=f"name LIKE '{name[:-2]}%'")] == [
        name
    ]
    assert [v.version for v in client.search_model_versions(f"name = '{name}'")] == ["2", "1"]
    assert [
        v.version for v in client.search_model_versions(f"name = '{name}'", order_by=["version_number"])
    ] == [
        "1",
        "2",
    ]
    assert client.get_model_version(name, "1").tags == {"k": "v"}

    with pytest.warns(FutureWarning):  # stages are deprecated in MLflow, still served for old clients
        client.transition_model_version_stage(name, "1", "Production")
    with pytest.warns(FutureWarning):
        moved = client.transition_model_version_stage(name, "2", "production", archive_existing_versions=True)
    assert moved.current_stage == "Production"
    with pytest.warns(FutureWarning):
        latest = client.get_latest_versions(name, stages=["Production", "Archived"])
    assert sorted((v.version, v.current_stage) for v in latest) == [("1", "Archived"), ("2", "Production")]

    client.set_model_version_tag(name, "2", "validated", "yes")
    client.delete_model_version_tag(name, "1", "k")
    assert (client.get_model_version(name, "2").tags, client.get_model_version(name, "1").tags) == (
        {"validated": "yes"},
        {},
    )
    client.set_registered_model_tag(name, "owner", "ana")
    client.delete_registered_model_tag(name, "team")
    client.update_registered_model(name, description="new words")
    client.update_model_version(name, "2", description="second")
    rm = client.get_registered_model(name)
    assert (rm.tags, rm.description) == ({"owner": "ana"}, "new words")
    assert client.get_model_version(name, "2").description == "second"

    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "champion", "2")  # moves, in one step
    client.set_registered_model_alias(name, "challenger", "1")
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    assert client.get_registered_model(name).aliases == {"challenger": "1", "champion": "2"}
    client.delete_registered_model_alias(name, "challenger")
    client.delete_registered_model_alias(name, "challenger")  # deleting what is gone: a no-op, as in MLflow
    assert client.get_registered_model(name).aliases == {"champion": "2"}

    renamed = name + "-v2"
    client.rename_registered_model(name, renamed)
    assert client.get_model_version(renamed, "2").aliases == ["champion"]
    client.delete_model_version(renamed, "1")
    with pytest.raises(MlflowException) as e:
        client.get_model_version(renamed, "1")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.create_model_version(renamed, _source()).version == "3"  # numbers are never reused
    client.delete_registered_model(renamed)
    with pytest.raises(MlflowException) as e:
        client.get_registered_model(renamed)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_search_pages_and_hides_prompts_like_mlflow(mlflow_uri: str) -> None:
    client = MlflowClient()
    prefix = _name("page")
    for i in range(3):
        client.create_registered_model(f"{prefix}-{i}")
    # A prompt is a registered model with this tag: MLflow's searches leave it out unless asked.
    prompt = {"name": f"{prefix}-prompt", "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}]}
    httpx.post(mlflow_uri + API + "/registered-models/create", json=prompt).raise_for_status()
    pages = [client.search_registered_models(f"name LIKE '{prefix}%'", max_results=2, order_by=["name DESC"])]
    while pages[-1].token:
        pages.append(
            client.search_registered_models(
                f"name LIKE '{prefix}%'", max_results=2, order_by=["name DESC"], page_token=pages[-1].token
            )
        )
    assert len(pages) == 2 and all(len(p) <= 2 for p in pages)
    names = [m.name for p in pages for m in p]
    assert sorted(names) == [f"{prefix}-{i}" for i in range(3)]
    r = httpx.get(
        mlflow_uri + API + "/registered-models/search",
        params={"filter": f"name LIKE '{prefix}%' AND tags.`mlflow.prompt.is_prompt` = 'true'"},
    )
    assert [m["name"] for m in r.json()["registered_models"]] == [f"{prefix}-prompt"]


@pytest.mark.parametrize(
    "rest",
    [
        "",
        "name = 'churn'",
        r"name LIKE 'it\'s%' AND tags.`team name` IN ('a', 'b\\c') AND last_updated_timestamp > 1.5e12",
        "tags.owner IS NULL AND name != 'x'",
    ],
)
def test_the_prompt_clause_is_lifted_out_and_the_rest_kept(rest: str) -> None:
    from loopline.metadata.filter import parse_filter
    from loopline.registry.sql_store import MODEL_ATTRIBUTES
    from loopline.server.mlflow_registry import _prompt_rule

    clause = "tag.`mlflow.prompt.is_prompt` != 'true'"
    lifted, prompts = _prompt_rule(f"{rest} AND {clause}" if rest else clause, MODEL_ATTRIBUTES)
    assert not prompts and parse_filter(lifted, MODEL_ATTRIBUTES) == parse_filter(rest, MODEL_ATTRIBUTES)
    asked = f"tags.`mlflow.prompt.is_prompt` = 'true' AND {rest}" if rest else clause.replace("!=", "=")
    assert _prompt_rule(asked, MODEL_ATTRIBUTES) == (asked, True)


# ---- errors ----------------------------------------------------------------------------------


def _error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error_code", "message"} and body["error_code"] == code, body
    return str(body["message"])


def test_unknown_models_aliases_and_versions_are_404_naming_what_exists(server: RunningServer) -> None:
    name = _name("known")
    http = httpx.Client(base_url=server.url + API)
    http.post("/registered-models/create", json={"name": name}).raise_for_status()
    http.post("/model-versions/create", json={"name": name, "source": _source()}).raise_for_status()
    http.post("/registered-models/alias", json={"name": name, "alias": "champion", "version": "1"})

    msg = _error(http.get("/registered-models/get", params={"name": "nope"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert "name=nope not found" in msg and name in msg  # the models that do exist
    msg = _error(
        http.get("/registered-models/alias", params={"name": name, "alias": "challenger"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert "challenger" in msg and "champion" in msg
    msg = _error(
        http.get("/model-versions/get", params={"name": name, "version": "7"}), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    assert f"Versions of {name}: 1" in msg
    _error(
        http.get("/model-versions/get", params={"name": name, "version": "one"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    # "latest" is MLflow's reserved alias for the highest version.
    latest = http.get("/registered-models/alias", params={"name": name, "alias": "latest"}).json()
    assert latest["model_version"]["version"] == "1"

    with pytest.raises(NotFound, match="challenger") as err:
        loopline.load_model(f"models:/{name}@challenger", client=Client(tracking_uri=server.url))
    assert "champion" in str(err.value)


@pytest.mark.parametrize("alias", ["bad alias", "semi;colon", "v3", "V12", "latest", "x" * 256])
def test_bad_alias_names_are_400(mlflow_uri: str, alias: str) -> None:
    client = MlflowClient()
    name = _name("alias")
    client.create_registered_model(name)
    client.create_model_version(name, _source())
    with pytest.raises(MlflowException) as e:
        client.set_registered_model_alias(name, alias, "1")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert client.get_registered_model(name).aliases == {}


def test_bad_model_version_requests_are_400(server: RunningServer, tmp_path: Path) -> None:
    http = httpx.Client(base_url=server.url + API)
    name = _name("bad")
    http.post("/registered-models/create", json={"name": name}).raise_for_status()
    for source in ("/etc", "file:///etc/passwd", "relative/path", "mlflow-artifacts:/0/../../etc"):
        r = http.post("/model-versions/create", json={"name": name, "source": source})
        _error(r, 400, "INVALID_PARAMETER_VALUE")
    _error(http.post("/registered-models/create", json={"name": "a/b"}), 400, "INVALID_PARAMETER_VALUE")
    huge = base64.urlsafe_b64encode(json.dumps({"offset": 10**20}).encode()).decode()
    for route in ("/registered-models/search", "/model-versions/search"):
        _error(http.get(route, params={"page_token": huge}), 400, "INVALID_PARAMETER_VALUE")
        _error(http.get(route, params={"page_token": "garbage"}), 400, "INVALID_PARAMETER_VALUE")
    _error(
        http.get("/model-versions/get", params={"name": name, "version": "9" * 30}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    _error(http.post("/registered-models/create", json={"name": name}), 400, "RESOURCE_ALREADY_EXISTS")
    _error(
        http.post("/model-versions/create", json={"name": "nope", "source": _source()}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    r = http.post("/model-versions/transition-stage", json={"name": name, "version": "1", "stage": "Live"})
    assert r.status_code in (400, 404)

    # Digests that disagree with the files the server holds are refused.
    source = f"mlflow-artifacts:/0/models/m-{uuid.uuid4().hex}/artifacts"
    httpx.put(
        f"{server.url}{ARTIFACTS}/{artifact_path(source)}/MLmodel", content=b"flavors: {}\n"
    ).raise_for_status()
    body: dict[str, Any] = {"name": name, "source": source, "loopline_digests": {"MLmodel": "ab" * 32}}
    msg = _error(http.post("/model-versions/create", json=body), 400, "INVALID_PARAMETER_VALUE")
    assert "changed: MLmodel" in msg
    body["loopline_digests"] = {"MLmodel": "not hex"}
    _error(http.post("/model-versions/create", json=body), 400, "INVALID_PARAMETER_VALUE")
    # Without digests the server takes them from the artifact store.
    mv = http.post("/model-versions/create", json={"name": name, "source": source}).json()["model_version"]
    assert set(mv["loopline_digests"]) == {"MLmodel"}


# ---- logged models (MLflow 3) ----------------------------------------------------------------


def test_logged_models_api(server: RunningServer) -> None:
    http = httpx.Client(base_url=server.url + API)
    exp = http.post("/experiments/create", json={"name": _name("lm")}).json()["experiment_id"]
    run_id = http.post("/runs/create", json={"experiment_id": exp}).json()["run"]["info"]["run_id"]
    created = http.post(
        "/logged-models",
        json={
            "experiment_id": exp,
            "name": "clf",
            "source_run_id": run_id,
            "params": [{"key": "C", "value": "1.0"}],
            "tags": [{"key": "team", "value": "ml"}],
        },
    ).json()["model"]
    info = created["info"]
    model_id = info["model_id"]
    assert info["status"] == "LOGGED_MODEL_PENDING"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{exp}/models/{model_id}/artifacts"
    assert created["data"]["params"] == [{"key": "C", "value": "1.0"}]

    done = http.patch(f"/logged-models/{model_id}", json={"model_id": model_id, "status": 2}).json()["model"]
    assert done["info"]["status"] == "LOGGED_MODEL_READY"  # the enum's number is accepted, as in MLflow
    by_name = http.patch(f"/logged-models/{model_id}", json={"status": "LOGGED_MODEL_UPLOAD_FAILED"})
    assert by_name.json()["model"]["info"]["status"] == "LOGGED_MODEL_UPLOAD_FAILED"
    _error(http.patch(f"/logged-models/{model_id}", json={"status": 9}), 400, "INVALID_PARAMETER_VALUE")

    http.patch(
        f"/logged-models/{model_id}/tags", json={"tags": [{"key": "a/b", "value": "1"}]}
    ).raise_for_status()
    http.delete(f"/logged-models/{model_id}/tags/team").raise_for_status()
    http.post(f"/logged-models/{model_id}/params", json={"params": [{"key": "depth", "value": "3"}]})
    got = MlflowClient(server.url).get_logged_model(model_id)
    assert (got.tags, got.params) == ({"a/b": "1"}, {"C": "1.0", "depth": "3"})

    http.post(
        "/runs/outputs", json={"run_id": run_id, "models": [{"model_id": model_id, "step": 0}]}
    ).raise_for_status()
    _error(
        http.post("/runs/outputs", json={"run_id": run_id, "models": [{"model_id": "m-nope"}]}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    found = http.post(
        "/logged-models/search", json={"experiment_ids": [exp], "filter": "name = 'clf'"}
    ).json()
    assert [m["info"]["model_id"] for m in found["models"]] == [model_id]
    assert [m.model_id for m in MlflowClient(server.url).search_logged_models([exp])] == [model_id]
    _error(
        http.post("/logged-models/search", json={"experiment_ids": ["abc"]}), 400, "INVALID_PARAMETER_VALUE"
    )

    http.delete(f"/logged-models/{model_id}").raise_for_status()
    _error(http.get(f"/logged-models/{model_id}"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert http.post("/logged-models/search", json={"experiment_ids": [exp]}).json() == {}


# ---- fuzz: no request makes a server error ---------------------------------------------------

Call = Callable[..., httpx.Response]


@pytest.fixture(scope="module")
def app_call(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Call, str]]:
    """The server app in this process (fast for fuzzing), a model with a version and a logged model."""
    from anyio.from_thread import start_blocking_portal

    from loopline.config import Settings
    from loopline.server import create_app

    home = tmp_path_factory.mktemp("registry-fuzz")
    app = create_app(
        Settings.from_env({}, tracking_uri=f"sqlite:///{home / 'fuzz.db'}", artifacts_uri=str(home / "a"))
    )
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)  # a crash comes back as a 500
    with start_blocking_portal() as portal:
        client = httpx.AsyncClient(transport=transport, base_url="http://loopline")

        def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
            return portal.call(functools.partial(client.request, method, API + path, **kwargs))

        call("POST", "/registered-models/create", json={"name": "fz"})
        call("POST", "/model-versions/create", json={"name": "fz", "source": _source()})
        run = call("POST", "/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]["run_id"]
        model = call("POST", "/logged-models", json={"experiment_id": "0", "source_run_id": run}).json()
        yield call, model["model"]["info"]["model_id"]
        portal.call(client.aclose)


_ROUTES: dict[tuple[str, str], list[str]] = {
    ("POST", "/registered-models/create"): ["name", "tags", "description"],
    ("GET", "/registered-models/get"): ["name"],
    ("POST", "/registered-models/rename"): ["name", "new_name"],
    ("PATCH", "/registered-models/update"): ["name", "description"],
    ("DELETE", "/registered-models/delete"): ["name"],
    ("GET", "/registered-models/search"): ["filter", "max_results", "order_by", "page_token"],
    ("POST", "/registered-models/set-tag"): ["name", "key", "value"],
    ("DELETE", "/registered-models/delete-tag"): ["name", "key"],
    ("POST", "/registered-models/alias"): ["name", "alias", "version"],
    ("DELETE", "/registered-models/alias"): ["name", "alias"],
    ("GET", "/registered-models/alias"): ["name", "alias"],
    ("POST", "/registered-models/get-latest-versions"): ["name", "stages"],
    ("POST", "/model-versions/create"): ["name", "source", "run_id", "tags", "model_id", "loopline_digests"],
    ("GET", "/model-versions/get"): ["name", "version"],
    ("PATCH", "/model-versions/update"): ["name", "version", "description"],
    ("DELETE", "/model-versions/delete"): ["name", "version"],
    ("GET", "/model-versions/search"): ["filter", "max_results", "order_by", "page_token"],
    ("POST", "/model-versions/transition-stage"): ["name", "version", "stage", "archive_existing_versions"],
    ("POST", "/model-versions/set-tag"): ["name", "version", "key", "value"],
    ("DELETE", "/model-versions/delete-tag"): ["name", "version", "key"],
    ("GET", "/model-versions/get-download-uri"): ["name", "version"],
    ("POST", "/logged-models"): ["experiment_id", "name", "model_type", "source_run_id", "params", "tags"],
    ("PATCH", "/logged-models/$MODEL"): ["status"],
    ("PATCH", "/logged-models/$MODEL/tags"): ["tags"],
    ("POST", "/logged-models/$MODEL/params"): ["params"],
    ("POST", "/logged-models/search"): ["experiment_ids", "filter", "datasets", "max_results", "order_by"],
    ("POST", "/runs/outputs"): ["run_id", "models"],
}
_text = st.sampled_from(
    ["fz", "1", "champion", "v1", "latest", "", "0", "99999999999999999999999", "a/b"]
) | st.text(max_size=12)
_scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _text
_kv = st.fixed_dictionaries(
    {}, optional={"key": _scalar, "value": _scalar, "model_id": _scalar, "step": _scalar}
)
_sources = st.sampled_from(
    ["models:/fz/1", "models:/fz@champion", "runs:/x/m", "mlflow-artifacts:", "s3://b/k"]
)
_json = st.recursive(
    _scalar | _sources, lambda inner: st.lists(inner, max_size=3) | st.lists(_kv, max_size=3), max_leaves=6
)


@st.composite
def _requests(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    method, path = draw(st.sampled_from(sorted(_ROUTES)))
    fields = _ROUTES[(method, path)]
    values = st.lists(_text, max_size=2) | _text if method == "GET" else _json
    body = draw(st.dictionaries(st.sampled_from([*fields, "junk"]), values, max_size=len(fields)))
    return method, path, body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_requests())
def test_fuzzed_registry_requests_never_cause_a_server_error(
    app_call: tuple[Call, str], case: tuple[str, str, dict[str, Any]]
) -> None:
    call, model_id = app_call
    method, path, body = case
    path = path.replace("$MODEL", model_id)
    r = call(method, path, params=body) if method == "GET" else call(method, path, json=body)
    assert r.status_code < 500, (method, path, body, r.text)
    if r.status_code != 200:
        assert set(r.json()) == {"error_code", "message"}, r.text
