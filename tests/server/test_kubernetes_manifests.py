"""deploy/kubernetes: the manifests of ``loopline server`` validate offline against Kubernetes' schemas,
meet the "restricted" Pod Security Standard, and name only flags, settings and probe routes that the
server really has (the probes are called on a real server)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import sqlalchemy as sa
import yaml
from support import serve_loopline

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
K8S_VERSION = "1.30.0"  # oldest release these manifests claim (autoscaling/v2, policy/v1)


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _all_resources() -> list[dict[str, Any]]:
    return _docs(KUBE / "server.yaml") + _docs(KUBE / "dev" / "backends.yaml")


def _pod_specs() -> list[tuple[str, dict[str, Any]]]:
    return [
        (r["metadata"]["name"], r["spec"]["template"]["spec"])
        for r in _all_resources()
        if r["kind"] in ("Deployment", "StatefulSet")
    ]


def _server() -> dict[str, Any]:
    (dep,) = [r for r in _docs(KUBE / "server.yaml") if r["kind"] == "Deployment"]
    return dep


@pytest.mark.parametrize("resource", _all_resources(), ids=lambda r: f"{r['kind']}/{r['metadata']['name']}")
def test_each_resource_validates_against_the_kubernetes_schema(resource: dict[str, Any]) -> None:
    kubernetes_validate.validate(resource, K8S_VERSION, strict=True)


def test_a_typo_in_a_manifest_is_caught() -> None:
    """The check above can fail: a misspelt field is refused in strict mode."""
    broken = _server()
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {"path": "/"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


@pytest.mark.parametrize("name, pod", _pod_specs(), ids=lambda v: v if isinstance(v, str) else "")
def test_pods_meet_the_restricted_pod_security_standard(name: str, pod: dict[str, Any]) -> None:
    assert pod["securityContext"]["runAsNonRoot"] is True, name
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, (name, c["name"])
        assert sc["capabilities"]["drop"] == ["ALL"], (name, c["name"])
        assert not sc.get("privileged"), (name, c["name"])
    assert not pod.get("hostNetwork") and not pod.get("hostPID"), name


def test_the_server_container_names_real_flags_settings_and_secrets() -> None:
    container = _server()["spec"]["template"]["spec"]["containers"][0]
    help_text = subprocess.run(
        [sys.executable, "-m", "loopline.cli", "server", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout
    flags = [a for a in container["args"] if a.startswith("--")]
    assert flags and all(f in help_text for f in flags), flags
    # Every LOOPLINE_* variable is one the server reads.
    from loopline.config import Settings

    settings_vars = {f"LOOPLINE_{name.upper()}" for name in Settings.__dataclass_fields__} | {
        "LOOPLINE_STORE_URI"
    }
    (config,) = [r for r in _docs(KUBE / "server.yaml") if r["kind"] == "ConfigMap"]
    names = set(config["data"]) | {e["name"] for e in container["env"]}
    assert {n for n in names if n.startswith("LOOPLINE_")} <= settings_vars
    # The dev overlay provides every secret key the pods ask for.
    dev = yaml.safe_load((KUBE / "dev" / "kustomization.yaml").read_text())
    provided = {lit.split("=", 1)[0] for lit in dev["secretGenerator"][0]["literals"]}
    wanted = {
        e["valueFrom"]["secretKeyRef"]["key"]
        for _, pod in _pod_specs()
        for c in pod["containers"]
        for e in c.get("env", [])
        if "valueFrom" in e
    }
    assert wanted <= provided, wanted - provided
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    assert all((KUBE / r).is_file() for r in kustomization["resources"])


def test_probes_answer_on_a_real_server_and_readiness_follows_the_database(
    tmp_path: Path, postgres_uri: str
) -> None:
    """/health (liveness) and /ready (readiness) as the manifest calls them; when the database goes
    away, /ready says 503 while /health stays 200, so the pod leaves the Service without restarts."""
    container = _server()["spec"]["template"]["spec"]["containers"][0]
    live, ready = (
        container["livenessProbe"]["httpGet"]["path"],
        container["readinessProbe"]["httpGet"]["path"],
    )
    name = postgres_uri.rsplit("/", 1)[1]
    admin = sa.create_engine(postgres_uri.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    try:
        with serve_loopline(tmp_path, store=postgres_uri) as url:
            assert httpx.get(url + live).status_code == 200
            assert httpx.get(url + ready).json() == {"ready": True}
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            answer = httpx.get(url + ready, timeout=10)
            assert answer.status_code == 503 and answer.json()["ready"] is False
            assert httpx.get(url + live).status_code == 200
    finally:
        admin.dispose()
