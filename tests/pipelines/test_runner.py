"""Running pipelines in-process: outputs, tracking, lineage, cache, explain, failures, retries, resume.

The store-facing tests run on SQLite and on PostgreSQL (``any_settings``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from loopline.config import Settings
from loopline.errors import InvalidInput
from loopline.metadata import lineage
from loopline.pipelines import Runner, StepFailed, dataset, pipeline, step


@step
def make_frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"x": range(rows), "y": [v * 0.5 for v in range(rows)]})


@step
def add_feature(df: pd.DataFrame, factor: float) -> pd.DataFrame:
    return df.assign(z=df["x"] * factor)


@step
def to_array(df: pd.DataFrame) -> np.ndarray:
    return df[["x", "z"]].to_numpy()


@step
def to_table(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df, preserve_index=False)


@step
def summarize(arr: np.ndarray, table: pa.Table) -> dict[str, float]:
    return {"total": float(arr.sum()), "rows": float(table.num_rows)}


@pipeline
def features(rows: int = 5, factor: float = 2.0) -> Any:
    df = add_feature(make_frame(rows), factor)
    return summarize(to_array(df), to_table(df))


def test_a_run_passes_outputs_by_type_and_records_tracking_and_lineage(any_settings: Settings) -> None:
    with Runner(any_settings) as runner:
        run = runner.run(features, {"rows": 4})
        assert run.status == "succeeded", run.error
        assert run.outputs == {"total": 18.0, "rows": 4.0}  # x: 0..3 (6) + z = 2x (12)
        steps = run.steps
        assert [steps[n].serializer for n in ("make_frame", "to_array", "to_table", "summarize")] == [
            "pandas", "numpy", "arrow", "json"
        ]  # fmt: skip
        assert steps["summarize"].output_inline is not None and steps["make_frame"].output_path
        assert steps["make_frame"].output_meta["rows"] == 4
        # one id for the pipeline run and its tracking run, which carries params, seed and output metrics
        tracked = runner.client.get_run(run.run_id)
        assert tracked.data.params["rows"] == "4" and tracked.data.params["factor"] == "2.0"
        assert "seed" in tracked.data.params
        assert tracked.data.metrics["total"] == 18.0
        assert tracked.data.tags["loopline.pipeline"] == "features"
        rec = runner.store.get_run(run.run_id)
        assert rec.environment["python"]["version"] and rec.environment["packages"]
        assert rec.environment["seeds"]["python"] == rec.seed
        up = lineage.upstream(runner.store.engine, "default", f"{run.uri}/summarize")
        edges = {(e.from_uri, e.to_uri, e.relation) for e in up}
        assert (f"{run.uri}/to_array", f"{run.uri}/summarize", "input_of") in edges
        assert (f"{run.uri}/make_frame", f"{run.uri}/add_feature", "input_of") in edges
        down = {e.to_uri for e in lineage.downstream(runner.store.engine, "default", run.uri)}
        assert f"runs:/{run.run_id}" in down and f"{run.uri}/summarize" in down


def test_unchanged_steps_are_cached_and_explain_says_why(any_settings: Settings) -> None:
    with Runner(any_settings) as runner:
        first = runner.run(features, {"rows": 4})
        assert {s.reason for s in first.steps.values()} == {"ran: first run of this step"}
        again = runner.run(features, {"rows": 4})
        assert {s.status for s in again.steps.values()} == {"cached"}
        assert again.outputs == first.outputs
        assert (
            again.steps["summarize"].reason
            == f"skipped: same code, inputs and parameters as run {first.run_id}"
        )
        changed = runner.run(features, {"rows": 4, "factor": 3.0})
        st = {n: s.status for n, s in changed.steps.items()}
        assert st == {"make_frame": "cached", "add_feature": "succeeded", "to_array": "succeeded",
                      "to_table": "succeeded", "summarize": "succeeded"}  # fmt: skip
        assert "parameters changed: factor 2.0 → 3.0" in changed.steps["add_feature"].reason
        assert "input add_feature changed" in changed.steps["to_array"].reason
        nocache = runner.run(features, {"rows": 4}, cache=False)
        assert {s.status for s in nocache.steps.values()} == {"succeeded"}
        assert nocache.steps["make_frame"].reason == "ran: caching is off for this run (--no-cache)"


def test_a_failing_step_stops_its_dependants_only_and_the_run_resumes(
    any_settings: Settings, tmp_path: Path
) -> None:
    flag = tmp_path / "broken"
    flag.write_text("yes")
    calls = tmp_path / "calls"

    @step
    def source(n: int) -> int:
        with open(calls, "a") as f:
            f.write("source\n")
        return n

    @step
    def fragile(x: int, flag: str) -> int:
        with open(calls, "a") as f:
            f.write("fragile\n")
        if os.path.exists(flag):
            raise ValueError("the data is bad")
        return x + 1

    @step
    def after(x: int) -> int:
        return x * 10

    @step
    def independent(x: int) -> int:
        return x - 1

    @pipeline
    def flow(n: int = 1) -> Any:
        s = source(n)
        return {"a": after(fragile(s, str(flag))), "b": independent(s)}

    with Runner(any_settings) as runner:
        run = runner.run(flow, {})
        assert run.status == "failed"
        st = {n: s.status for n, s in run.steps.items()}
        assert st == {
            "source": "succeeded",
            "fragile": "failed",
            "after": "upstream_failed",
            "independent": "succeeded",
        }
        assert run.error == "Step 'fragile' failed: ValueError: the data is bad"
        assert "ValueError: the data is bad" in run.steps["fragile"].error  # with the traceback
        assert run.steps["after"].reason == "not run: upstream fragile failed"
        assert run.steps["fragile"].output_digest == "" and run.steps["after"].output_digest == ""
        assert run.resume_command.startswith(f"loopline pipeline resume {run.run_id} --tracking-uri")
        with pytest.raises(StepFailed, match="fragile") as e:
            run.raise_for_status()
        assert e.value.hint == run.resume_command

        flag.unlink()  # "fix" the step, then resume: only what failed or never ran runs
        resumed = runner.resume(run.run_id, flow)
        assert resumed.run_id == run.run_id and resumed.status == "succeeded"
        assert resumed.outputs == {"a": 20, "b": 0}
        assert calls.read_text().splitlines() == ["source", "fragile", "fragile"]
        assert runner.store.get_run(run.run_id).status == "succeeded"
        with pytest.raises(InvalidInput, match="nothing to resume"):
            runner.resume(run.run_id, flow)


def test_retries_back_off_then_succeed(settings: Settings, tmp_path: Path) -> None:
    attempts = tmp_path / "attempts"

    @step(retries=2, retry_delay=0.05, backoff=2.0)
    def flaky(x: int) -> int:
        with open(attempts, "a") as f:
            f.write("x")
        if len(attempts.read_text()) < 3:
            raise ConnectionError("try again")
        return x

    @pipeline
    def p() -> Any:
        return flaky(7)

    events: list[tuple[str, dict[str, Any]]] = []
    with Runner(settings, on_event=lambda k, d: events.append((k, d))) as runner:
        run = runner.run(p, {})
    assert run.status == "succeeded" and run.outputs == 7
    assert run.steps["flaky"].attempts == 3
    assert [round(d["delay"], 2) for k, d in events if k == "retry"] == [0.05, 0.1]


def test_unserialisable_output_and_wrong_type_fail_clearly_without_retry(settings: Settings) -> None:
    class Opaque:
        pass

    @step(retries=3)
    def opaque() -> object:
        return Opaque()

    @step(retries=3)
    def liar() -> str:
        return 42  # type: ignore[return-value]

    @pipeline
    def p() -> Any:
        return [opaque(), liar()]

    with Runner(settings) as runner:
        run = runner.run(p, {})
    o, li = run.steps["opaque"], run.steps["liar"]
    assert o.status == li.status == "failed" and o.attempts == li.attempts == 1
    assert "Step 'opaque' returned a" in o.error and "cannot serialise" in o.error
    assert "serializer='pickle'" in o.error
    assert "Step 'liar' returned a int, but its annotation says str" in li.error
    assert o.output_digest == li.output_digest == ""


def test_dataset_files_are_inputs_whose_content_is_part_of_the_key(
    settings: Settings, tmp_path: Path
) -> None:
    data = tmp_path / "raw.csv"
    data.write_text("a,b\n1,2\n3,4\n")

    @step
    def total_a(raw: pd.DataFrame) -> int:
        return int(raw["a"].sum())

    @pipeline
    def p(path: str) -> Any:
        return total_a(dataset(path))

    with Runner(settings) as runner:
        first = runner.run(p, {"path": str(data)})
        assert first.outputs == 4 and list(first.steps) == ["total_a"]
        inputs = runner.store.get_run(first.run_id).environment["inputs"]
        assert inputs["raw_data"]["ref"] == str(data)
        assert runner.run(p, {"path": str(data)}).steps["total_a"].status == "cached"
        data.write_text("a,b\n1,2\n5,4\n")
        changed = runner.run(p, {"path": str(data)})
        assert changed.outputs == 6 and "input raw_data changed" in changed.steps["total_a"].reason
        with pytest.raises(InvalidInput, match="does not exist"):
            runner.run(p, {"path": str(tmp_path / "missing.parquet")})
        assert len(runner.store.list_runs("p")) == 3  # the refused run left nothing behind


class Line:
    """A tiny model (the generic pyfunc flavor saves any object with predict): y = a·x + b."""

    def __init__(self, a: float, b: float) -> None:
        self.a, self.b = a, b

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.a * np.asarray(x, dtype=float)[:, 0] + self.b


def test_a_model_output_is_registered_with_lineage(settings: Settings) -> None:
    import loopline

    @step
    def xy(n: int) -> pd.DataFrame:
        return pd.DataFrame({"x": [float(i) for i in range(n)], "y": [2.0 * i + 1 for i in range(n)]})

    @step(register="line")
    def fit(df: pd.DataFrame) -> Line:
        a, b = np.polyfit(df["x"], df["y"], 1)
        return Line(float(a), float(b))

    @step
    def predict_at(model: Line, x: float) -> float:
        return float(model.predict(np.array([[x]]))[0])

    @pipeline
    def train(n: int = 6) -> Any:
        return {"y10": predict_at(fit(xy(n)), 10.0)}

    with Runner(settings) as runner:
        run = runner.run(train, {})
        assert run.status == "succeeded", run.error
        assert run.outputs["y10"] == pytest.approx(21.0)
        mv = run.steps["fit"].output_meta["model_version"]
        assert mv == "models:/line/1" and run.steps["fit"].serializer == "model"
        up = {(e.from_uri, e.to_uri) for e in lineage.upstream(runner.store.engine, "default", mv)}
        assert (f"{run.uri}/fit", mv) in up and (f"runs:/{run.run_id}", mv) in up
        assert (f"{run.uri}/xy", f"{run.uri}/fit") in up
        loaded = loopline.load_model(mv, client=runner.client, allow_pickle=True)
        assert float(loaded.predict(np.array([[0.0]]))[0]) == pytest.approx(1.0)
        cached = runner.run(train, {})
        assert cached.steps["fit"].status == "cached"
        assert cached.steps["fit"].output_meta["model_version"] == mv  # no second version for a cache hit


def test_dataset_versions_are_pinned_inputs_joined_into_the_lineage(settings: Settings) -> None:
    from loopline.data import DataClient

    data = DataClient(settings)
    v1 = data.add(pd.DataFrame({"a": [1, 2, 3]}), "raw").version

    @step
    def total_a(raw: pd.DataFrame) -> int:
        return int(raw["a"].sum())

    @pipeline
    def p(source: str = "datasets:/raw") -> Any:
        return total_a(dataset(source))

    with Runner(settings) as runner:
        first = runner.run(p, {})
        assert first.status == "succeeded", first.error
        assert first.outputs == 6
        inputs = runner.store.get_run(first.run_id).environment["inputs"]
        assert inputs["raw_data"] == {"ref": v1.uri, "digest": v1.digest}
        down = {(e.from_uri, e.to_uri) for e in lineage.downstream(runner.store.engine, "default", v1.uri)}
        assert (v1.uri, f"{first.uri}/total_a") in down and (v1.uri, first.uri) in down
        v2 = data.add(pd.DataFrame({"a": [1, 2, 3, 4]}), "raw").version
        second = runner.run(p, {})
        assert second.outputs == 10 and "input raw_data changed" in second.steps["total_a"].reason
        assert runner.store.get_run(second.run_id).environment["inputs"]["raw_data"]["ref"] == v2.uri
        pinned = runner.run(p, {"source": v1.uri})
        assert pinned.steps["total_a"].status == "cached" and pinned.outputs == 6


def test_isolated_steps_run_in_their_own_process_and_timeouts_kill_them(
    settings: Settings, tmp_path: Path
) -> None:
    from pipeline_support import write

    from loopline.pipelines import load_target

    project = write(
        tmp_path / "iso",
        iso="""
        import os
        import time
        from loopline.pipelines import pipeline, step

        @step(isolate=True)
        def where(x: int) -> list:
            return [x, os.getpid()]

        @step(timeout=1.0)
        def stuck(x: list) -> int:
            time.sleep(60)
            return 0

        @pipeline
        def p(x: int = 3):
            w = where(x)
            return {"where": w, "stuck": stuck(w)}
        """,
    )
    with Runner(settings) as runner:
        run = runner.run(load_target(f"{project / 'iso.py'}:p"), {})
    where, stuck = run.steps["where"], run.steps["stuck"]
    assert where.status == "succeeded" and stuck.status == "failed"
    import json

    x, pid = json.loads(where.output_inline or "[]")
    assert x == 3 and pid != os.getpid()
    assert "Step 'stuck' timed out after 1 s and was killed." in stuck.error
    assert stuck.duration_ms is not None and stuck.duration_ms < 30_000
