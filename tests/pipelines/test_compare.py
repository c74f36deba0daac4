"""``compare.difference``: two outputs of a step are the same when they hold the same, whatever their
bytes; when they differ, it says where."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression

from loopline.artifacts import ArtifactStore, open_artifact_store
from loopline.pipelines import serializers
from loopline.pipelines.compare import difference
from loopline.pipelines.types import StepRecord


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return open_artifact_store(str(tmp_path / "artifacts"))


def record(store: ArtifactStore, value: Any, node: str = "step", run: str = "r1") -> StepRecord:
    out = serializers.dump(value, store, f"pipelines/p/{run}/{node}", step=node)
    return StepRecord(
        run, "p", node, node, "succeeded", serializer=out.serializer, output_path=out.path,
        output_digest=out.digest, output_inline=out.inline, output_meta=out.meta,
    )  # fmt: skip


def frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(50, 3)), columns=["a", "b", "c"])
    df["label"] = (df.a > 0).astype(int)
    return df


def test_tables_compare_by_values_not_file_metadata(store: ArtifactStore) -> None:
    a, b = frame(), frame()
    a.attrs["built_at"], b.attrs["built_at"] = time.time(), time.time() + 1  # in the Parquet metadata
    old, new = record(store, a, run="r1"), record(store, b, run="r2")
    assert old.output_digest != new.output_digest and difference(old, new, store) == ""
    b.loc[3, "b"] = 99.0
    assert difference(old, record(store, b, run="r3"), store) == "column(s) b differ"
    assert difference(old, record(store, b.iloc[:10], run="r4"), store) == "10 rows instead of 50"
    arrow = pa.table({"x": [1, 2]})
    assert difference(record(store, arrow, run="r5"), record(store, pa.table({"x": [1, 3]}), run="r6"), store)


def test_arrays_and_json_compare_by_value(store: ArtifactStore) -> None:
    nan = np.array([1.0, np.nan])
    assert difference(record(store, nan, run="r1"), record(store, nan.copy(), run="r2"), store) == ""
    assert difference(record(store, nan, run="r1"), record(store, nan.astype("float32"), run="r3"), store)
    old = record(store, {"metrics": {"auc": 0.9, "n": 3}}, run="r1")
    new = record(store, {"metrics": {"auc": 0.8, "n": 3}}, run="r2")
    assert difference(old, new, store) == "the values differ at metrics.auc"


def test_models_compare_by_parameters_state_and_predictions_on_the_steps_inputs(store: ArtifactStore) -> None:
    df = frame()
    data = record(store, df, node="data")
    X, y = df[["a", "b", "c"]], df.label
    old = record(store, LogisticRegression().fit(X, y), node="train", run="r1")
    same = record(store, LogisticRegression().fit(X, y), node="train", run="r2")
    assert old.output_digest != same.output_digest  # a saved model's bytes differ between saves
    assert difference(old, same, store, {"data": data}) == ""

    other = record(store, LogisticRegression(C=1e-3).fit(X, 1 - y), node="train", run="r3")
    found = difference(old, other, store, {"data": data})
    assert found.startswith("parameters differ: C; fitted attributes differ: coef_, intercept_")
    assert re.search(r"; predictions differ on [1-9][0-9]* of 50 rows of data's output$", found)
    # Without inputs to predict on, the parameters and fitted state still decide.
    assert difference(old, other, store).startswith("parameters differ: C")
