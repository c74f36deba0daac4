"""``loopline.yaml``: the deployments, monitors and policies of one workspace, declared as code.

::

    version: 1                                   # required; the format's version
    deployments:
      churn-prod:                                # deployments:/churn-prod
        routes: [{model: "models:/churn@champion", weight: 100}]
        shadow: null                             # or a model URI, or {model, sample_rate}
        sticky_header: null                      # route by a hash of this request header
    monitors:
      churn-drift:                               # monitors:/churn-drift
        target: "deployments:/churn-prod"        # or models:/name@alias
        reference: "datasets:/churn@v1"          # or a file (relative to this file); omitted:
                                                 #   the served model's training data, by lineage
        window: 1h                               # a duration (30m, 1h, 7d) or a count (1000rows)
        schedule: "*/5 * * * *"                  # cron (UTC) for `loopline server`; omitted: by hand
        options:                                 # as `loopline monitor create` takes them
          webhooks: ["https://hooks.example/ml"]
          thresholds: {drift_share: 0.3, accuracy: 0.8, age: 0.1}   # option, limit or COLUMN=threshold
          tests: {age: ks}                       # COLUMN: test
          target: churned                        # the reference's label column
          categorical: [plan]
    policies:
      churn:                                     # policies:/churn; every field of automation.Policy
        model: churn
        deployment: churn-prod
        pipeline: "train.py:train"
        params: {lr: 0.1}
        triggers: [{kind: alert, monitor: churn-drift}, {kind: schedule, cron: "0 3 * * 0"}]
        gate: {dataset: "datasets:/churn-holdout@latest", target: churned,
               rules: [{kind: metric, metric: roc_auc, max_loss: 0.005}]}
        rollout: [{stage: shadow, weight: 100, bake_s: 60}, {stage: canary, weight: 5, bake_s: 120}]
        health: {max_error_rate: 0.01, max_p99_ms: 50}
        approval: false

The same objects in Python: ``Spec(deployments=(DeploymentSpec(...),), monitors=(MonitorSpec(...),),
policies=(Policy(...),))``, then ``automation.apply.plan(spec)`` / ``apply(spec)``.

``load_spec(path)`` checks everything the types check, and more: unknown keys (with a "did you
mean"), wrong value types (``approval: "no"`` is not false), duplicate keys. It reports every problem
at once, each with its line (``loopline.yaml:12: policies.churn.gate.rules[0]: ...``), as one
:class:`InvalidSpec`; a file with any problem applies nothing. What needs the store (a policy's
deployment exists, a route's model version is registered) is checked by ``plan``, the same way.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from loopline.automation.types import (
    Gate,
    GateRule,
    Health,
    Policy,
    RolloutStep,
    Trigger,
    policy_from_json,
)
from loopline.errors import InvalidInput
from loopline.names import check_name
from loopline.serving.types import DeploymentSpec

VERSION = 1
TOP_KEYS = ("version", "deployments", "monitors", "policies")
DEPLOYMENT_KEYS = ("routes", "shadow", "sticky_header")
ROUTE_KEYS = ("model", "weight")
SHADOW_KEYS = ("model", "sample_rate")
MONITOR_KEYS = ("target", "reference", "window", "schedule", "options")
OPTION_KEYS = ("webhooks", "thresholds", "tests", "target", "categorical")
POLICY_KEYS = tuple(f.name for f in fields(Policy) if f.name != "name")
_REQUIRED_POLICY_KEYS = ("model", "deployment", "pipeline", "gate")


@dataclass(frozen=True)
class MonitorSpec:
    """A monitor as ``loopline.yaml`` declares it: the arguments of ``Monitors.create``.

    ``target`` is what it watches (``deployments:/name`` or ``models:/name@alias``);
    ``target_column`` is the reference's label column (``options.target`` in the file).
    """

    name: str
    target: str
    reference: str = ""
    window: str = "1h"
    schedule: str = ""
    webhooks: tuple[str, ...] = ()
    thresholds: Mapping[str, float] = field(default_factory=dict)
    tests: Mapping[str, str] = field(default_factory=dict)
    target_column: str | None = None
    categorical: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_name("monitor", self.name)
        if not isinstance(self.target, str) or not self.target.startswith(("deployments:/", "models:/")):
            raise InvalidInput(
                f"Monitor {self.name!r}: target {self.target!r:.200} is not a deployment or a model.",
                hint="Use deployments:/name or models:/name@alias.",
            )

    @property
    def uri(self) -> str:
        return f"monitors:/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        """The file's shape (without the name); what a plan compares."""
        return {
            "target": self.target,
            "reference": self.reference,
            "window": self.window,
            "schedule": self.schedule,
            "options": {
                "webhooks": list(self.webhooks),
                "thresholds": {k: float(v) for k, v in self.thresholds.items()},
                "tests": dict(self.tests),
                "target": self.target_column,
                "categorical": list(self.categorical),
            },
        }


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec: where (a dotted path, and its line when read from a file)."""

    path: str
    message: str
    line: int | None = None
    hint: str = ""

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return f"{text}\n    hint: {self.hint}" if self.hint else text


class InvalidSpec(InvalidInput):
    """A spec with problems: every one of them, each with its line; nothing was applied."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(sorted(problems, key=lambda p: p.line or 0))  # in the file's order
        n = len(self.problems)
        lines = "\n".join(p.render(source) for p in self.problems)
        super().__init__(
            f"{source}: {n} problem{'s' if n != 1 else ''}, nothing was applied:\n{lines}",
            hint=f"Fix them, then check again with: loopline apply {source} --dry-run",
        )


