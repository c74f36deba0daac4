"""The tracking client, embedded and against a real ``loopline server``: the same behaviour both ways."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopline.config import Settings
from loopline.errors import InvalidInput, NotFound
from loopline.tracking import Client
from loopline.tracking.types import Metric, RunStatus


@pytest.fixture(params=["embedded", "server"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Client:
    if request.param == "embedded":
        return Client(
            Settings.from_env(
                {},
                tracking_uri=f"sqlite:///{tmp_path / 'db.sqlite'}",
                artifacts_uri=str(tmp_path / "art"),
                flush_interval=0.05,
            )
        )
    url = request.getfixturevalue("loopline_server")
    return Client(Settings.from_env({}, tracking_uri=url, flush_interval=0.05))


def test_buffered_metrics_are_all_written_by_set_terminated(client: Client) -> None:
    exp = client.set_experiment("buffered").experiment_id
    rid = client.create_run(exp).info.run_id
    for i in range(2500):  # spans several 1,000-metric batches
        client.log_metric(rid, "loss", 1.0 / (i + 1), step=i)
    client.set_terminated(rid)
    history = client.get_metric_history(rid, "loss")
    assert [m.step for m in history] == list(range(2500))
    run = client.get_run(rid)
    assert run.info.status == RunStatus.FINISHED and run.data.metrics["loss"] == pytest.approx(1 / 2500)


def test_log_batch_splits_over_limits(client: Client) -> None:
    rid = client.create_run(client.set_experiment("big").experiment_id).info.run_id
    client.log_batch(
        rid,
        [Metric("m", float(i), 1, i) for i in range(2345)],
        params={f"p{i}": i for i in range(250)},
        tags={f"t{i}": "x" for i in range(150)},
    )
    run = client.get_run(rid)
    assert len(run.data.params) == 250 and run.data.params["p7"] == "7"
    assert sum(k.startswith("t") for k in run.data.tags) == 150
    assert len(client.get_metric_history(rid, "m")) == 2345


def test_artifacts_round_trip(client: Client, tmp_path: Path) -> None:
    rid = client.create_run(client.set_experiment("art").experiment_id).info.run_id
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.bin").write_bytes(bytes(range(256)) * 1000)
    client.log_artifacts(rid, src, "bundle")
    client.log_artifact(rid, src / "a.txt")
    client.log_text(rid, "hi", "notes/readme.md")
    assert [(f.path, f.is_dir) for f in client.list_artifacts(rid)] == [
        ("a.txt", False),
        ("bundle", True),
        ("notes", True),
    ]
    assert [(f.path, f.file_size) for f in client.list_artifacts(rid, "bundle/sub")] == [
        ("bundle/sub/b.bin", 256000)
    ]
    out = client.download_artifacts(rid, "bundle", tmp_path / "dl")
    assert (out / "a.txt").read_text() == "alpha"
    assert (out / "sub" / "b.bin").read_bytes() == bytes(range(256)) * 1000
    single = client.download_artifacts(rid, "notes/readme.md", tmp_path / "dl2")
    assert single.read_text() == "hi"
    with pytest.raises(InvalidInput):
        client.log_artifact(rid, src / "a.txt", "../escape")
    with pytest.raises(NotFound):
        client.log_artifact(rid, tmp_path / "missing.txt")


def test_errors_are_the_same_either_way(client: Client) -> None:
    rid = client.create_run(client.set_experiment("errs").experiment_id).info.run_id
    client.log_param(rid, "lr", 0.1)
    with pytest.raises(InvalidInput, match="Changing param values"):
        client.log_param(rid, "lr", 0.2)
    with pytest.raises(NotFound):
        client.get_run("f" * 32)
    with pytest.raises(InvalidInput):
        client.search_runs(filter_string="metrics.x >")


def test_search_across_experiments(client: Client) -> None:
    for name in ("s1", "s2"):
        exp = client.set_experiment(name).experiment_id
        rid = client.create_run(exp, run_name=f"run-{name}").info.run_id
        client.log_metric(rid, "acc", 0.5 if name == "s1" else 0.9)
    runs = client.search_runs(filter_string="metrics.acc > 0.1", order_by=["metrics.acc DESC"])
    assert [r.info.run_name for r in runs] == ["run-s2", "run-s1"]


def test_bad_metric_keys_fail_at_the_call(client: Client) -> None:
    rid = client.create_run(client.set_experiment("keys").experiment_id).info.run_id
    with pytest.raises(InvalidInput, match="Invalid metric name"):
        client.log_metric(rid, "bad\nkey", 1.0)
    with pytest.raises(InvalidInput, match="non-numeric"):
        client.log_metric(rid, "ok", "abc")  # type: ignore[arg-type]


def test_history_keeps_non_finite_values_and_order(client: Client) -> None:
    rid = client.create_run(client.set_experiment("odd").experiment_id).info.run_id
    values = [1.5, float("inf"), float("-inf"), float("nan"), -0.0]
    client.log_batch(rid, [Metric("m", v, 1000 + i, i) for i, v in enumerate(values)])
    got = client.get_metric_history(rid, "m")
    assert [m.step for m in got] == [0, 1, 2, 3, 4]
    assert [m.value for m in got][:3] == [1.5, float("inf"), float("-inf")]
    assert got[3].value != got[3].value and got[4].value == 0.0


def test_set_terminated_writes_the_last_points_with_the_status(client: Client) -> None:
    rid = client.create_run(client.set_experiment("finish").experiment_id).info.run_id
    for i in range(2300):  # more than one batch is left queued at the end
        client.log_metric(rid, "m", float(i), step=i)
    client.set_terminated(rid, "FAILED")
    run = client.get_run(rid)
    assert run.info.status.value == "FAILED" and run.info.end_time is not None
    assert len(client.get_metric_history(rid, "m")) == 2300
    assert run.data.metrics["m"] == 2299.0
