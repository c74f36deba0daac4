"""Deployments: a name for "these model versions, with these traffic weights, and this shadow".

    set_deployment("churn-prod",
                   routes=[("models:/churn@champion", 90), ("models:/churn@challenger", 10)],
                   shadow="models:/churn/9")
    # loopline serve --deployment churn-prod

Where they are kept: one JSON document per deployment in the artifact store, at
``deployments/<name>.json``. That is the smallest thing every server process can already read —
embedded (a folder or S3) or through ``loopline server`` — with atomic replacement, and it needs no
schema change; a server polls it (and the aliases it names) every few seconds, so a weight change
or an alias move takes effect without a restart. It can move into the metadata store later without
changing this module's functions.

Routing is weighted at random per request, or sticky when the request carries the deployment's
``sticky_header`` (the same key always lands on the same version while the weights stay put).
"""

from __future__ import annotations

import bisect
import hashlib
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson

from loopline.artifacts import ArtifactStore
from loopline.errors import InvalidInput, NotFound

PREFIX = "deployments"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
T = TypeVar("T")


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"Invalid deployment name {name!r}.",
            hint="Use letters, digits, '-', '_' and '.', starting with a letter or digit.",
        )
    return name


def _check_model(uri: Any, where: str) -> str:
    if not isinstance(uri, str) or not uri:
        raise InvalidInput(f"{where}: 'model' must be a model URI such as models:/churn@champion.")
    if uri.startswith("models:/"):
        from loopline.uris import parse

        ref = parse(uri)
        if ref.alias is None and ref.version is None:
            raise InvalidInput(
                f"{where}: {uri!r} names no version or alias.", hint="Use models:/name/3 or @alias."
            )
    return uri


@dataclass(frozen=True, slots=True)
class Route:
    model: str  # models:/name/version, models:/name@alias, or a folder
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
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not self.routes:
            raise InvalidInput(f"Deployment {self.name!r} has no routes.")
        for i, r in enumerate(self.routes):
            _check_model(r.model, f"routes[{i}]")
            if not isinstance(r.weight, int | float) or isinstance(r.weight, bool) or not r.weight >= 0:
                raise InvalidInput(f"routes[{i}]: 'weight' must be a number >= 0; got {r.weight!r}.")
        if sum(r.weight for r in self.routes) <= 0:
            raise InvalidInput(
                f"Deployment {self.name!r}: the weights add up to 0.", hint="Give a route weight > 0."
            )
        if self.shadow is not None:
            _check_model(self.shadow.model, "shadow")
            if not 0 <= self.shadow.sample_rate <= 1:
                raise InvalidInput("shadow: 'sample_rate' must be between 0 and 1.")

    @classmethod
    def single(cls, model_uri: str, name: str | None = None) -> DeploymentSpec:
        """One model, all the traffic: what ``loopline serve MODEL_URI`` serves."""
        if name is None:
            name = (
                model_uri.removeprefix("models:/").split("@")[0].split("/")[0]
                if model_uri.startswith("models:/")
                else "model"
            )
            name = re.sub(r"[^A-Za-z0-9_.-]", "-", name).lstrip("-_.") or "model"
        return cls(name, (Route(model_uri, 100.0),))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "routes": [{"model": r.model, "weight": r.weight} for r in self.routes],
        }
        if self.shadow is not None:
            out["shadow"] = {"model": self.shadow.model, "sample_rate": self.shadow.sample_rate}
        if self.sticky_header:
            out["sticky_header"] = self.sticky_header
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, raw: Any) -> DeploymentSpec:
        if not isinstance(raw, dict):
            raise InvalidInput("A deployment must be a JSON object.")
        routes_raw = raw.get("routes")
        if not isinstance(routes_raw, list):
            raise InvalidInput('A deployment needs \'routes\': a list of {"model", "weight"}.')
        routes = []
        for i, r in enumerate(routes_raw):
            if not isinstance(r, dict):
                raise InvalidInput(f"routes[{i}] must be an object with 'model' and 'weight'.")
            routes.append(Route(r.get("model"), r.get("weight", 1)))  # type: ignore[arg-type]
        shadow = None
        if raw.get("shadow") is not None:
            s = raw["shadow"]
            if isinstance(s, str):
                shadow = Shadow(s)
            elif isinstance(s, dict):
                rate = s.get("sample_rate", 1.0)
                if not isinstance(rate, int | float) or isinstance(rate, bool):
                    raise InvalidInput("shadow: 'sample_rate' must be a number.")
                shadow = Shadow(s.get("model"), float(rate))  # type: ignore[arg-type]
            else:
                raise InvalidInput('\'shadow\' must be a model URI or {"model", "sample_rate"}.')
        sticky = raw.get("sticky_header")
        if sticky is not None and not isinstance(sticky, str):
            raise InvalidInput("'sticky_header' must be a header name.")
        known = {"name", "routes", "shadow", "sticky_header"}
        return cls(
            raw.get("name", ""),
            tuple(routes),
            shadow,
            sticky.lower() if sticky else None,
            {k: v for k, v in raw.items() if k not in known},
        )