@dataclass(frozen=True)
class Spec:
    """What one ``loopline.yaml`` (or the same objects in Python) declares."""

    deployments: tuple[DeploymentSpec, ...] = ()
    monitors: tuple[MonitorSpec, ...] = ()
    policies: tuple[Policy, ...] = ()
    source: str = "<python>"  # the file's name, for messages and the loop.apply event
    lines: Mapping[str, int] = field(default_factory=dict)  # dotted path -> line in the file

    def __post_init__(self) -> None:
        problems = []
        for kind, items in (
            ("deployments", self.deployments),
            ("monitors", self.monitors),
            ("policies", self.policies),
        ):
            seen: set[str] = set()
            for item in items:
                if item.name in seen:
                    problems.append(Problem(f"{kind}.{item.name}", "declared twice."))
                seen.add(item.name)
        if problems:
            raise InvalidSpec(self.source, problems)

    def line(self, path: str) -> int | None:
        """The line of ``path`` in the file, or of its nearest enclosing key."""
        return _line_of(self.lines, path)

    def problem(self, path: str, message: str, hint: str = "") -> Problem:
        return Problem(path, message, self.line(path), hint)


# ---- reading YAML with its lines ----------------------------------------------------------------


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


class _Reader:
    """YAML nodes to plain values, remembering each path's line (1-based)."""

    def __init__(self) -> None:
        self.lines: dict[str, int] = {}
        self.problems: list[Problem] = []
        self._scalars = yaml.SafeLoader("")

    def value(self, node: yaml.Node, path: str) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.value(key_node, path) if isinstance(key_node, yaml.ScalarNode) else None
                line = key_node.start_mark.line + 1
                if not isinstance(key, str | int | float | bool) or key is None:
                    self.problems.append(Problem(path, "a key must be plain text.", line))
                    continue
                sub = _join(path, key)
                if key in out:
                    self.problems.append(Problem(sub, f"the key {key!r} appears twice.", line))
                    continue
                self.lines[sub] = line
                out[key] = self.value(value_node, sub)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        try:
            return self._scalars.construct_object(node)
        except yaml.YAMLError as e:
            self.problems.append(
                Problem(path, f"{getattr(e, 'problem', None) or e}.", node.start_mark.line + 1)
            )
            return None


def _read_yaml(text: str) -> tuple[Any, dict[str, int], list[Problem]]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        message = getattr(e, "problem", None) or str(e)
        return None, {}, [Problem("", f"not valid YAML: {message}.", mark.line + 1 if mark else None)]
    if root is None:
        return None, {}, []
    reader = _Reader()
    return reader.value(root, ""), reader.lines, reader.problems


# ---- checking -------------------------------------------------------------------------------------


def _did_you_mean(key: str, allowed: Sequence[str], what: str) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    has = f"{what} has: " + ", ".join(allowed) + "."
    return f"Did you mean {close[0]!r}? {has}" if close else has


def _kind(value: object) -> str:
    return "nothing (null)" if value is None else type(value).__name__


