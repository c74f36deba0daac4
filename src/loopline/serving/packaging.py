"""``loopline deploy build``: a folder from which a model runs in a cluster.

    <out>/
      Dockerfile              python:<major.minor>-slim, non-root, `loopline serve /opt/model`
      requirements.lock       every package the server and the model need, pinned (from this env)
      model/                  the model's files, downloaded and checked against the registry's digests
      wheels/                 the installed Loopline as a wheel (no package index needs to have it)
      k8s/deployment.yaml     Deployment with readiness/liveness/startup probes on the OIP health routes
      k8s/service.yaml        ClusterIP Service, port 80 -> the container's port
      k8s/hpa.yaml            HorizontalPodAutoscaler (autoscaling/v2) on CPU
      kserve/inferenceservice.yaml   KServe InferenceService running the same image
      bundle.json             what was built: model URI, version, image, files

The model is baked into the image (``/opt/model``): a pod needs no access to the registry, and the
image is the unit a rollout moves. The server reports the registered name and version
(``--name``/``--model-version``), so responses and metrics still name ``churn``/``3``.

What a cluster checks, the files meet: object names are DNS labels that keep the version
(``churn-v3``; a long or unusual model name is cut and hashed by ``k8s_names``), label values are
valid, the pod passes the "restricted" Pod Security Standard (non-root, no privilege escalation,
no capabilities, the runtime's seccomp profile, a read-only root filesystem with ``emptyDir``
volumes where the server writes), and the InferenceService follows Knative's rules for the user
container (one port, named ``http1``; probes on that port; no pod-level security context).
"""

from __future__ import annotations

import copy
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loopline._version import __version__
from loopline.errors import InvalidInput
from loopline.serving.k8s_names import dns_label, label_value
from loopline.serving.wheel import wheel_step, write_wheel

# What `loopline serve` itself needs in the container, beyond the model's own requirements.
SERVER_PACKAGES = ("loopline", "uvicorn", "uvloop", "httptools", "prometheus-client", "pyarrow", "pandas")
MODEL_DIR = "/opt/model"
STATE_DIR = "/srv/state"
UID = 10001  # the image's user; runAsNonRoot needs a numeric one to check
# 63 minus the "-predictor-00001" KServe and Knative append for the revision, itself a label value.
APP_NAME_MAX = 47


@dataclass(frozen=True)
class Bundle:
    model_uri: str
    name: str
    version: str
    image: str
    port: int
    app: str  # the Kubernetes objects' name
    files: list[str] = field(default_factory=list)
    wheel_step: str = ""  # the command that rebuilds wheels/ from source, if Loopline was installed from one


def _requirement_name(line: str) -> str | None:
    line = line.split("#", 1)[0].strip()
    if not line or line.startswith("-"):
        return None
    m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)", line)
    return m.group(1) if m else None


def lock(packages: Iterable[str]) -> list[str]:
    """``name==version`` for ``packages`` and everything they require, as installed here.

    Only requirements that apply on Linux with this Python and without extras are followed, so the
    lock is what ``pip install`` would bring in inside the image, pinned to what was tested here.
    """
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    env: dict[str, str] = {str(k): str(v) for k, v in default_environment().items()}
    env.update(sys_platform="linux", platform_system="Linux", extra="")
    pinned: dict[str, str] = {}
    todo = [Requirement(p) for p in packages]
    while todo:
        req = todo.pop()
        key = canonicalize_name(req.name)
        if key in pinned:
            continue
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            continue  # optional for this model (e.g. uvloop on a platform without it)
        pinned[key] = f"{dist.metadata['Name']}=={dist.version}"
        for raw in dist.requires or []:
            sub = Requirement(raw)
            if sub.marker is None or sub.marker.evaluate(env):
                todo.append(sub)
    return [pinned[k] for k in sorted(pinned)]


def _dockerfile(port: int, workers: int, name: str, version: str, wheel: str) -> str:
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    cmd = ["loopline", "serve", MODEL_DIR, "--host", "0.0.0.0", "--port", str(port)]
    cmd += ["--workers", str(workers), "--name", name, "--model-version", version, "--poll-interval", "0"]
    return f"""# Built by `loopline deploy build` (loopline {__version__}).
FROM python:{py}-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv
COPY requirements.lock /srv/requirements.lock
COPY wheels/ /srv/wheels/
# Loopline first, from its wheel, so the lock's `loopline=={__version__}` never goes to a package index.
RUN pip install --no-deps /srv/wheels/{wheel} \\
 && pip install --find-links /srv/wheels -r /srv/requirements.lock
COPY model/ {MODEL_DIR}/
RUN useradd --system --uid {UID} loopline && mkdir -p {STATE_DIR} && chown {UID} {STATE_DIR}
USER {UID}
# The server writes only to {STATE_DIR} (inference log, metrics) and /tmp: in Kubernetes both are
# emptyDir volumes on a read-only root filesystem. Point LOOPLINE_ARTIFACTS_URI at s3://… to keep the log.
ENV HOME=/tmp LOOPLINE_TRACKING_URI=sqlite:///{STATE_DIR}/loopline.db \\
    LOOPLINE_ARTIFACTS_URI={STATE_DIR}/artifacts
EXPOSE {port}
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/v2/health/ready')"
CMD {json.dumps(cmd)}
"""


