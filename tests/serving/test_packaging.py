"""``loopline deploy build`` and ``deploy set``: the files parse, with the right image, ports and probes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from loopline.cli.main import app
from loopline.errors import InvalidInput
from loopline.registry.models import digests_of
from loopline.serving.packaging import build_bundle
from serving.helpers import Registry


def test_deploy_build_writes_a_runnable_bundle(registry: Registry, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    result = CliRunner().invoke(
        app,
        [
            "deploy",
            "build",
            "models:/churn@champion",
            "-o",
            str(out),
            "--image",
            "reg.example/churn:1",
            "--port",
            "9000",
            "--tracking-uri",
            registry.tracking_uri,
        ],
        env={"LOOPLINE_ARTIFACTS_URI": registry.artifacts_uri},
    )
    assert result.exit_code == 0, result.output
    assert "reg.example/churn:1" in result.output
    bundle = json.loads((out / "bundle.json").read_text())
    assert bundle["model_uri"] == "models:/churn/1" and bundle["version"] == "1"

    dockerfile = (out / "Dockerfile").read_text()
    assert "EXPOSE 9000" in dockerfile and '"/opt/model"' in dockerfile and '"--name", "churn"' in dockerfile
    lock = (out / "requirements.lock").read_text().splitlines()
    names = {line.split("==")[0].lower() for line in lock if "==" in line}
    assert {"loopline", "scikit-learn", "numpy", "uvicorn", "prometheus_client", "pyarrow"} <= {
        n.replace("-", "_") for n in names
    } | names
    assert all("==" in line for line in lock if not line.startswith("#"))
    assert "MLmodel" in digests_of(out / "model")

    dep = yaml.safe_load((out / "k8s/deployment.yaml").read_text())
    assert dep["kind"] == "Deployment" and dep["apiVersion"] == "apps/v1"
    [container] = dep["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "reg.example/churn:1"
    assert container["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert (
        dep["spec"]["selector"]["matchLabels"].items()
        <= dep["spec"]["template"]["metadata"]["labels"].items()
    )

    svc = yaml.safe_load((out / "k8s/service.yaml").read_text())
    assert svc["kind"] == "Service" and svc["spec"]["ports"][0]["targetPort"] == "http"
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]

    hpa = yaml.safe_load((out / "k8s/hpa.yaml").read_text())
    assert (
        hpa["apiVersion"] == "autoscaling/v2"
        and hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    )
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]

    isvc = yaml.safe_load((out / "kserve/inferenceservice.yaml").read_text())
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1" and isvc["kind"] == "InferenceService"
    [kc] = isvc["spec"]["predictor"]["containers"]
    assert kc["name"] == "kserve-container" and kc["image"] == "reg.example/churn:1"
    assert (
        kc["ports"][0]["containerPort"] == 9000
        and kc["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    )


def test_deploy_build_refuses_a_non_empty_folder_and_an_unregistered_model(
    registry: Registry, tmp_path: Path
) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("")
    with pytest.raises(InvalidInput, match="not empty"):
        build_bundle("models:/churn/1", tmp_path / "x", client=registry.client())
    with pytest.raises(InvalidInput, match="registered model"):
        build_bundle(str(tmp_path), tmp_path / "y", client=registry.client())


def test_deploy_set_show_list(registry: Registry) -> None:
    runner = CliRunner()
    env = {"LOOPLINE_TRACKING_URI": registry.tracking_uri, "LOOPLINE_ARTIFACTS_URI": registry.artifacts_uri}
    r = runner.invoke(
        app,
        [
            "deploy",
            "set",
            "canary",
            "-r",
            "models:/churn@champion=90",
            "-r",
            "models:/churn/2=10",
            "--shadow",
            "models:/churn/3",
        ],
        env=env,
    )
    assert r.exit_code == 0, r.output
    assert "models:/churn@champion  90%" in r.output and "shadow" in r.output
    assert "canary" in runner.invoke(app, ["deploy", "list"], env=env).output
    assert "models:/churn/2  10%" in runner.invoke(app, ["deploy", "show", "canary"], env=env).output
