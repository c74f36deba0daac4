"""``loopline deploy build``: a folder from which a model runs in a cluster.

    <out>/
      Dockerfile              python:<major.minor>-slim, non-root, `loopline serve /opt/model`
      requirements.lock       every package the server and the model need, pinned (from this env)
      model/                  the model's files, downloaded and checked against the registry's digests
      wheels/                 put a loopline wheel here if loopline is not on your package index
      k8s/deployment.yaml     Deployment with readiness/liveness/startup probes on the OIP health routes
      k8s/service.yaml        ClusterIP Service, port 80 -> the container's port
      k8s/hpa.yaml            HorizontalPodAutoscaler (autoscaling/v2) on CPU
      kserve/inferenceservice.yaml   KServe InferenceService running the same image
      bundle.json             what was built: model URI, version, image, files

The model is baked into the image (``/opt/model``): a pod needs no access to the registry, and the
image is the unit a rollout moves. The server reports the registered name and version
(``--name``/``--model-version``), so responses and metrics still name ``churn``/``3``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loopline._version import __version__
from loopline.errors import InvalidInput

# What `loopline serve` itself needs in the container, beyond the model's own requirements.
SERVER_PACKAGES = ("loopline", "uvicorn", "uvloop", "httptools", "prometheus-client", "pyarrow", "pandas")
MODEL_DIR = "/opt/model"


@dataclass(frozen=True)
class Bundle:
    model_uri: str
    name: str
    version: str
    image: str
    port: int
    files: list[str] = field(default_factory=list)


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


def _dockerfile(port: int, workers: int, name: str, version: str) -> str:
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    return f"""# Built by `loopline deploy build` (loopline {__version__}).
FROM python:{py}-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv
COPY requirements.lock /srv/requirements.lock
COPY wheels/ /srv/wheels/
RUN pip install --find-links /srv/wheels -r /srv/requirements.lock
COPY model/ {MODEL_DIR}/
RUN useradd --system --uid 10001 loopline && mkdir -p /srv/state && chown loopline /srv/state
USER 10001
# The inference log and metrics need a writable place; point LOOPLINE_ARTIFACTS_URI at s3://… to keep it.
ENV LOOPLINE_TRACKING_URI=sqlite:////srv/state/loopline.db LOOPLINE_ARTIFACTS_URI=/srv/state/artifacts
EXPOSE {port}
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/v2/health/ready')"
CMD ["loopline", "serve", "{MODEL_DIR}", "--host", "0.0.0.0", "--port", "{port}", "--workers", "{workers}", \\
     "--name", "{name}", "--model-version", "{version}", "--poll-interval", "0"]
"""


def _probe(path: str, port: int, **extra: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 2, **extra}


def manifests(
    *, app: str, image: str, port: int, replicas: int, max_replicas: int, name: str, version: str
) -> dict[str, dict[str, Any]]:
    labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "loopline"}
    model_labels = {**labels, "loopline.dev/model": name, "loopline.dev/version": version}
    container = {
        "name": "server",
        "image": image,
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": _probe("/v2/health/ready", port, failureThreshold=3),
        "livenessProbe": _probe("/v2/health/live", port, failureThreshold=3),
        # Loading and warming a model can take a while: liveness starts counting after this passes.
        "startupProbe": _probe("/v2/health/live", port, failureThreshold=30, periodSeconds=2),
        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
        "env": [{"name": "LOOPLINE_SERVE_INFERENCE_LOG", "value": "1"}],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app, "labels": model_labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": model_labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(port),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    # uvicorn finishes in-flight requests on SIGTERM; give it the time to.
                    "terminationGracePeriodSeconds": 40,
                    "containers": [container],
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
    kserve_container = {k: v for k, v in container.items() if k not in ("name", "startupProbe")}
    inference_service = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": app,
            "labels": model_labels,
            "annotations": {"serving.kserve.io/enable-prometheus-scraping": "true"},
        },
        "spec": {
            "predictor": {
                "minReplicas": replicas,
                "maxReplicas": max(max_replicas, replicas),
                # KServe routes to the container named kserve-container on its first port.
                "containers": [{"name": "kserve-container", **kserve_container}],
            }
        },
    }
    return {
        "k8s/deployment.yaml": deployment,
        "k8s/service.yaml": service,
        "k8s/hpa.yaml": hpa,
        "kserve/inferenceservice.yaml": inference_service,
    }


def _dns_name(text: str) -> str:
    name = re.sub(r"[^a-z0-9-]", "-", text.lower()).strip("-")
    return re.sub(r"-+", "-", name)[:63].strip("-") or "model"


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
    image = image or f"loopline-{_dns_name(name)}:{version}"
    app = _dns_name(f"{name}-v{version}")
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
    (output / "Dockerfile").write_text(_dockerfile(port, workers, name, version))
    _mkdir(output / "wheels")
    (output / "wheels" / "README").write_text(
        "Put a loopline wheel here (pip wheel /path/to/loopline -w wheels/) if your package index has none.\n"
    )
    files = ["Dockerfile", "requirements.lock", "model/", "wheels/"]
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
    bundle = Bundle(mv.uri, name, version, image, port, files)
    (output / "bundle.json").write_text(json.dumps(asdict(bundle), indent=2) + "\n")
    bundle.files.append("bundle.json")
    return bundle


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
