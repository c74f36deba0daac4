"""What a deployment is, and what the deployment stores hold and return.

:class:`DeploymentSpec` is what a deployment serves (weighted routes, a shadow, a sticky header);
:class:`Deployment` is a stored one (its spec at its current revision, who made and changed it);
:class:`DeploymentRevision` is one entry of its history. Their JSON shapes live here too
(``*_to_json`` / ``*_from_json``) so the SQL store, the REST store and the server's routes agree.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loopline.errors import InvalidInput
from loopline.names import check_name

_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")  # an HTTP header name (RFC 9110 token)
MAX_ROUTES = 64
MAX_URI = 500  # lineage edges hold URIs of up to 512 characters
MAX_COMMENT = 2000
_KEYS = ("name", "routes", "shadow", "sticky_header")


def check_comment(comment: object) -> str:
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise InvalidInput(f"A deployment change's comment must be text of at most {MAX_COMMENT} characters.")
    return comment


def _check_model(uri: object, where: str) -> str:
    if not isinstance(uri, str) or not uri or len(uri) > MAX_URI:
        raise InvalidInput(
            f"{where}: 'model' must be a model URI such as models:/churn@champion (at most {MAX_URI} chars)."
        )
    if uri.startswith("models:/"):
        from loopline.uris import parse

        ref = parse(uri)
        if ref.alias is None and ref.version is None:
            raise InvalidInput(
                f"{where}: {uri!r} names no version or alias.", hint="Use models:/name/3 or @alias."
            )
    return uri


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True, slots=True)
class Route:
    model: str  # models:/name/version, models:/name@alias, or a folder on the serving machine
    weight: float


@dataclass(frozen=True, slots=True)
class Shadow:
    model: str
    sample_rate: float = 1.0


@dataclass(frozen=True)
class DeploymentSpec:
    """What a deployment serves. Weights need not sum to 100: each gets weight / total."""

    name: str
    routes: tuple[Route, ...]
    shadow: Shadow | None = None
    sticky_header: str | None = None

    def __post_init__(self) -> None:
        check_name("deployment", self.name)
        if not self.routes:
            raise InvalidInput(f"Deployment {self.name!r} has no routes.", hint="Give at least one --route.")
        if len(self.routes) > MAX_ROUTES:
            raise InvalidInput(
                f"Deployment {self.name!r} has {len(self.routes)} routes; at most {MAX_ROUTES}."
            )
        for i, r in enumerate(self.routes):
            _check_model(r.model, f"routes[{i}]")
            if not _number(r.weight) or not r.weight >= 0:
                raise InvalidInput(
                    f"routes[{i}]: 'weight' must be a finite number >= 0; got {r.weight!r:.50}."
                )
        if sum(r.weight for r in self.routes) <= 0:
            raise InvalidInput(
                f"Deployment {self.name!r}: the weights add up to 0.", hint="Give a route weight > 0."
            )
        if self.shadow is not None:
            _check_model(self.shadow.model, "shadow")
            if not _number(self.shadow.sample_rate) or not 0 <= self.shadow.sample_rate <= 1:
                raise InvalidInput("shadow: 'sample_rate' must be a number between 0 and 1.")
        if self.sticky_header is not None and (
            not isinstance(self.sticky_header, str) or not _HEADER.match(self.sticky_header)
        ):
            raise InvalidInput(
                f"Invalid sticky_header {self.sticky_header!r:.200}: it must be an HTTP header name.",
                hint="For example x-user-id.",
            )

    @classmethod
    def single(cls, model_uri: str, name: str | None = None) -> DeploymentSpec:
        """One model, all the traffic: what ``loopline serve MODEL_URI`` serves."""
        if name is None:
            name = (
                model_uri.removeprefix("models:/").split("@")[0].split("/")[0]
                if model_uri.startswith("models:/")
                else "model"
            )
            name = re.sub(r"[^A-Za-z0-9_.-]", "-", name).lstrip("-_.")[:128] or "model"
        return cls(name, (Route(model_uri, 100.0),))

    @property
    def models(self) -> tuple[str, ...]:
        """Every model URI the spec names, routes first, each once."""
        uris = [r.model for r in self.routes] + ([self.shadow.model] if self.shadow else [])
        return tuple(dict.fromkeys(uris))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "routes": [{"model": r.model, "weight": r.weight} for r in self.routes],
        }
        if self.shadow is not None:
            out["shadow"] = {"model": self.shadow.model, "sample_rate": self.shadow.sample_rate}
        if self.sticky_header:
            out["sticky_header"] = self.sticky_header
        return out

    @classmethod
    def from_dict(cls, raw: Any) -> DeploymentSpec:
        if not isinstance(raw, dict):
            raise InvalidInput("A deployment must be a JSON object.")
        if unknown := sorted(set(raw) - set(_KEYS)):
            raise InvalidInput(
                f"Unknown deployment field(s) {', '.join(map(repr, unknown))}.",
                hint="A deployment has " + ", ".join(_KEYS) + ".",
            )
        routes_raw = raw.get("routes")
        if not isinstance(routes_raw, list):
            raise InvalidInput('A deployment needs \'routes\': a list of {"model", "weight"}.')
        routes = []
        for i, r in enumerate(routes_raw):
            if not isinstance(r, dict):
                raise InvalidInput(f"routes[{i}] must be an object with 'model' and 'weight'.")
            routes.append(Route(r.get("model"), r.get("weight", 1)))  # type: ignore[arg-type]  # checked below
        shadow = None
        if raw.get("shadow") is not None:
            s = raw["shadow"]
            if isinstance(s, str):
                shadow = Shadow(s)
            elif isinstance(s, dict):
                shadow = Shadow(s.get("model"), s.get("sample_rate", 1.0))  # type: ignore[arg-type]  # checked below
            else:
                raise InvalidInput('\'shadow\' must be a model URI or {"model", "sample_rate"}.')
        sticky = raw.get("sticky_header")
        if sticky is not None and not isinstance(sticky, str):
            raise InvalidInput("'sticky_header' must be a header name.")
        return cls(raw.get("name", ""), tuple(routes), shadow, sticky.lower() if sticky else None)


@dataclass(frozen=True)
class Deployment:
    """A stored deployment: its spec at its current ``revision``, and who made and changed it.

    ``resolved`` maps each ``models:/`` URI of the spec to the version it named when this revision
    was written (an alias may have moved since: a server follows it, the history keeps this).
    """

    spec: DeploymentSpec
    revision: int
    created_ms: int
    created_by: str
    updated_ms: int
    updated_by: str
    resolved: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def uri(self) -> str:
        return f"deployments:/{self.spec.name}"

    @property
    def routes(self) -> tuple[Route, ...]:
        return self.spec.routes

    @property
    def shadow(self) -> Shadow | None:
        return self.spec.shadow

    @property
    def sticky_header(self) -> str | None:
        return self.spec.sticky_header


@dataclass(frozen=True)
class DeploymentRevision:
    """One change of a deployment: the spec it set, and the versions its model URIs named then."""

    name: str
    revision: int
    spec: DeploymentSpec
    actor: str
    time_ms: int
    comment: str = ""
    resolved: Mapping[str, str] = field(default_factory=dict)


# ---- JSON shapes (the REST API's) -------------------------------------------------------------


def deployment_to_json(d: Deployment) -> dict[str, Any]:
    return {
        "name": d.name,
        "uri": d.uri,
        "revision": d.revision,
        "spec": d.spec.to_dict(),
        "resolved": dict(d.resolved),
        "created_ms": d.created_ms,
        "created_by": d.created_by,
        "updated_ms": d.updated_ms,
        "updated_by": d.updated_by,
    }


def deployment_from_json(raw: Mapping[str, Any]) -> Deployment:
    return Deployment(
        DeploymentSpec.from_dict(raw["spec"]),
        int(raw["revision"]),
        int(raw["created_ms"]),
        str(raw["created_by"]),
        int(raw["updated_ms"]),
        str(raw["updated_by"]),
        dict(raw.get("resolved") or {}),
    )


def revision_to_json(r: DeploymentRevision) -> dict[str, Any]:
    return {
        "name": r.name,
        "revision": r.revision,
        "spec": r.spec.to_dict(),
        "resolved": dict(r.resolved),
        "actor": r.actor,
        "time_ms": r.time_ms,
        "comment": r.comment,
    }


def revision_from_json(raw: Mapping[str, Any]) -> DeploymentRevision:
    return DeploymentRevision(
        str(raw["name"]),
        int(raw["revision"]),
        DeploymentSpec.from_dict(raw["spec"]),
        str(raw["actor"]),
        int(raw["time_ms"]),
        str(raw.get("comment") or ""),
        dict(raw.get("resolved") or {}),
    )
