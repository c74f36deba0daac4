"""The gate end to end: real models registered in a real store, a held-out dataset version, every
rule measured, and the verdict tagged on the candidate. Embedded (SQLite + a local artifact folder)
and through a real ``loopline server`` with only its http:// URI on the client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from support import serve_loopline

import loopline
from loopline.automation.gates import (
    DATASET_TAG,
    GATE_TAG,
    REASON_TAG,
    Verdict,
    judge,
    verdict_from_json,
    verdict_to_json,
)
from loopline.automation.types import Gate, GateRule
from loopline.data.validation import Suite, expect
from loopline.errors import InvalidInput
from loopline.registry import RegistryClient, log_model
from loopline.registry.signature import ColSpec, Signature

FEATURES = ["x1", "x2", "x3", "x4"]
AUC = GateRule("metric", metric="roc_auc", max_loss=0.005)


def frame(n: int, seed: int, flip: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({c: rng.normal(0, 1, n) for c in FEATURES})
    score = X.x1 + 0.8 * X.x2 - 0.6 * X.x3 + rng.normal(0, 0.8, n)
    label = (score > 0).astype(int)
    flipped = rng.random(n) < flip
    return X.assign(label=np.where(flipped, 1 - label, label))


def register(
    train: pd.DataFrame, *, shuffle: bool = False, signature: Signature | None = None, example: bool = True
) -> str:
    """Fit a logistic regression on ``train`` and register it as the next version of "churn"."""
    y = train.label.to_numpy()
    if shuffle:  # a model that learnt nothing
        y = np.random.default_rng(0).permutation(y)
    model = LogisticRegression().fit(train[FEATURES], y)
    with loopline.start_run(experiment="gates"):
        info = log_model(
            model,
            input_example=train[FEATURES][:3] if example and signature is None else None,
            signature=signature,
            registered_model_name="churn",
        )
    return f"models:/churn/{info.registered_model_version}"


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Path]:
    loopline.set_tracking_uri(f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "art"))
    loopline.log_dataset(frame(1500, seed=3), name="holdout")
    yield tmp_path
    while loopline.active_run():
        loopline.end_run()


def tags(uri: str) -> dict[str, str]:
    name, version = uri.removeprefix("models:/").split("/")
    return dict(RegistryClient().get_model_version(name, version).tags)


def test_a_better_candidate_passes_every_rule_and_is_tagged(embedded: Path) -> None:
    champion = register(frame(60, seed=1, flip=0.3))  # little, noisy data
    candidate = register(frame(3000, seed=2))
    Suite("holdout", [expect.not_null("x1"), expect.in_set("label", [0, 1])]).to_yaml(embedded / "suite.yaml")
    gate = Gate(
        dataset="datasets:/holdout",
        rules=(
            AUC,
            GateRule("metric", metric="log_loss", max_loss=0.0, method="point"),
            GateRule("latency", p99_ms=1000),
            GateRule("validation", suite=str(embedded / "suite.yaml")),
            GateRule("signature"),
        ),
    )
    verdict = judge(gate, candidate, champion)
    assert verdict.passed, verdict.reason
    assert (verdict.dataset, verdict.candidate, verdict.champion) == (
        "datasets:/holdout/1",
        candidate,
        champion,
    )
    auc, loss, latency, validation, signature = verdict.rules
    assert auc.numbers["candidate"] > auc.numbers["champion"] and auc.numbers["resamples"] == 1000
    assert auc.numbers["bound"] < auc.numbers["difference"] and auc.numbers["bound"] > -0.005
    assert "lower bound" in auc.why and "is within the allowed loss 0.005" in auc.why
    assert loss.numbers["difference"] < 0 and loss.numbers["bound"] == loss.numbers["difference"]
    assert (
        latency.numbers["calls"] == 200 and 0 < latency.numbers["p50_ms"] <= latency.numbers["p99_ms"] < 1000
    )
    assert validation.numbers == {"expectations": 2.0, "failed": 0.0, "warnings": 0.0, "rows": 1500.0}
    assert signature.passed and signature.numbers["problems"] == 0
    assert tags(candidate) == {
        GATE_TAG: "passed",
        REASON_TAG: verdict.reason,
        DATASET_TAG: "datasets:/holdout/1",
    }
    assert verdict_from_json(json.loads(json.dumps(verdict_to_json(verdict)))) == verdict


def test_a_worse_candidate_fails_with_the_rules_numbers_and_stays_registered(embedded: Path) -> None:
    champion = register(frame(3000, seed=2))
    candidate = register(frame(3000, seed=4), shuffle=True)
    gate = Gate(dataset="datasets:/holdout", rules=(AUC, GateRule("latency", p99_ms=1e-6)))
    verdict = judge(gate, candidate, champion)
    assert not verdict.passed
    auc, latency = verdict.rules
    assert not auc.passed and auc.numbers["bound"] < -0.005
    assert f"candidate {auc.numbers['candidate']:.4f} vs champion {auc.numbers['champion']:.4f}" in auc.why
    assert f"lower bound {auc.numbers['bound']:+.4f} is a loss beyond the allowed loss 0.005" in auc.why
    assert (
        not latency.passed and latency.numbers["p99_ms"] > 1e-6 and "over the limit 1e-06 ms" in latency.why
    )
    got = tags(candidate)
    assert got[GATE_TAG] == "failed" and got[REASON_TAG] == f"{auc.why}; {latency.why}"
    assert GATE_TAG not in tags(champion)


def test_first_model_passes_metric_rules_on_its_own_numbers(embedded: Path) -> None:
    candidate = register(frame(500, seed=2))
    verdict = judge(Gate(dataset="datasets:/holdout", rules=(AUC, GateRule("signature"))), candidate, None)
    assert verdict.passed and verdict.champion == ""
    auc, signature = verdict.rules
    assert set(auc.numbers) == {"candidate"} and 0.8 < auc.numbers["candidate"] <= 1
    assert "no champion to compare with" in auc.why and "no champion" in signature.why


def test_signature_mismatch_fails(embedded: Path) -> None:
    champion = register(frame(500, seed=2))
    wider = Signature((*(ColSpec("double", c) for c in FEATURES), ColSpec("double", "x9")))
    strings = Signature((ColSpec("string", "x1"), *(ColSpec("double", c) for c in FEATURES[1:])))
    floats = Signature(tuple(ColSpec("float", c) for c in FEATURES))  # takes the champion's doubles
    gate = Gate(dataset="datasets:/holdout", rules=(GateRule("signature"),))
    needs_more = judge(gate, register(frame(500, seed=2), signature=wider), champion)
    assert not needs_more.passed and "requires x9, which the champion did not take" in needs_more.reason
    other_type = judge(gate, register(frame(500, seed=2), signature=strings), champion)
    assert "column 'x1' is string in the candidate, double in the champion" in other_type.reason
    assert judge(gate, register(frame(500, seed=2), signature=floats), champion).passed
    unsigned = judge(gate, register(frame(500, seed=2), example=False), champion)
    assert unsigned.passed and "the candidate has no input signature" in unsigned.rules[0].why


def test_failing_validation_and_a_model_that_cannot_score_fail_their_rules(embedded: Path) -> None:
    champion = register(frame(500, seed=2))
    candidate = register(frame(500, seed=5), signature=Signature((ColSpec("double", "x9"),)))
    Suite("strict", [expect.between("x1", -1, 1)]).to_yaml(embedded / "strict.yaml")
    gate = Gate(
        dataset="datasets:/holdout",
        rules=(AUC, GateRule("validation", suite=str(embedded / "strict.yaml"))),
    )
    verdict = judge(gate, candidate, champion)
    auc, validation = verdict.rules
    assert (
        not auc.passed and "the candidate failed to predict the held-out rows" in auc.why and "x9" in auc.why
    )
    assert not validation.passed and validation.numbers["failed"] == 1 and "'strict' failed" in validation.why


def test_held_out_data_is_found_through_the_candidates_lineage(embedded: Path) -> None:
    champion = register(frame(500, seed=2))
    gate = Gate(rules=(AUC,))
    with pytest.raises(InvalidInput, match="names no held-out dataset") as e:
        judge(gate, champion, None)
    assert "gate's dataset" in e.value.hint
    model = LogisticRegression().fit(frame(3000, seed=2)[FEATURES], frame(3000, seed=2).label)
    loopline.log_dataset(frame(800, seed=9), name="fresh")  # another dataset, not this run's
    with loopline.start_run(experiment="gates"):
        loopline.log_dataset(frame(900, seed=8), name="train-set", context="training")
        loopline.log_dataset(frame(900, seed=8), name="eval-set", context="eval")
        info = log_model(model, input_example=frame(3, seed=1)[FEATURES], registered_model_name="churn")
    loopline.log_dataset(frame(1000, seed=7), name="eval-set")  # a newer version: the one judged on
    verdict = judge(gate, f"models:/churn/{info.registered_model_version}", champion)
    assert verdict.dataset == "datasets:/eval-set/2" and verdict.passed


def test_an_unknown_metric_or_target_is_refused_before_judging(embedded: Path) -> None:
    candidate = register(frame(500, seed=2))
    with pytest.raises(InvalidInput, match="cannot judge the metric 'auc'"):
        judge(Gate(dataset="datasets:/holdout", rules=(GateRule("metric", metric="auc"),)), candidate, None)
    with pytest.raises(InvalidInput, match="no target column 'churned'"):
        judge(Gate(dataset="datasets:/holdout", target="churned", rules=(AUC,)), candidate, None)
    assert GATE_TAG not in tags(candidate)


def test_through_a_real_server_with_only_its_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LOOPLINE_TRACKING_URI", "LOOPLINE_ARTIFACTS_URI", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    with serve_loopline(tmp_path / "server", check_log=True) as url:
        loopline.set_tracking_uri(url)
        try:
            loopline.log_dataset(frame(1000, seed=3), name="holdout")
            champion = register(frame(60, seed=1, flip=0.3))
            candidate = register(frame(3000, seed=2))
            gate = Gate(dataset="datasets:/holdout", rules=(AUC, GateRule("signature")))
            verdict: Verdict = judge(gate, candidate, champion)
            assert verdict.passed, verdict.reason
            assert verdict.dataset == "datasets:/holdout/1"
            fresh: Any = RegistryClient(loopline.Client(loopline.Settings.from_env({}, tracking_uri=url)))
            assert fresh.get_model_version("churn", 2).tags[GATE_TAG] == "passed"
        finally:
            while loopline.active_run():
                loopline.end_run()
