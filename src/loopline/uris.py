"""Stable URIs for every object in the lineage graph.

``runs:/<run_id>/<path>``, ``models:/<name>/<version>`` or ``models:/<name>@<alias>``,
``datasets:/<name>/<version>`` or ``datasets:/<name>@<alias>``, ``features:/<view>``,
``pipelines:/<name>/<run_id>``, ``deployments:/<name>``, ``monitors:/<name>``, ``experiments:/<id>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from loopline.errors import InvalidInput

SCHEMES = ("runs", "models", "datasets", "features", "pipelines", "deployments", "monitors", "experiments")
_URI = re.compile(r"^(?P<scheme>[a-z]+):/(?P<rest>[^/].*)$")
_NAMED = re.compile(r"^(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>[^/@]+))?(?:/(?P<path>.*))?$")


@dataclass(frozen=True, slots=True)
class ObjectUri:
    """A parsed object URI: ``scheme:/name[/version|@alias][/path]``."""

    scheme: str
    name: str
    version: str | None = None
    alias: str | None = None
    path: str = ""

    def __str__(self) -> str:
        out = f"{self.scheme}:/{self.name}"
        if self.alias is not None:
            out += f"@{self.alias}"
        elif self.version is not None:
            out += f"/{self.version}"
        if self.path:
            out += f"/{self.path}"
        return out


def parse(uri: str) -> ObjectUri:
    """Parse ``uri`` into its parts.

    >>> parse("models:/churn@champion").alias
    'champion'
    """
    m = _URI.match(uri)
    if not m or m["scheme"] not in SCHEMES:
        raise InvalidInput(
            f"Not a Loopline object URI: {uri!r}.",
            hint="Use one of " + ", ".join(f"{s}:/…" for s in SCHEMES) + ".",
        )
    scheme, rest = m["scheme"], m["rest"]
    if scheme in ("runs", "features", "deployments", "monitors", "experiments"):
        name, _, path = rest.partition("/")
        return ObjectUri(scheme, name, path=path)
    n = _NAMED.match(rest)
    if not n:
        raise InvalidInput(f"Malformed {scheme} URI: {uri!r}.", hint=f"Use {scheme}:/<name>/<version>.")
    return ObjectUri(scheme, n["name"], n["version"], n["alias"], n["path"] or "")


def dataset_uri(name: str, version: int | str) -> str:
    return f"datasets:/{name}/{version}"


def run_uri(run_id: str, path: str = "") -> str:
    return f"runs:/{run_id}/{path}" if path else f"runs:/{run_id}"


def experiment_uri(experiment_id: str) -> str:
    return f"experiments:/{experiment_id}"


# Artifact URIs stored on experiments and runs: a path under the artifact root, resolved by the
# client (embedded) or the server (proxy). MLflow's clients resolve the same scheme against a server.
ARTIFACT_SCHEME = "mlflow-artifacts:"


def artifact_location(path: str) -> str:
    return f"{ARTIFACT_SCHEME}/{path.strip('/')}"


def artifact_path(uri: str) -> str:
    """``mlflow-artifacts:/1/<run_id>/artifacts`` → ``1/<run_id>/artifacts``."""
    if not uri.startswith(ARTIFACT_SCHEME):
        raise InvalidInput(
            f"Artifacts at {uri!r} are outside Loopline's artifact store.",
            hint="Create experiments without a custom artifact_location.",
        )
    return uri.removeprefix(ARTIFACT_SCHEME).strip("/")
