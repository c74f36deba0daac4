"""``why``: from a request id in the inference log to the deployment revision, model version, run,
data, code and loop events behind it — embedded, through a real server, and from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import run_cli, serve_loopline

from automation.why_data import COMMIT, REQUEST, serve_one_request
from loopline.automation.why import Explanation, explain
from loopline.config import Settings
from loopline.context import Context
from loopline.errors import InvalidInput, NotFound


def test_the_explanation_of_a_request(tmp_path: Path) -> None:
    served = serve_one_request(tmp_path)
    x = explain(Context(served.settings), REQUEST)

    s = x.served
    assert (s.request_id, s.deployment, s.model_uri, s.role, s.status) == (
        REQUEST,
        "churn-prod",
        "models:/churn/1",
        "primary",
        200,
    )
    assert s.time_ms == served.time_ms and s.outputs == [1]
    assert s.inputs == {"columns": ["tenure", "plan"], "data": [[3, "basic"]]}
    assert x.shadows == ("models:/churn/2",)

    # The revision in force when it was served (the first), not the canary written after it.
    d = x.deployment
    assert d is not None
    assert (d.revision, d.comment, d.actor) == (1, "first", "alice")
    assert d.routes == {"models:/churn@champion": 100}
    assert d.resolved == {"models:/churn@champion": "models:/churn/1"}
    assert d.route == "models:/churn@champion"

    assert x.version is not None and x.version.run_id == served.run_id
    assert x.version.aliases == ("champion",)
    r = x.run
    assert r is not None
    assert (r.run_name, r.status, r.code_commit, r.code_dirty) == ("train-churn", "FINISHED", COMMIT, False)
    assert r.params == {"C": "0.5", "max_iter": "200"} and r.metrics == {"roc_auc": 0.91}
    assert r.tags == {"team": "retention"}
    assert [(u.name, u.digest, u.context) for u in r.datasets] == [("churn-train", "d1g35t", "training")]

    assert x.upstream.datasets == ("datasets:/churn-train/d1g35t",)
    assert x.upstream.code == (f"code:/{COMMIT}",)
    assert x.upstream.runs == (f"runs:/{served.run_id}",)

    assert x.gate is not None and x.gate_passed is True
    assert x.gate.object_uri == "rollouts:/1" and x.gate.payload["rules"][0]["why"] == "roc_auc 0.91 vs 0.90"
    assert [e.action for e in x.rollout] == [
        "loop.retrain_finish",
        "loop.gate",
        "loop.rollout_step",
        "loop.promote",
    ]
    assert x.notes == ()

    assert Explanation.from_json(json.loads(json.dumps(x.to_json()))) == x


def test_what_cannot_be_found_is_said(tmp_path: Path) -> None:
    served = serve_one_request(tmp_path)
    ctx = Context(served.settings)
    with pytest.raises(NotFound, match="No request req-9999 in the inference log") as e:
        explain(ctx, "req-9999")
    assert "X-Request-Id" in e.value.hint
    with pytest.raises(InvalidInput, match="Invalid request id"):
        explain(ctx, "no spaces/or slashes")
    # The shadow's version 2 has no run and was never gated: a request it answered says so.
    from loopline.serving.inference_log import InferenceLog, Prediction

    log = InferenceLog(ctx.artifacts)
    log.log_prediction(Prediction("req-2", served.time_ms, "", "churn", "2", "primary", 1, {}, [0], 1.0, 200))
    log.flush()
    x = explain(ctx, "req-2")
    assert x.deployment is None and x.run is None and x.gate is None and x.rollout == ()
    assert any("registered without a run" in n for n in x.notes)
    assert any("No loop.gate event judged models:/churn/2" in n for n in x.notes)


def test_through_a_server_and_the_cli(tmp_path: Path) -> None:
    served = serve_one_request(tmp_path)
    expected = explain(Context(served.settings), REQUEST).to_json()
    store, artifacts = served.settings.tracking_uri, served.settings.artifacts_uri
    with serve_loopline(tmp_path / "server", store=store, artifacts=artifacts) as url:
        remote = Context(Settings.from_env({}, tracking_uri=url))
        try:
            assert explain(remote, REQUEST).to_json() == expected
            with pytest.raises(NotFound, match="No request req-9999"):
                explain(remote, "req-9999")
        finally:
            remote.http.close()
        done = run_cli(url, tmp_path, "why", REQUEST, "--format", "json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == expected
        tree = run_cli(url, tmp_path, "why", REQUEST)
        assert tree.returncode == 0, tree.stderr
        for line in (
            f"request {REQUEST}",
            "answered by models:/churn/1 (primary, 1 rows)",
            "shadowed by models:/churn/2",
            "deployment deployments:/churn-prod revision 1 (by alice",
            "route models:/churn@champion → models:/churn/1 weight 100 ← this request",
            f"code commit {COMMIT}",
            "params: C=0.5, max_iter=200",
            "data datasets:/churn-train/d1g35t",
            "gate passed",
            "metric passed: roc_auc 0.91 vs 0.90",
            "loop.promote",
        ):
            assert line in tree.stdout, (line, tree.stdout)
        missing = run_cli(url, tmp_path, "why", "req-9999")
        assert missing.returncode == 2
        assert "No request req-9999 in the inference log" in missing.stderr
        assert "X-Request-Id" in missing.stderr  # the hint, which the server's answer carries along
