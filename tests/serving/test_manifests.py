"""``loopline deploy build`` writes files a cluster accepts, checked offline as the cluster would:

* the Deployment, Service and HPA against Kubernetes' own schemas (``kubernetes-validate``, strict:
  an unknown field is an error, as ``kubectl apply``'s default field validation makes it);
* the InferenceService against KServe's CRD (``tests/data/kserve``, v0.20.0), strict too;
* Knative's rules for the user container (KServe's serverless mode), from knative/serving's
  ``k8s_validation.go`` and ``fieldmask.go`` with the default feature flags;
* the "restricted" Pod Security Standard;
* object names and label values by Kubernetes' rules, distinct per model and version, however long
  or odd the model's name;
* the image's Loopline: a wheel in the bundle that installs offline, and a server that writes only
  where the pod has writable volumes.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import lzma
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import kubernetes_validate
import pytest
import yaml
from hypothesis import given, strategies as st
from support import free_port, wait_http

from loopline.registry.models import digests_of
from loopline.serving.k8s_names import dns_label, label_value
from loopline.serving.packaging import APP_NAME_MAX, build_bundle
from loopline.serving.wheel import write_wheel
from serving.helpers import Registry, make_registry

DATA = Path(__file__).resolve().parents[1] / "data" / "kserve"
CRD_SHA256 = "57c3bf13f77de94678bf2ae3748056ec071ad2b9e88d6a28f44fb4710758fcff"  # README.md there
KUBERNETES = ("1.28.0", kubernetes_validate.utils.latest_version())  # the oldest and newest checked

# A registered model name as people write them: spaces, punctuation, non-ASCII, far over 63 characters.
LONG = "Customer churn model (EU) — gradient boosted, retrained weekly on the full transaction history"
LONG_TOO = LONG + " (shadow)"  # the same first 90 characters

# Kubernetes' own rules (k8s.io/apimachinery/pkg/util/validation).
DNS_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
LABEL_KEY = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[tuple[str, int], Path]]:
    """Bundles of churn v1, of two versions of a model with a long name, and of a second long name."""
    from sklearn.linear_model import LogisticRegression

    from loopline.registry import log_model

    home = tmp_path_factory.mktemp("manifests")
    reg: Registry = make_registry(home / "registry", versions=2)
    client = reg.client()
    y = (reg.X.f0 > 0).astype(int)
    for name, versions in ((LONG, 2), (LONG_TOO, 1)):
        for _ in range(versions):
            run = client.create_run(client.set_experiment("long").experiment_id)
            log_model(
                LogisticRegression().fit(reg.X, y),
                "model",
                input_example=reg.X[:2],
                registered_model_name=name,
                run_id=run.info.run_id,
                client=client,
            )
    out = {}
    for name, version in (("churn", 1), (LONG, 1), (LONG, 2), (LONG_TOO, 1)):
        folder = home / f"bundle-{len(out)}"
        build_bundle(f"models:/{name}/{version}", folder, client=client)
        out[(name, version)] = folder
    client.close()
    yield out


def _docs(folder: Path) -> dict[str, dict[str, Any]]:
    return {
        rel: yaml.safe_load((folder / rel).read_text())
        for rel in ("k8s/deployment.yaml", "k8s/service.yaml", "k8s/hpa.yaml", "kserve/inferenceservice.yaml")
    }


# ---- Kubernetes' schemas ------------------------------------------------------------------------


def test_core_objects_pass_kubernetes_schemas_strictly(bundles: dict[tuple[str, int], Path]) -> None:
    for folder in bundles.values():
        for rel, doc in _docs(folder).items():
            if rel.startswith("k8s/"):
                for version in KUBERNETES:
                    kubernetes_validate.validate(doc, version, strict=True)


def test_the_schema_check_catches_a_wrong_field(bundles: dict[tuple[str, int], Path]) -> None:
    dep = _docs(bundles[("churn", 1)])["k8s/deployment.yaml"]
    dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8080"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, KUBERNETES[-1], strict=True)
    dep = _docs(bundles[("churn", 1)])["k8s/deployment.yaml"]
    dep["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonroot"] = True  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, KUBERNETES[-1], strict=True)


# ---- KServe's CRD -------------------------------------------------------------------------------


def _strict(schema: Any) -> Any:
    """The CRD's schema with unknown fields refused (``kubectl apply``'s default), not pruned."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        k: _strict(v)
        if k in ("properties", "items", "additionalProperties", "anyOf", "allOf")
        or isinstance(v, dict | list)
        else v
        for k, v in schema.items()
    }
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@pytest.fixture(scope="module")
def isvc_validator() -> jsonschema.Draft4Validator:
    raw = lzma.decompress((DATA / "serving.kserve.io_inferenceservices.yaml.xz").read_bytes())
    assert hashlib.sha256(raw).hexdigest() == CRD_SHA256, "the CRD copy is not the one README.md names"
    crd = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # 2 MB: libyaml is 10x faster
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    return jsonschema.Draft4Validator(_strict(version["schema"]["openAPIV3Schema"]))