def _fits(value: object, hint: Any) -> bool:
    """Whether a YAML scalar fits a dataclass field's type (bool is not a number; 3 is a float)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if origin is typing.Literal:  # the value type's own check names the choices
        return isinstance(value, str)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    return True  # containers and nested values are checked where they are built


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(h) for h in typing.get_args(hint))
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "text", type(None): "null"}
    return names.get(hint, "text" if typing.get_origin(hint) is typing.Literal else str(hint))


def _line_of(lines: Mapping[str, int], path: str) -> int | None:
    """The line of ``path``, or of its nearest enclosing key."""
    while True:
        if path in lines:
            return lines[path]
        if not path:
            return None
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""


_LOCATE = re.compile(r"^(routes\[\d+\]|shadow)(?=:)")


class _Checker:
    def __init__(self, source: str, lines: Mapping[str, int], base_dir: Path) -> None:
        self.source = source
        self.lines = lines
        self.base_dir = base_dir
        self.problems: list[Problem] = []

    def error(self, path: str, message: str, hint: str = "") -> None:
        self.problems.append(Problem(path, message, _line_of(self.lines, path), hint))

    def mapping(self, body: object, path: str, allowed: Sequence[str], what: str) -> dict[str, Any] | None:
        """``body`` as a mapping with only ``allowed`` keys (unknown ones reported, then dropped)."""
        if not isinstance(body, dict):
            self.error(path, f"{what} must be a mapping (key: value), not {_kind(body)}.")
            return None
        out = {}
        for key, value in body.items():
            if key in allowed:
                out[key] = value
            else:
                self.error(_join(path, key), f"unknown key {key!r}.", _did_you_mean(str(key), allowed, what))
        return out

    def typed(self, body: Mapping[str, Any], path: str, cls: type) -> bool:
        """Every scalar of ``body`` has the type ``cls`` declares for it."""
        hints = typing.get_type_hints(cls)
        ok = True
        for key, value in body.items():
            if key in hints and not _fits(value, hints[key]):
                self.error(_join(path, key), f"{value!r:.80} is not {_type_name(hints[key])}.")
                ok = False
        return ok

    def build(self, path: str, make: Callable[[], Any], near: Sequence[str] = ()) -> Any:
        """``make()``, its ``InvalidInput`` (or bad-argument error) reported at ``path`` — or at
        ``path.<key>`` for the first of ``near`` the message names."""
        try:
            return make()
        except InvalidInput as e:
            where = path
            if m := _LOCATE.match(e.message):
                where = _join(path, m[1])
            else:
                for key in near:
                    if re.search(rf"\b{re.escape(key)}\b", e.message):
                        where = _join(path, key)
                        break
            self.error(where, e.message.removeprefix(f"{m[1]}: " if m else ""), e.hint)
        except (TypeError, ValueError, KeyError) as e:
            self.error(path, f"{e}.")
        return None

    def items(self, body: object, path: str, what: str) -> list[tuple[str, Any]]:
        if body is None:
            return []
        if not isinstance(body, dict):
            self.error(path, f"{what} must be a mapping of name to definition, not {_kind(body)}.")
            return []
        return [(str(k), v) for k, v in body.items()]

    def listed(self, body: object, path: str, what: str) -> list[Any]:
        if body is None:
            return []
        if not isinstance(body, list):
            self.error(path, f"{what} must be a list, not {_kind(body)}.")
            return []
        return body

    # ---- deployments ----

    def deployment(self, name: str, raw: object, path: str) -> DeploymentSpec | None:
        body = self.mapping(raw, path, DEPLOYMENT_KEYS, "a deployment")
        if body is None:
            return None
        bad = len(self.problems)
        if "routes" not in body and not _misspelt("routes", raw):
            self.error(
                path,
                "a deployment needs 'routes'.",
                'For example: routes: [{model: "models:/churn@champion", weight: 100}]',
            )
        for i, route in enumerate(self.listed(body.get("routes"), _join(path, "routes"), "routes")):
            if (r := self.mapping(route, f"{path}.routes[{i}]", ROUTE_KEYS, "a route")) is not None:
                if "model" not in r:
                    self.error(f"{path}.routes[{i}]", "a route needs 'model'.")
                self.typed(r, f"{path}.routes[{i}]", _RouteFields)
        shadow = body.get("shadow")
        if isinstance(shadow, dict) and self.mapping(shadow, _join(path, "shadow"), SHADOW_KEYS, "a shadow"):
            self.typed(shadow, _join(path, "shadow"), _RouteFields)
        self.typed(body, path, _DeploymentFields)
        if len(self.problems) > bad:
            return None
        result: DeploymentSpec | None = self.build(
            path, lambda: DeploymentSpec.from_dict({**body, "name": name}), DEPLOYMENT_KEYS
        )
        return result

    # ---- monitors ----

    def monitor(self, name: str, raw: object, path: str) -> MonitorSpec | None:
        body = self.mapping(raw, path, MONITOR_KEYS, "a monitor")
        if body is None:
            return None
        bad = len(self.problems)
        if "target" not in body and not _misspelt("target", raw):
            self.error(path, "a monitor needs 'target'.", "Use deployments:/name or models:/name@alias.")
        opts = self.options(body.get("options"), _join(path, "options"))
        if self.typed(body, path, _MonitorFields) and "target" in body:
            reference = body.get("reference") or ""
            if reference and not reference.startswith("datasets:/"):
                reference = str((self.base_dir / reference).resolve())  # relative to the file, not the shell
            spec: MonitorSpec | None = self.build(
                path,
                lambda: MonitorSpec(
                    name,
                    body["target"],
                    reference,
                    body.get("window") or "1h",
                    body.get("schedule") or "",
                    tuple(opts.get("webhooks") or ()),
                    dict(opts.get("thresholds") or {}),
                    dict(opts.get("tests") or {}),
                    opts.get("target"),
                    tuple(opts.get("categorical") or ()),
                ),
                MONITOR_KEYS,
            )
            if spec is not None:
                near = ("schedule", "window", "reference", "target", "webhook")
                self.build(path, lambda: check_monitor(spec), near)
                return spec if len(self.problems) == bad else None
        return None

    def options(self, raw: object, path: str) -> dict[str, Any]:
        """A monitor's options, checked; those of the wrong type left out (and reported)."""
        opts = self.mapping(raw or {}, path, OPTION_KEYS, "options") or {}
        if not self.typed(opts, path, _OptionFields):
            opts.pop("target")
        for key in ("webhooks", "categorical"):
            items = self.listed(opts.get(key), _join(path, key), key)
            for i, item in enumerate(items):
                if not isinstance(item, str):
                    self.error(f"{path}.{key}[{i}]", f"{item!r:.80} is not text.")
            opts[key] = [item for item in items if isinstance(item, str)]
        for key, want in (("thresholds", float), ("tests", str)):
            table = opts.get(key)
            if table is not None and not isinstance(table, dict):
                self.error(_join(path, key), f"{key} must be a mapping, not {_kind(table)}.")
                table = {}
            for k, v in (table or {}).items():
                if not _fits(v, want):
                    self.error(f"{path}.{key}.{k}", f"{v!r:.80} is not {_type_name(want)}.")
        return opts

    # ---- policies ----

    def policy(self, name: str, raw: object, path: str) -> Policy | None:
        start = len(self.problems)
        body = self.mapping(raw, path, POLICY_KEYS, "a policy")
        if body is None:
            return None
        body = {k: v for k, v in body.items() if v is not None}  # null: the default
        pipeline = body.get("pipeline")
        if isinstance(pipeline, str) and ".py:" in pipeline and not Path(pipeline).is_absolute():
            file, _, fn = pipeline.rpartition(":")  # a file relative to this one, not to the shell
            body["pipeline"] = f"{(self.base_dir / file).resolve()}:{fn}"
        bad = len(self.problems)
        for key in _REQUIRED_POLICY_KEYS:
            if key not in body and not _misspelt(key, raw):
                self.error(
                    path, f"a policy needs {key!r}.", "Every policy has model, deployment, pipeline, gate."
                )
        self.typed(body, path, Policy)
        for key in ("params", "labels"):
            if body.get(key) is not None and not isinstance(body[key], dict):
                self.error(_join(path, key), f"{key} must be a mapping, not {_kind(body[key])}.")
        for i, url in enumerate(self.listed(body.get("webhooks"), _join(path, "webhooks"), "webhooks")):
            if not isinstance(url, str):
                self.error(f"{path}.webhooks[{i}]", f"{url!r:.80} is not a URL.")
        whole = len(self.problems) == bad and all(k in body for k in _REQUIRED_POLICY_KEYS)
        if whole:  # the policy's own fields, before its parts: both get reported
            alone = {k: v for k, v in body.items() if k not in ("gate", "triggers", "rollout", "health")}
            self.build(path, lambda: policy_from_json({**alone, "name": name, "gate": {}}), POLICY_KEYS)
        self.parts(body, path)
        if len(self.problems) > start:
            return None
        policy: Policy | None = self.build(
            path, lambda: policy_from_json({**body, "name": name}), POLICY_KEYS
        )
        return policy

    def parts(self, body: Mapping[str, Any], path: str) -> None:
        """Build each nested value alone, so a problem is reported where it is."""
        gpath = _join(path, "gate")
        if "gate" in body and (gate := self.mapping(body["gate"], gpath, _keys(Gate), "a gate")) is not None:
            self.typed(gate, gpath, Gate)
            rules = self.listed(gate.get("rules"), _join(gpath, "rules"), "rules")
            for i, rule in enumerate(rules):
                self.one(rule, f"{gpath}.rules[{i}]", GateRule, "a gate rule")
            self.build(gpath, lambda: Gate(rules=(), **{k: v for k, v in gate.items() if k != "rules"}))
        for i, trigger in enumerate(self.listed(body.get("triggers"), _join(path, "triggers"), "triggers")):
            self.one(trigger, f"{path}.triggers[{i}]", Trigger, "a trigger")
        for i, step in enumerate(self.listed(body.get("rollout"), _join(path, "rollout"), "rollout")):
            self.one(step, f"{path}.rollout[{i}]", RolloutStep, "a rollout step")
        if body.get("health") is not None:
            self.one(body["health"], _join(path, "health"), Health, "health")

    def one(self, raw: object, path: str, cls: type, what: str) -> None:
        bad = len(self.problems)
        body = self.mapping(raw, path, _keys(cls), what)
        if body is None or not self.typed(body, path, cls) or len(self.problems) > bad:
            return  # what follows from an unknown or mistyped key would only repeat it
        missing = [f.name for f in fields(cls) if f.name not in body and not _has_default(f)]
        for key in missing:
            self.error(path, f"{what} needs {key!r}.")
        if not missing:
            self.build(path, lambda: cls(**body), tuple(body))