def _path(name: str) -> str:
    return f"{PREFIX}/{_check_name(name)}.json"


def save_deployment(store: ArtifactStore, spec: DeploymentSpec) -> None:
    store.put_bytes(orjson.dumps(spec.to_dict(), option=orjson.OPT_INDENT_2), _path(spec.name))


def load_deployment(store: ArtifactStore, name: str) -> DeploymentSpec:
    try:
        with store.open(_path(name)) as f:
            raw = orjson.loads(f.read())
    except (NotFound, FileNotFoundError):
        raise NotFound(
            f"No deployment named {name!r}.",
            hint="Create it with `loopline deploy set NAME --route models:/name@alias=100`.",
        ) from None
    except orjson.JSONDecodeError as e:
        raise InvalidInput(f"Deployment {name!r} is not valid JSON: {e}.") from None
    raw.setdefault("name", name)
    return DeploymentSpec.from_dict(raw)


def list_deployments(store: ArtifactStore) -> list[str]:
    try:
        entries = store.list(PREFIX)
    except NotFound:
        return []
    return sorted(
        e.path.rsplit("/", 1)[-1].removesuffix(".json") for e in entries if e.path.endswith(".json")
    )


def delete_deployment(store: ArtifactStore, name: str) -> None:
    if not store.delete(_path(name)):
        raise NotFound(f"No deployment named {name!r}.")


def _artifacts(client: Any) -> ArtifactStore:
    from loopline.tracking import Client, default_client

    c = client if isinstance(client, Client) else default_client()
    return c.artifacts


def set_deployment(
    name: str,
    routes: Sequence[tuple[str, float]] | str,
    *,
    shadow: str | Shadow | None = None,
    sticky_header: str | None = None,
    client: Any = None,
) -> DeploymentSpec:
    """Create or replace deployment ``name``; running servers pick it up at their next poll.

    >>> set_deployment("churn-prod", [("models:/churn@champion", 90), ("models:/churn/8", 10)])
    """
    if isinstance(routes, str):
        routes = [(routes, 100.0)]
    spec = DeploymentSpec(
        name,
        tuple(Route(m, float(w)) for m, w in routes),
        Shadow(shadow) if isinstance(shadow, str) else shadow,
        sticky_header.lower() if sticky_header else None,
    )
    save_deployment(_artifacts(client), spec)
    return spec


def get_deployment(name: str, *, client: Any = None) -> DeploymentSpec:
    return load_deployment(_artifacts(client), name)


class Router(Generic[T]):
    """Picks one of ``choices`` with probability weight / total, or by a sticky key."""

    def __init__(self, choices: Sequence[tuple[T, float]], rng: random.Random | None = None) -> None:
        picked = [(c, float(w)) for c, w in choices if w > 0]
        if not picked:
            raise InvalidInput("A router needs a choice with weight > 0.")
        self.choices = [c for c, _ in picked]
        self.cumulative: list[float] = []
        total = 0.0
        for _, w in picked:
            total += w
            self.cumulative.append(total)
        self.total = total
        self._random = (rng or random.Random()).random

    def choose(self, key: str | None = None) -> T:
        if len(self.choices) == 1:
            return self.choices[0]
        if key is not None:
            h = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
            point = h / 2**64 * self.total
        else:
            point = self._random() * self.total
        i = bisect.bisect_right(self.cumulative, point)
        return self.choices[min(i, len(self.choices) - 1)]