def test_inference_service_passes_kserves_crd(
    bundles: dict[tuple[str, int], Path], isvc_validator: jsonschema.Draft4Validator
) -> None:
    for folder in bundles.values():
        isvc = _docs(folder)["kserve/inferenceservice.yaml"]
        assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in isvc_validator.iter_errors(isvc)]
        assert errors == []
    bad = _docs(bundles[("churn", 1)])["kserve/inferenceservice.yaml"]
    bad["spec"]["predictor"]["containers"][0]["port"] = 8080  # not a container field
    assert list(isvc_validator.iter_errors(bad))


# ---- Knative's rules for the user container ----------------------------------------------------

_KNATIVE_RESERVED_PORTS = {8012, 8013, 8022, 8008, 9090, 9091}
_KNATIVE_CONTAINER_FIELDS = {
    "name", "args", "command", "env", "workingDir", "envFrom", "image", "imagePullPolicy", "livenessProbe",
    "ports", "readinessProbe", "resources", "securityContext", "startupProbe", "terminationMessagePath",
    "terminationMessagePolicy", "volumeMounts",
}  # fmt: skip
_KNATIVE_SECURITY_FIELDS = {
    "capabilities", "readOnlyRootFilesystem", "runAsUser", "runAsGroup", "runAsNonRoot",
    "allowPrivilegeEscalation", "seccompProfile", "privileged",
}  # fmt: skip
_KNATIVE_VOLUME_SOURCES = {"secret", "configMap", "projected", "emptyDir"}


def knative_violations(isvc: dict[str, Any]) -> list[str]:
    """What Knative's webhook (default features) refuses in an InferenceService's predictor."""
    found = []
    name = isvc["metadata"]["name"]
    revision = f"{name}-predictor-00001"  # also a label value Knative sets on the pods
    if not DNS_1035.fullmatch(name) or len(revision) > 63:
        found.append(f"name {name!r}: its revision {revision!r} is not a valid name and label value")
    predictor = isvc["spec"]["predictor"]
    if "securityContext" in predictor:
        found.append("a pod-level securityContext (feature kubernetes.podspec-securitycontext is off)")
    for v in predictor.get("volumes", []):
        if set(v) - {"name"} - _KNATIVE_VOLUME_SOURCES:
            found.append(f"volume {v['name']}: source not allowed")
    serving = [c for c in predictor["containers"] if c.get("ports")]
    if len(serving) != 1:
        found.append("exactly one container must have a port")
    for c in predictor["containers"]:
        found += [f"container field {k}" for k in set(c) - _KNATIVE_CONTAINER_FIELDS]
        sc = c.get("securityContext", {})
        found += [f"securityContext field {k}" for k in set(sc) - _KNATIVE_SECURITY_FIELDS]
        if sc.get("capabilities", {}).get("add"):
            found.append("capabilities.add (feature kubernetes.containerspec-addcapabilities is off)")
        for m in c.get("volumeMounts", []):
            found += [f"volumeMount field {k}" for k in set(m) - {"name", "readOnly", "mountPath", "subPath"}]
    for c in serving:
        if len(c["ports"]) != 1:
            found.append("more than one container port")
        port = c["ports"][0]
        if port.get("name", "") not in ("", "http1", "h2c"):
            found.append(f"port name {port['name']!r}: must be empty, 'http1' or 'h2c'")
        if port.get("protocol", "TCP") != "TCP" or port["containerPort"] in _KNATIVE_RESERVED_PORTS:
            found.append(f"port {port}")
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            handler = c.get(probe, {}).get("httpGet", {})
            if isinstance(handler.get("port"), str) and handler["port"] != port.get("name", ""):
                found.append(f"{probe} port {handler['port']!r} is not the container port's name")
    return found