def _probe(path: str, port: str, **extra: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": 10, "timeoutSeconds": 2, **extra}


# The "restricted" Pod Security Standard, set on the container: Knative (KServe's serverless mode)
# refuses a pod-level securityContext unless a cluster operator enables it.
SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": UID,
    "runAsGroup": UID,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
# Where the server writes, on the read-only root filesystem.
_VOLUMES = [("state", STATE_DIR), ("tmp", "/tmp")]


def _container(image: str, port: int, port_name: str) -> dict[str, Any]:
    return {
        "image": image,
        "ports": [{"name": port_name, "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": _probe("/v2/health/ready", port_name, failureThreshold=3),
        "livenessProbe": _probe("/v2/health/live", port_name, failureThreshold=3),
        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
        "env": [{"name": "LOOPLINE_SERVE_INFERENCE_LOG", "value": "1"}],
        "securityContext": copy.deepcopy(SECURITY_CONTEXT),  # no YAML aliases
        "volumeMounts": [{"name": n, "mountPath": path} for n, path in _VOLUMES],
    }


def manifests(
    *, app: str, image: str, port: int, replicas: int, max_replicas: int, name: str, version: str
) -> dict[str, dict[str, Any]]:
    """The Kubernetes and KServe objects for ``app`` (a DNS label, see :func:`app_name`)."""
    labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "loopline"}
    model_labels = {
        **labels,
        "loopline.dev/model": label_value(name),
        "loopline.dev/version": label_value(version),
    }
    # Label values are cut and hashed; the annotation keeps the model's exact name.
    annotations = {"loopline.dev/model-uri": f"models:/{name}/{version}"}
    volumes = [{"name": n, "emptyDir": {}} for n, _ in _VOLUMES]
    container = {
        "name": "server",
        **_container(image, port, "http"),
        # Loading and warming a model can take a while: liveness starts counting after this passes.
        "startupProbe": _probe("/v2/health/live", "http", failureThreshold=30, periodSeconds=2),
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app, "labels": model_labels, "annotations": annotations},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": model_labels,
                    "annotations": {
                        **annotations,
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(port),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    # uvicorn finishes in-flight requests on SIGTERM; give it the time to.
                    "terminationGracePeriodSeconds": 40,
                    "automountServiceAccountToken": False,  # the server never calls the API server
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": app, "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "selector": labels,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": app, "labels": labels},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app},
            "minReplicas": replicas,
            "maxReplicas": max(max_replicas, replicas),
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
        },
    }
    inference_service = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": app,
            "labels": model_labels,
            "annotations": {**annotations, "serving.kserve.io/enable-prometheus-scraping": "true"},
        },
        "spec": {
            "predictor": {
                "minReplicas": replicas,
                "maxReplicas": max(max_replicas, replicas),
                # KServe routes to the container named kserve-container; Knative takes its one port,
                # whose name may only be http1 or h2c, and its probes must name that port.
                "containers": [{"name": "kserve-container", **_container(image, port, "http1")}],
                "volumes": volumes,
            }
        },
    }
    return {
        "k8s/deployment.yaml": deployment,
        "k8s/service.yaml": service,
        "k8s/hpa.yaml": hpa,
        "kserve/inferenceservice.yaml": inference_service,
    }


def app_name(name: str, version: str) -> str:
    """The objects' name: ``<model>-v<version>``, short enough for what KServe and Knative derive
    from it (``<name>-predictor-00001`` is a label value too); the version is never cut off."""
    return dns_label(name, suffix=f"-v{version}", limit=APP_NAME_MAX)


def build_bundle(
    model_uri: str,
    output: Path,
    *,
    image: str | None = None,
    port: int = 8080,
    workers: int = 2,
    replicas: int = 2,
    max_replicas: int = 10,
    client: Any = None,
) -> Bundle:
    """Write the bundle for ``model_uri`` into ``output`` (see the module docstring)."""
    import yaml

    from loopline.registry import RegistryClient
    from loopline.registry.models import fetch, resolve, verify

    output = Path(output)
    if output.exists() and any(output.iterdir()):
        raise InvalidInput(f"{output} is not empty.", hint="Build into a new or empty folder.")
    if not model_uri.startswith("models:/"):
        raise InvalidInput(
            "deploy build takes a registered model: models:/name@alias or models:/name/version."
        )
    rc = client if isinstance(client, RegistryClient) else RegistryClient(client)
    prefix, mv = resolve(model_uri, rc.store, rc.tracking.store)
    if mv is None:
        raise InvalidInput(f"{model_uri} is not a registered model version.")
    name, version = mv.name, str(mv.version)
    image = image or f"loopline-{dns_label(name)}:{version}"
    app = app_name(name, version)
    output.mkdir(parents=True, exist_ok=True)
    known = fetch(rc.tracking.artifacts, prefix, _mkdir(output / "model"))
    verify(output / "model", mv.digests or known)  # the image gets exactly the registered files
    model_reqs = (
        (output / "model" / "requirements.txt").read_text().splitlines()
        if (output / "model" / "requirements.txt").exists()
        else []
    )
    wanted = [*SERVER_PACKAGES, *(n for n in map(_requirement_name, model_reqs) if n)]
    pins = lock(wanted)
    (output / "requirements.lock").write_text(
        f"# Pinned by `loopline deploy build {model_uri}` from the environment it ran in.\n"
        + "\n".join(pins)
        + "\n"
    )
    wheel = write_wheel(_mkdir(output / "wheels"))
    (output / "Dockerfile").write_text(_dockerfile(port, workers, name, version, wheel.name))
    files = ["Dockerfile", "requirements.lock", "model/", f"wheels/{wheel.name}"]
    for rel, doc in manifests(
        app=app,
        image=image,
        port=port,
        replicas=replicas,
        max_replicas=max_replicas,
        name=name,
        version=version,
    ).items():
        path = output / rel
        _mkdir(path.parent)
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        files.append(rel)
    bundle = Bundle(mv.uri, name, version, image, port, app, files, wheel_step(output / "wheels"))
    (output / "bundle.json").write_text(json.dumps(asdict(bundle), indent=2) + "\n")
    bundle.files.append("bundle.json")
    return bundle


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
