"""log_model → register → alias → load_model, embedded: signatures, digests, trust."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import loopline
from loopline.errors import InvalidInput, NotFound
from loopline.metadata.lineage import upstream
from loopline.registry import RegistryClient, infer_signature, load_model, log_model, save_model
from loopline.registry.mlmodel import MLmodel
from loopline.tracking import default_client
from loopline.uris import artifact_path


@pytest.fixture(autouse=True)
def embedded(tmp_path: Path) -> Iterator[None]:
    loopline.set_tracking_uri(f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "art"))
    yield
    while loopline.active_run():
        loopline.end_run()


@pytest.fixture
def data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "age": rng.uniform(18, 80, 200),
            "income": rng.normal(50, 10, 200),
            "visits": rng.integers(0, 20, 200),
        }
    )
    y = (X.age + X.income / 2 > 70).astype(int)
    return X, y


class Doubler:
    """A plain class with predict: the generic flavor."""

    def predict(self, data: pd.DataFrame) -> np.ndarray:
        return np.asarray(data["x"]) * 2


def test_log_register_alias_load_predict(data: tuple[pd.DataFrame, pd.Series], tmp_path: Path) -> None:
    X, y = data
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    with loopline.start_run(experiment="churn") as run:
        info = log_model(model, "model", input_example=X[:5], registered_model_name="churn")
    assert info.registered_model_version == 1 and info.flavor == "sklearn"
    assert set(info.digests) >= {"MLmodel", "model.skops", "requirements.txt", "input_example.json"}
    rc = RegistryClient()
    rc.set_alias("churn", "champion", 1)
    loaded = load_model("models:/churn@champion")
    assert loaded.verified and loaded.version is not None and loaded.version.run_id == run.run_id
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(load_model("models:/churn/1").predict(X[:3]), model.predict(X[:3]))
    np.testing.assert_array_equal(load_model("models:/churn/latest").predict(X[:3]), model.predict(X[:3]))
    np.testing.assert_array_equal(load_model(info.model_uri).predict(X[:3]), model.predict(X[:3]))
    sig = loaded.signature
    assert sig is not None and [(c.name, c.type) for c in sig.columns] == [
        ("age", "double"),
        ("income", "double"),
        ("visits", "long"),
    ]
    client = default_client()
    with client.artifacts.open(artifact_path(info.artifact_location) + "/requirements.txt") as f:
        assert b"scikit-learn==" in f.read()
    edges = upstream(client.store.engine, "default", "models:/churn/1")  # type: ignore[attr-defined]
    assert f"runs:/{run.run_id}" in {e.from_uri for e in edges}


def test_signature_violations_name_the_column(data: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = data
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    with loopline.start_run(experiment="sig"):
        log_model(model, input_example=X[:5], registered_model_name="rf")
    loaded = load_model("models:/rf/1")
    with pytest.raises(InvalidInput, match="missing column 'visits'"):
        loaded.predict(X[["age", "income"]])
    bad = X.copy()
    bad["income"] = "lots"
    with pytest.raises(InvalidInput, match="Column 'income' must be double"):
        loaded.predict(bad)
    floats = X.copy()
    floats["visits"] = floats["visits"] + 0.5
    with pytest.raises(InvalidInput, match="Column 'visits' must be long"):
        loaded.predict(floats)
    assert len(loaded.predict(X.to_numpy())) == len(X)  # a plain array maps onto the columns in order
    with pytest.raises(InvalidInput, match="expects 3"):
        loaded.predict(np.zeros((2, 2)))


def test_tampered_files_are_refused(data: tuple[pd.DataFrame, pd.Series], tmp_path: Path) -> None:
    X, y = data
    with loopline.start_run(experiment="t"):
        info = log_model(LogisticRegression().fit(X, y), registered_model_name="victim")
    other = RandomForestClassifier(n_estimators=2).fit(X, y)
    evil = tmp_path / "evil"
    save_model(other, evil)
    store = default_client().artifacts
    store.put_file(evil / "model.skops", artifact_path(info.artifact_location) + "/model.skops")
    with pytest.raises(InvalidInput, match=r"do not match the digests.*changed: model.skops"):
        load_model("models:/victim/1")


def test_generic_flavor_needs_opt_in_to_unpickle() -> None:
    with loopline.start_run(experiment="g"):
        log_model(Doubler(), "doubler", registered_model_name="doubler")
    with pytest.raises(InvalidInput, match="runs code stored in the model") as err:
        load_model("models:/doubler/1")
    assert "allow_pickle=True" in err.value.hint
    loaded = load_model("models:/doubler/1", allow_pickle=True)
    assert list(loaded.predict(pd.DataFrame({"x": [1, 2]}))) == [2, 4]


def test_unknown_model_and_alias_say_what_exists(data: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = data
    with loopline.start_run(experiment="u"):
        log_model(LogisticRegression().fit(X, y), registered_model_name="known")
    RegistryClient().set_alias("known", "champion", 1)
    with pytest.raises(NotFound) as err:
        load_model("models:/unknown@champion")
    assert "known" in err.value.hint
    with pytest.raises(NotFound) as err:
        load_model("models:/known@challenger")
    assert "champion" in err.value.hint
    with pytest.raises(InvalidInput):
        load_model("s3://somewhere/model")


def test_save_model_round_trips_locally(data: tuple[pd.DataFrame, pd.Series], tmp_path: Path) -> None:
    X, y = data
    model = LogisticRegression().fit(X, y)
    meta = save_model(model, tmp_path / "m", input_example=X[:2])
    assert set(meta.flavors) == {"python_function", "sklearn"}
    assert meta.flavors["python_function"]["loader_module"] == "mlflow.sklearn"
    again = MLmodel.load(tmp_path / "m")
    assert again.signature == meta.signature == infer_signature(X[:2], model.predict(X[:2]))
    loaded = load_model(str(tmp_path / "m"))
    assert not loaded.verified  # a bare folder has no registry digests
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    with pytest.raises(InvalidInput, match="not empty"):
        save_model(model, tmp_path / "m")


def test_run_uris_find_the_logged_model_and_stage_uris_the_newest_in_stage(
    data: tuple[pd.DataFrame, pd.Series],
) -> None:
    X, y = data
    first = LogisticRegression(max_iter=500).fit(X, y)
    second = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    with loopline.start_run(experiment="uris") as run:
        log_model(first, "model", registered_model_name="staged")
        loopline.log_text("not a model", "notes/readme.txt")
    # runs:/<run>/model: the run's logged model "model" (its files live apart from the run's).
    np.testing.assert_array_equal(load_model(f"runs:/{run.run_id}/model").predict(X), first.predict(X))
    with pytest.raises(InvalidInput, match="no MLmodel"):  # not a model's name: the run's own files
        load_model(f"runs:/{run.run_id}/notes")
    with pytest.raises(NotFound):
        load_model(f"runs:/{run.run_id}/nothing")
    with loopline.start_run(experiment="uris"):
        log_model(second, "model", registered_model_name="staged")
    rc = RegistryClient()
    rc.store.transition_model_version_stage("staged", 1, "Production")
    rc.store.transition_model_version_stage("staged", 2, "Staging")
    assert load_model("models:/staged/Production").version.version == 1  # type: ignore[union-attr]
    assert load_model("models:/staged/staging").version.version == 2  # type: ignore[union-attr]
    rc.store.transition_model_version_stage("staged", 2, "Production")  # MLflow: the newest one wins
    np.testing.assert_array_equal(load_model("models:/staged/Production").predict(X), second.predict(X))
    with pytest.raises(NotFound, match="No version of registered model 'staged' is in stage 'Archived'"):
        load_model("models:/staged/Archived")
    with pytest.raises(InvalidInput, match="neither a version number, 'latest' nor a stage"):
        load_model("models:/staged/Prod")