def test_inference_service_follows_knatives_rules(bundles: dict[tuple[str, int], Path]) -> None:
    for folder in bundles.values():
        isvc = _docs(folder)["kserve/inferenceservice.yaml"]
        assert knative_violations(isvc) == []
        assert isvc["spec"]["predictor"]["containers"][0]["ports"][0]["name"] == "http1"
    # The rules bite: the port name every Kubernetes object uses is refused by Knative.
    isvc = _docs(bundles[("churn", 1)])["kserve/inferenceservice.yaml"]
    isvc["spec"]["predictor"]["containers"][0]["ports"][0]["name"] = "http"
    assert any("port name 'http'" in v for v in knative_violations(isvc))
    assert any("readinessProbe port" in v for v in knative_violations(isvc))


# ---- the "restricted" Pod Security Standard ----------------------------------------------------

_RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected",
    "secret",
}  # fmt: skip


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What the "restricted" profile (with "baseline") refuses in a pod spec
    (https://kubernetes.io/docs/concepts/security/pod-security-standards/)."""
    found = []
    psc = pod.get("securityContext", {})
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(host):
            found.append(host)
    for v in pod.get("volumes", []):
        if set(v) - {"name"} - _RESTRICTED_VOLUMES:
            found.append(f"volume {v['name']}: type not allowed")
    for c in pod.get("containers", []) + pod.get("initContainers", []):
        sc = c.get("securityContext", {})
        who = f"container {c['name']}"
        if sc.get("privileged"):
            found.append(f"{who}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(f"{who}: allowPrivilegeEscalation must be false")
        if not (
            sc.get("runAsNonRoot") is True or (psc.get("runAsNonRoot") is True and "runAsNonRoot" not in sc)
        ):
            found.append(f"{who}: runAsNonRoot must be true")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            found.append(f"{who}: runAsUser 0")
        seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{who}: seccompProfile must be RuntimeDefault or Localhost")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            found.append(f"{who}: capabilities must drop ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{who}: capabilities.add beyond NET_BIND_SERVICE")
        if any(p.get("hostPort") for p in c.get("ports", [])):
            found.append(f"{who}: hostPort")
    return found


def test_pods_meet_the_restricted_pod_security_standard(bundles: dict[tuple[str, int], Path]) -> None:
    for folder in bundles.values():
        docs = _docs(folder)
        pod = docs["k8s/deployment.yaml"]["spec"]["template"]["spec"]
        predictor = docs["kserve/inferenceservice.yaml"]["spec"]["predictor"]
        assert restricted_violations(pod) == []
        assert restricted_violations(predictor) == []
        for c in (*pod["containers"], *predictor["containers"]):
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            # ...with a writable place wherever the server writes (the Dockerfile's state folder, /tmp)
            mounts = {m["mountPath"] for m in c["volumeMounts"]}
            assert mounts == {"/srv/state", "/tmp"}
        dockerfile = (folder / "Dockerfile").read_text()
        uid = pod["containers"][0]["securityContext"]["runAsUser"]
        assert f"USER {uid}" in dockerfile and "sqlite:////srv/state/" in dockerfile
    # The check bites: the container as it was before (no securityContext) fails four rules.
    bare = {"containers": [{"name": "server", "image": "x"}]}
    assert len(restricted_violations(bare)) == 4


# ---- names and label values ---------------------------------------------------------------------


def _labels(doc: dict[str, Any]) -> Iterator[dict[str, str]]:
    yield doc["metadata"].get("labels", {})
    spec = doc["spec"]
    yield spec.get("selector", {}).get("matchLabels", {}) if doc["kind"] == "Deployment" else {}
    yield spec.get("selector", {}) if doc["kind"] == "Service" else {}
    yield spec.get("template", {}).get("metadata", {}).get("labels", {})


def test_names_and_labels_are_valid_and_keep_the_version(bundles: dict[tuple[str, int], Path]) -> None:
    apps = {}
    for (model, version), folder in bundles.items():
        docs = _docs(folder)
        names = {doc["metadata"]["name"] for doc in docs.values()}
        [app] = names  # one name for the four objects
        assert DNS_1035.fullmatch(app) and len(app) <= APP_NAME_MAX and app.endswith(f"-v{version}")
        for doc in docs.values():
            for labels in _labels(doc):
                for key, value in labels.items():
                    assert LABEL_KEY.fullmatch(key) and LABEL_VALUE.fullmatch(value), (key, value)
            assert doc["metadata"].get("annotations", {}).get("loopline.dev/model-uri", "") in (
                "",
                f"models:/{model}/{version}",
            )
        labels = docs["k8s/deployment.yaml"]["metadata"]["labels"]
        apps[(model, version)] = (app, labels["loopline.dev/model"], labels["loopline.dev/version"])
        bundle = json.loads((folder / "bundle.json").read_text())
        assert bundle["app"] == app and bundle["name"] == model
        assert f'"--name", {json.dumps(model)}' in (folder / "Dockerfile").read_text()
    assert apps[("churn", 1)] == ("churn-v1", "churn", "1")  # a name that is valid stays as it is
    # Versions of one model never collide, nor do two names that share their first 90 characters.
    assert len({app for app, _, _ in apps.values()}) == len(apps)
    assert apps[(LONG, 1)][1] == apps[(LONG, 2)][1] != apps[(LONG_TOO, 1)][1]
    assert apps[(LONG, 1)][0].removesuffix("-v1") == apps[(LONG, 2)][0].removesuffix("-v2")


@given(st.text(max_size=300), st.integers(min_value=1, max_value=10**9))
def test_any_text_makes_a_valid_name_and_label_value(text: str, version: int) -> None:
    name = dns_label(text)
    assert DNS_1035.fullmatch(name) and len(name) <= 63
    app = dns_label(text, suffix=f"-v{version}", limit=APP_NAME_MAX)
    assert DNS_1035.fullmatch(app) and len(app) <= APP_NAME_MAX and app.endswith(f"-v{version}")
    value = label_value(text)
    assert LABEL_VALUE.fullmatch(value) and len(value) <= 63
    if DNS_1035.fullmatch(text) and len(text) <= 63:
        assert name == text
    if LABEL_VALUE.fullmatch(text) and len(text) <= 63:
        assert value == text


@given(st.lists(st.text(max_size=100), min_size=2, max_size=8, unique=True))
def test_distinct_texts_make_distinct_names(texts: list[str]) -> None:
    variants = [t for base in texts for t in (base, base.upper(), base + " ", base.replace("-", " "))]
    variants = list(dict.fromkeys(variants))
    assert len({dns_label(t) for t in variants}) == len(variants)
    assert len({label_value(t) for t in variants}) == len(variants)


# ---- the image's Loopline -----------------------------------------------------------------------


def test_the_bundle_carries_an_installable_loopline_wheel(
    bundles: dict[tuple[str, int], Path], tmp_path: Path
) -> None:
    import loopline

    folder = bundles[("churn", 1)]
    [wheel] = (folder / "wheels").glob("*.whl")
    assert wheel.name == f"loopline-{loopline.__version__}-py3-none-any.whl"
    assert f"pip install --no-deps /srv/wheels/{wheel.name}" in (folder / "Dockerfile").read_text()
    lock = (folder / "requirements.lock").read_text()
    assert f"loopline=={loopline.__version__}" in lock.lower()

    with zipfile.ZipFile(wheel) as zf:
        record = zf.read(f"loopline-{loopline.__version__}.dist-info/RECORD").decode()
        rows = list(csv.reader(io.StringIO(record)))
        for path, digest, size in rows:
            if path.endswith("/RECORD"):
                continue
            data = zf.read(path)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == (f"sha256={expected}", len(data)), path
        names = set(zf.namelist())
    source = Path(loopline.__file__).parent
    packed = {n.removeprefix("loopline/") for n in names if n.startswith("loopline/")}
    assert {p.relative_to(source).as_posix() for p in source.rglob("*.py")} <= packed
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    # One source tree, one wheel: building again gives the same bytes.
    (tmp_path / "again").mkdir()
    assert write_wheel(tmp_path / "again").read_bytes() == wheel.read_bytes()

    # pip installs it without an index, with the `loopline` command, and it imports from there alone.
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target", target, wheel],
        check=True,
        capture_output=True,
    )
    assert (target / "bin" / "loopline").exists()
    out = subprocess.run(
        [sys.executable, "-S", "-c", "import loopline; print(loopline.__file__, loopline.__version__)"],
        env={"PYTHONPATH": str(target), "PATH": os.environ["PATH"]},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert out == [str(target / "loopline" / "__init__.py"), loopline.__version__]


def test_cli_prints_the_wheel_and_how_to_rebuild_it(bundles: dict[tuple[str, int], Path]) -> None:
    from importlib.metadata import distribution

    folder = bundles[("churn", 1)].parent / "cli-bundle"
    registry = bundles[("churn", 1)].parent / "registry"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))}
    env["LOOPLINE_ARTIFACTS_URI"] = str(registry / "artifacts")
    r = subprocess.run(
        [sys.executable, "-m", "loopline.cli", "deploy", "build", "models:/churn@champion", "-o", folder,
         "--tracking-uri", f"sqlite:///{registry / 'db.sqlite'}"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "wheels/loopline-" in r.stdout and "the image installs it" in r.stdout
    assert "objects churn-v1" in r.stdout
    direct = json.loads(distribution("loopline").read_text("direct_url.json") or "{}")
    if direct.get("url", "").startswith("file://"):  # installed from a checkout: how to build from it
        assert f"pip wheel --no-deps {direct['url'].removeprefix('file://')} -w {folder}/wheels" in r.stdout


def test_the_server_writes_only_to_the_pods_writable_volumes(
    bundles: dict[tuple[str, int], Path], tmp_path: Path
) -> None:
    """The container's command, run here with the image's environment: it serves, and it writes
    nothing outside its state folder and /tmp (the root filesystem is read-only in the pod)."""
    folder = bundles[("churn", 1)]
    cmd = json.loads((folder / "Dockerfile").read_text().split("\nCMD ", 1)[1])
    model_files = digests_of(folder / "model")
    state, tmp, cwd = tmp_path / "state", tmp_path / "tmp", tmp_path / "cwd"
    for d in (state, tmp, cwd):
        d.mkdir()
    port = free_port()
    argv = [a.replace("/opt/model", str(folder / "model")) for a in cmd[1:]]
    argv[argv.index("--port") + 1] = str(port)
    argv[argv.index("--host") + 1] = "127.0.0.1"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPLINE_", "MLFLOW_"))}
    env |= {
        "HOME": str(tmp),
        "TMPDIR": str(tmp),
        "LOOPLINE_TRACKING_URI": f"sqlite:///{state / 'loopline.db'}",
        "LOOPLINE_ARTIFACTS_URI": str(state / "artifacts"),
        "LOOPLINE_SERVE_INFERENCE_LOG": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopline.cli", *argv], cwd=cwd, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/health/ready", proc, timeout=60)
        row = {f"f{i}": 0.1 * i for i in range(20)}
        r = httpx.post(f"http://127.0.0.1:{port}/invocations", json={"dataframe_records": [row]}, timeout=30)
        assert r.status_code == 200, r.text
    finally:
        proc.terminate()
        proc.wait(30)
    assert digests_of(folder / "model") == model_files
    assert list(cwd.iterdir()) == []
    assert (state / "loopline.db").exists()