def _has_default(f: Field[Any]) -> bool:
    return f.default is not MISSING or f.default_factory is not MISSING


def check_monitor(spec: MonitorSpec) -> None:
    """What the monitoring store will check when it stores ``spec`` (``InvalidInput`` otherwise):
    its window, schedule, reference file and webhooks."""
    from loopline.monitoring.definition import check_definition

    options = {"webhooks": list(spec.webhooks)}
    check_definition(spec.name, spec.target, spec.reference, spec.window, spec.schedule, options)


def _misspelt(key: str, raw: object) -> bool:
    """Whether an unknown key of ``raw`` looks like ``key`` (reported as such, not as missing too)."""
    return isinstance(raw, dict) and any(
        k != key and difflib.get_close_matches(str(k), [key], n=1) for k in raw
    )


def _keys(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


# What _Checker.typed checks the scalars of, where the value type itself has no annotations to read.
@dataclass
class _RouteFields:
    model: str
    weight: float
    sample_rate: float


@dataclass
class _DeploymentFields:
    sticky_header: str | None


@dataclass
class _MonitorFields:
    target: str
    reference: str | None
    window: str
    schedule: str | None


@dataclass
class _OptionFields:
    target: str | None


# ---- entry points ---------------------------------------------------------------------------------


def parse_spec(text: str, *, source: str = "loopline.yaml", base_dir: str | Path = ".") -> Spec:
    """The spec ``text`` declares; every problem at once, as :class:`InvalidSpec`.

    ``base_dir``: what relative file references (a monitor's reference) are relative to.
    """
    data, lines, problems = _read_yaml(text)
    check = _Checker(source, lines, Path(base_dir))
    check.problems += problems
    if problems:
        raise InvalidSpec(source, check.problems)
    body = check.mapping(data if data is not None else {}, "", TOP_KEYS, "loopline.yaml")
    if body is None:
        raise InvalidSpec(source, check.problems)
    if "version" not in body:
        check.error("", "the file has no 'version'.", f"Start it with: version: {VERSION}")
    elif body["version"] != VERSION:
        check.error("version", f"version {body['version']!r} is not supported.", f"Use version: {VERSION}")
    deployments = [
        check.deployment(n, v, f"deployments.{n}")
        for n, v in check.items(body.get("deployments"), "deployments", "deployments")
    ]
    monitors = [
        check.monitor(n, v, f"monitors.{n}")
        for n, v in check.items(body.get("monitors"), "monitors", "monitors")
    ]
    policies = [
        check.policy(n, v, f"policies.{n}")
        for n, v in check.items(body.get("policies"), "policies", "policies")
    ]
    if check.problems:
        raise InvalidSpec(source, check.problems)
    return Spec(
        tuple(d for d in deployments if d is not None),
        tuple(m for m in monitors if m is not None),
        tuple(p for p in policies if p is not None),
        source=source,
        lines=lines,
    )


def load_spec(path: str | os.PathLike[str]) -> Spec:
    """The spec in the file ``path`` (see the module's docstring for its format)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"No such file: {p}.", hint="Pass the path of your loopline.yaml.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInput(f"Could not read {p}: {e}.") from None
    return parse_spec(text, source=p.name, base_dir=p.resolve().parent)


__all__ = ["InvalidSpec", "MonitorSpec", "Problem", "Spec", "check_monitor", "load_spec", "parse_spec"]
