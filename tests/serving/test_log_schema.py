"""The inference log's one declared schema: serving's files match it, and monitoring reads them by it."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from loopline.artifacts import ArtifactStore, open_artifact_store
from loopline.monitoring import logwindow as lw
from loopline.serving import log_schema as ls
from loopline.serving.inference_log import Feedback, InferenceLog, Prediction, read_log


def _prediction(rid: str, at_ms: int, model: str, *, status: int = 200, error: str = "") -> Prediction:
    rows = [[float(len(rid)), "a"], [2.5, "b"]]
    inputs = {"columns": ["age", "plan"], "data": rows}
    probabilities = [[0.2, 0.8], [0.9, 0.1]]
    return Prediction(
        rid, at_ms, "churn-prod", model, "3", "primary", 2, inputs, probabilities, 1.5, status, error
    )


def _write(store: ArtifactStore) -> tuple[list[Prediction], list[Feedback]]:
    hour = 3_600_000
    now = int(time.time() * 1000) // hour * hour + hour // 2  # mid-hour: every record in one partition
    preds = [
        _prediction("r1", now, "churn"),
        _prediction("r2", now + 1, "churn"),
        _prediction("r3", now + 2, "fraud"),
        _prediction("r4", now + 3, "churn", status=400, error="no column 'age'"),
    ]
    feedback = [Feedback("r1", now + 10, [1, 0]), Feedback("r3", now + 11, 1)]
    log = InferenceLog(store, flush_interval=3600)
    for p in preds:
        log.log_prediction(p)
    for f in feedback:
        log.log_feedback(f)
    log.flush()
    return preds, feedback


def _schema_of(store: ArtifactStore, path: str) -> pa.Schema:
    with store.open(path) as f:
        return pq.ParquetFile(pa.BufferReader(f.read())).schema_arrow


def test_every_file_the_writer_makes_has_the_declared_columns_and_types(tmp_path: Path) -> None:
    store = open_artifact_store(str(tmp_path / "artifacts"))
    preds, _ = _write(store)
    files = sorted(f.path for f in store.walk(ls.ROOT) if f.path.endswith(".parquet"))
    predictions = [p for p in files if p.startswith(f"{ls.PREDICTIONS}/")]
    feedback = [p for p in files if p.startswith(f"{ls.FEEDBACK}/")]
    assert len(predictions) + len(feedback) == len(files)
    # One file per model and hour, in that model's folder, partitioned by day and hour.
    day = dt.datetime.fromtimestamp(preds[0].timestamp_ms / 1000, dt.UTC)
    for model in {p.model for p in preds}:
        mine = [p for p in predictions if p.startswith(f"{ls.predictions_dir(model)}/")]
        assert len(mine) == 1 and f"/{ls.DATE}={day:%Y-%m-%d}/hour={day:%H}/" in mine[0], mine
    assert len(predictions) == len({p.model for p in preds})
    assert len(feedback) == 1 and f"/{ls.DATE}={day:%Y-%m-%d}/" in feedback[0]
    for path in predictions:
        assert _schema_of(store, path).equals(ls.prediction_schema()), path
    for path in feedback:
        assert _schema_of(store, path).equals(ls.feedback_schema()), path
    table = read_log(store)
    assert table.num_rows == len(preds) and table.schema.equals(ls.prediction_schema())


def test_monitoring_reads_what_serving_wrote_by_the_same_names(tmp_path: Path) -> None:
    store = open_artifact_store(str(tmp_path / "artifacts"))
    preds, feedback = _write(store)
    parts = lw.new_parts(store, ls.predictions_dir("churn"), set(), "0000-00-00")
    records = [r for t in lw.read_parts(store, parts) for r in lw.decode_predictions(t, "churn-prod")]
    ok = [p for p in preds if p.model == "churn" and p.status == 200]
    # One record per input row of each successful request; a probability list becomes its argmax.
    expected = [
        (
            f"{p.request_id}#{j}",
            p.timestamp_ms,
            dict(zip(p.inputs["columns"], row, strict=True)),
            out.index(max(out)),
        )
        for p in ok
        for j, (row, out) in enumerate(zip(p.inputs["data"], p.outputs, strict=True))
    ]
    got = [
        (r[lw.REQUEST], r[lw.TIME], {"age": r["age"], "plan": r["plan"]}, r[lw.PREDICTION]) for r in records
    ]
    assert got == expected
    assert lw.decode_predictions(lw.read_parts(store, parts)[0], "another-deployment") == []
    labels = lw.feedback_labels(lw.read_parts(store, lw.new_parts(store, ls.FEEDBACK, set(), "0000-00-00")))
    assert labels == {f.request_id: f.ground_truth for f in feedback}
