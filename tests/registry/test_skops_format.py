"""skops files load through ``skops.io`` with one trust rule: skops' defaults, plus the MLmodel's list
only for files the registry verified, plus everything only when the user opted in to the author's code."""

from __future__ import annotations

import fractions
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import loopline
from loopline.errors import InvalidInput
from loopline.registry import load_model, log_model, save_model
from loopline.registry.flavors.base import ALLOW_PICKLE_ENV
from loopline.registry.mlmodel import MLmodel
from loopline.registry.models import load_from_directory

FRACTION = "fractions.Fraction"  # a type skops does not trust by default


@pytest.fixture(autouse=True)
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(ALLOW_PICKLE_ENV, raising=False)
    loopline.set_tracking_uri(f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "art"))
    yield
    while loopline.active_run():
        loopline.end_run()


def _data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(11)
    X = pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80)})
    return X, (X.a - X.b > 0).astype(int)


def _noted_pipeline() -> tuple[Any, pd.DataFrame]:
    """A fitted pipeline that carries a value of a type outside skops' default list."""
    X, y = _data()
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    model.note_ = fractions.Fraction(1, 3)
    return model, X


def test_a_type_off_skops_list_is_refused_without_verification_or_opt_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, X = _noted_pipeline()
    meta = save_model(model, tmp_path / "m")
    assert meta.flavors["sklearn"]["skops_trusted_types"] == [FRACTION]  # recorded when saved
    with pytest.raises(InvalidInput, match=f"not on the trusted list: .*{FRACTION}") as refused:
        load_from_directory(tmp_path / "m")  # a folder anyone could have written, list included
    assert "allow_pickle=True" in (refused.value.hint or "")

    verified = load_from_directory(tmp_path / "m", verified=True)  # the registry vouched: list honoured
    assert verified.native.note_ == fractions.Fraction(1, 3)
    np.testing.assert_array_equal(verified.predict(X), model.predict(X))
    assert load_from_directory(tmp_path / "m", allow_pickle=True).native.note_ == fractions.Fraction(1, 3)
    monkeypatch.setenv(ALLOW_PICKLE_ENV, "1")  # the opt-in, from the environment
    assert load_from_directory(tmp_path / "m").native.note_ == fractions.Fraction(1, 3)


def test_a_verified_file_still_refuses_a_type_its_mlmodel_does_not_list(tmp_path: Path) -> None:
    model, _ = _noted_pipeline()
    meta = save_model(model, tmp_path / "m")
    meta.flavors["sklearn"]["skops_trusted_types"] = None
    meta.save(tmp_path / "m")  # a verified MLmodel whose list leaves the type out
    assert MLmodel.load(tmp_path / "m").flavors["sklearn"]["skops_trusted_types"] is None
    with pytest.raises(InvalidInput, match=f"not on the trusted list: .*{FRACTION}"):
        load_from_directory(tmp_path / "m", verified=True)


def test_registered_models_load_verified_with_their_list(tmp_path: Path) -> None:
    noted, X = _noted_pipeline()
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(*_data())  # needs skops' Tree type
    with loopline.start_run(experiment="skops"):
        log_model(noted, registered_model_name="noted")
        info = log_model(forest, registered_model_name="forest")
    loaded = load_model("models:/noted/1")
    assert loaded.verified and loaded.native.note_ == fractions.Fraction(1, 3)
    trees = load_model("models:/forest/1")
    assert trees.verified
    np.testing.assert_array_equal(trees.predict(X), forest.predict(X))
    with pytest.raises(InvalidInput, match=r"not on the trusted list: .*sklearn\.tree\._tree\.Tree"):
        load_model(info.model_uri)  # models:/<model id>: no registered digests, so not verified


def test_a_model_of_default_types_needs_no_list(tmp_path: Path) -> None:
    X, y = _data()
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    meta = save_model(model, tmp_path / "m")
    assert meta.flavors["sklearn"]["skops_trusted_types"] is None
    np.testing.assert_array_equal(load_from_directory(tmp_path / "m").predict(X), model.predict(X))
