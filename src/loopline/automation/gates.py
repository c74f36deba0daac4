"""The gate: judge a candidate model version against the serving champion on held-out data.

``judge(gate, "models:/churn/7", "models:/churn/6")`` loads the held-out dataset version the gate
names (or, with none named, the newest version of the dataset the candidate's run logged as its
``eval``/``test``/``holdout`` input), loads both models as ``loopline.load_model`` does, checks
every rule and returns a :class:`Verdict` whose rules say what was measured and why each passed
or failed. The candidate is then tagged (``loopline.gate`` = passed/failed, the reason and the
dataset), so a rejected one stays in the registry, explained.

- ``metric``: both models' outputs on the same rows (``loopline.evaluate``'s), the difference
  judged by a paired bootstrap (``automation.bootstrap``: its one-sided bound must not be a loss
  larger than ``max_loss``) or, with ``method="point"``, by the point estimates. The metric's own
  direction decides what a loss is (log loss and errors: lower is better) unless the rule's
  ``higher_is_better`` says otherwise. With no champion (the first model) the rule passes on the
  candidate's figure alone, and says so.
- ``latency``: the p99 of ``LATENCY_CALLS`` one-row predictions of the loaded candidate (through
  its signature check, as serving calls it), after ``WARMUP_CALLS`` untimed ones.
- ``validation``: the suite file must pass on the held-out dataset version.
- ``signature``: every column the champion takes must be taken by the candidate with a type it
  converts without loss (as ``signature.enforce`` does), and the candidate must require no column
  the champion did not take; a side without a signature passes, with a note.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from loopline.automation.types import Gate, GateRule
from loopline.errors import InvalidInput

if TYPE_CHECKING:
    from loopline.data import DataClient
    from loopline.registry import LoadedModel, RegistryClient
    from loopline.registry.signature import Signature
    from loopline.registry.types import ModelVersion

GATE_TAG, REASON_TAG, DATASET_TAG = "loopline.gate", "loopline.gate.reason", "loopline.gate.dataset"
HOLDOUT_CONTEXTS = ("eval", "evaluation", "test", "holdout", "validation")
LATENCY_CALLS, WARMUP_CALLS = 200, 20
_TAG_LIMIT = 5000  # MLflow's limit on a tag value
# A column of the candidate's type takes values of these types of the champion's without loss (as
# signature.enforce converts them); any other type takes only itself.
_WHOLE, _NUMBER = {"boolean", "integer", "long"}, {"boolean", "integer", "long", "float", "double"}
_ACCEPTS = {
    "integer": _WHOLE,
    "long": _WHOLE,
    "float": _NUMBER,
    "double": _NUMBER,
    "binary": {"binary", "string"},
}


@dataclass(frozen=True)
class RuleVerdict:
    """One rule's outcome: what was measured (``numbers``) and, in words, why it passed or failed."""

    kind: str
    passed: bool
    numbers: Mapping[str, float] = field(default_factory=dict)
    why: str = ""


@dataclass(frozen=True)
class Verdict:
    """The gate's outcome for ``candidate``: passed when every rule passed."""

    passed: bool
    rules: tuple[RuleVerdict, ...]
    dataset: str  # the held-out version judged on: datasets:/<name>/<version>
    candidate: str = ""
    champion: str = ""

    @property
    def reason(self) -> str:
        failed = [r.why for r in self.rules if not r.passed]
        return "; ".join(failed) if failed else f"all {len(self.rules)} rules passed on {self.dataset}"


def verdict_to_json(verdict: Verdict) -> dict[str, Any]:
    """The verdict as the ``loop.gate`` event and ``Rollout.verdict`` hold it (non-finite: null)."""
    out = asdict(verdict)
    out["rules"] = [
        {**r, "numbers": {k: v if math.isfinite(v) else None for k, v in r["numbers"].items()}}
        for r in out["rules"]
    ]
    return out


def verdict_from_json(data: Mapping[str, Any]) -> Verdict:
    rules = tuple(
        RuleVerdict(
            r["kind"],
            r["passed"],
            {k: math.nan if v is None else v for k, v in r["numbers"].items()},
            r["why"],
        )
        for r in data["rules"]
    )
    return Verdict(data["passed"], rules, data["dataset"], data["candidate"], data["champion"])


Outputs = Callable[["LoadedModel"], tuple[Any, Any, Any]]  # a model -> its per-row outputs (cached)


def _metric_rule(
    rule: GateRule, outputs: Outputs, y: Any, cand: LoadedModel, champ: LoadedModel | None
) -> RuleVerdict:
    from loopline.automation.bootstrap import metric_value, non_inferior, paired_bootstrap

    metric, picked = str(rule.metric), []
    for who, model in (("candidate", cand), ("champion", champ)):
        if model is not None:
            try:
                labels, proba, classes = outputs(model)
            except Exception as e:  # a model that cannot score the held-out rows is not promoted
                return RuleVerdict(
                    "metric", False, {}, f"{metric}: the {who} failed to predict the held-out rows: {e}"
                )
            if metric in ("roc_auc", "log_loss") and proba is None:
                return RuleVerdict("metric", False, {}, f"{metric}: the {who} gives no class probabilities")
            picked.append((proba if metric in ("roc_auc", "log_loss") else labels, classes))
    if champ is None:
        value = metric_value(metric, y, picked[0][0], classes=picked[0][1])
        return RuleVerdict(
            "metric", True, {"candidate": value}, f"{metric}: {value:.4f}; no champion to compare with"
        )
    (c_out, c_cls), (h_out, h_cls) = picked
    if metric in ("roc_auc", "log_loss") and list(c_cls) != list(h_cls):
        why = f"{metric}: the candidate's classes {list(c_cls)} differ from the champion's {list(h_cls)}"
        return RuleVerdict("metric", False, {}, why)
    resamples = rule.resamples if rule.method == "bootstrap" else 0  # 0: the bound is the point difference
    try:
        iv = paired_bootstrap(
            metric,
            y,
            c_out,
            h_out,
            classes=c_cls,
            resamples=resamples,
            confidence=rule.confidence,
            higher_is_better=rule.higher_is_better,
        )
    except InvalidInput as e:
        return RuleVerdict("metric", False, {}, f"{metric}: {e}")
    passed = non_inferior(iv, rule.max_loss)
    numbers = {
        k: float(getattr(iv, k)) for k in ("candidate", "champion", "difference", "bound", "resamples")
    }
    numbers |= {"max_loss": rule.max_loss, "confidence": rule.confidence}
    side = "lower" if iv.higher_is_better else "upper"
    judged = f"its {rule.confidence:.0%} {side} bound {iv.bound:+.4f}" if resamples else "it"
    verdict = "is within" if passed else "is a loss beyond"
    why = (
        f"{metric}: candidate {iv.candidate:.4f} vs champion {iv.champion:.4f}, "
        f"difference {iv.difference:+.4f}; {judged} {verdict} the allowed loss {rule.max_loss:g}"
    )
    return RuleVerdict("metric", passed, numbers, why)


def _latency_rule(rule: GateRule, model: LoadedModel, X: Any) -> RuleVerdict:
    import numpy as np

    rows = [X.iloc[[i % len(X)]] for i in range(WARMUP_CALLS + LATENCY_CALLS)]  # sliced before timing
    took = []
    try:
        for i, row in enumerate(rows):
            start = time.perf_counter()
            model.predict(row)
            if i >= WARMUP_CALLS:
                took.append(time.perf_counter() - start)
    except Exception as e:
        return RuleVerdict("latency", False, {}, f"latency: the candidate failed to predict one row: {e}")
    p99, p50 = (float(np.percentile(took, q)) * 1000 for q in (99, 50))
    limit = float(rule.p99_ms or 0)
    passed = p99 < limit
    numbers = {"p99_ms": p99, "p50_ms": p50, "limit_ms": limit, "calls": float(len(took))}
    side = "under" if passed else "over"
    why = f"latency: p99 {p99:.2f} ms of {len(took)} one-row predictions, {side} the limit {limit:g} ms"
    return RuleVerdict("latency", passed, numbers, why)


def _validation_rule(rule: GateRule, uri: str, data: DataClient) -> RuleVerdict:
    from loopline.data.validation import validate

    result = validate(uri, str(rule.suite), client=data)
    errors = [r.label for r in result.results if not r.passed_or_warning]
    stats = result.statistics()
    numbers = {"expectations": float(stats["evaluated"]), "failed": float(len(errors))}
    numbers |= {"warnings": float(stats["warnings"]), "rows": float(result.num_rows)}
    if errors:
        why = f"validation: {len(errors)} of {stats['evaluated']} expectations of {result.suite!r} failed: "
        return RuleVerdict("validation", False, numbers, why + ", ".join(errors))
    return RuleVerdict("validation", True, numbers, f"validation: {result.suite!r} passed on {uri}")


def _signature_rule(cand: Signature | None, champ: Signature | None, has_champion: bool) -> RuleVerdict:
    import numpy as np

    if not has_champion or cand is None or champ is None or not cand.inputs or not champ.inputs:
        side = "the candidate" if cand is None or not cand.inputs else "the champion"
        why = "no champion" if not has_champion else f"{side} has no input signature"
        return RuleVerdict("signature", True, {}, f"signature: nothing to compare ({why})")
    problems: list[str] = []
    if (cand.tensor is None) != (champ.tensor is None):
        problems.append("one takes a tensor, the other columns")
    elif cand.tensor is not None and champ.tensor is not None:
        a, b = cand.tensor, champ.tensor
        if not np.can_cast(np.dtype(b.dtype), np.dtype(a.dtype), "same_kind"):
            problems.append(f"the candidate takes {a.dtype}, the champion {b.dtype}")
        if len(a.shape) != len(b.shape) or any(
            x not in (-1, y) for x, y in zip(a.shape, b.shape, strict=False)
        ):
            problems.append(f"the candidate takes shape {list(a.shape)}, the champion {list(b.shape)}")
    else:
        theirs = {c.name: c.type for c in champ.columns if c.name is not None}
        mine = {c.name: c for c in cand.columns if c.name is not None}
        needed = sorted(str(n) for n, c in mine.items() if c.required and n not in theirs)
        if needed:
            problems.append(
                "the candidate requires " + ", ".join(needed) + ", which the champion did not take"
            )
        for name, kind in theirs.items():
            if name in mine and kind not in _ACCEPTS.get(mine[name].type, {mine[name].type}):
                problems.append(
                    f"column {name!r} is {mine[name].type} in the candidate, {kind} in the champion"
                )
    numbers = {"inputs": float(len(champ.inputs)), "problems": float(len(problems))}
    if problems:
        return RuleVerdict("signature", False, numbers, "signature: " + "; ".join(problems))
    return RuleVerdict("signature", True, numbers, "signature: the candidate takes the champion's inputs")


def _held_out(gate: Gate, mv: ModelVersion, registry: RegistryClient, data: DataClient) -> str:
    """The held-out version to judge on, as a concrete ``datasets:/<name>/<version>``."""
    uri = gate.dataset
    if not uri:
        run = registry.tracking.get_run(mv.run_id) if mv.run_id else None
        found = [
            i.dataset.name
            for i in (run.inputs if run is not None else ())
            if i.tags.get("mlflow.data.context", "").lower() in HOLDOUT_CONTEXTS
            and i.dataset.source.startswith("datasets:/")
        ]
        if not found:
            raise InvalidInput(
                f"The gate names no held-out dataset, and {mv.uri}'s run logged none (eval, test, holdout).",
                hint="Set the gate's dataset (datasets:/<name>@<alias>), or log the held-out data in the "
                'training run: loopline.log_dataset(df, name="holdout", context="eval").',
            )
        uri = f"datasets:/{found[0]}"  # its newest version
    return data.get_version(uri).uri


def judge(
    gate: Gate, candidate: str, champion: str | None, *, client: Any = None, allow_pickle: bool = False
) -> Verdict:
    """Judge ``candidate`` against ``champion`` (``models:/<name>/<version>`` URIs; ``None``: no
    champion yet) by every rule of ``gate``, and tag the candidate with the outcome.

    ``client`` is a ``RegistryClient`` or a tracking ``Client`` (default: the environment's);
    ``allow_pickle`` is passed to ``load_model`` (unpickling runs code: only for models you trust).
    """
    import numpy as np

    from loopline.automation.bootstrap import METRICS
    from loopline.data import DataClient
    from loopline.registry import RegistryClient, load_model
    from loopline.registry.evaluation import model_outputs

    for rule in gate.rules:
        if rule.kind == "metric" and rule.metric not in METRICS:
            raise InvalidInput(
                f"The gate cannot judge the metric {rule.metric!r}.",
                hint="Use one of " + ", ".join(METRICS) + ".",
            )
    registry = client if isinstance(client, RegistryClient) else RegistryClient(client)
    cand = load_model(candidate, client=registry, allow_pickle=allow_pickle)
    if cand.version is None:
        raise InvalidInput(
            f"{candidate} is not a registered model version.", hint="Judge models:/<name>/<version>."
        )
    champ = load_model(champion, client=registry, allow_pickle=allow_pickle) if champion else None
    data = DataClient(context=registry.tracking.context)
    uri = _held_out(gate, cand.version, registry, data)
    frame = data.load(uri)
    if gate.target not in frame.columns or len(frame) == 0:
        raise InvalidInput(
            f"{uri} has no rows or no target column {gate.target!r}.",
            hint="Columns: " + ", ".join(map(str, frame.columns)) + ". Set the gate's target.",
        )
    X, y = frame.drop(columns=[gate.target]), np.asarray(frame[gate.target])
    outputs: Outputs = functools.cache(lambda m: model_outputs(m, X, y, gate.model_type))
    checks: dict[str, Callable[[GateRule], RuleVerdict]] = {
        "metric": lambda r: _metric_rule(r, outputs, y, cand, champ),
        "latency": lambda r: _latency_rule(r, cand, X),
        "validation": lambda r: _validation_rule(r, uri, data),
        "signature": lambda r: _signature_rule(
            cand.signature, champ.signature if champ else None, champ is not None
        ),
    }
    rules = tuple(checks[rule.kind](rule) for rule in gate.rules)
    champ_uri = champ.version.uri if champ is not None and champ.version is not None else (champion or "")
    verdict = Verdict(all(r.passed for r in rules), rules, uri, cand.version.uri, champ_uri)
    _tag(registry, cand.version, verdict)
    return verdict


def _tag(registry: RegistryClient, mv: ModelVersion, verdict: Verdict) -> None:
    """Record the outcome on the candidate: kept either way, and explained."""
    tags = {
        GATE_TAG: "passed" if verdict.passed else "failed",
        REASON_TAG: verdict.reason[:_TAG_LIMIT],
        DATASET_TAG: verdict.dataset,
    }
    for key, value in tags.items():
        registry.store.set_model_version_tag(mv.name, mv.version, key, value)


__all__ = [
    "DATASET_TAG",
    "GATE_TAG",
    "REASON_TAG",
    "RuleVerdict",
    "Verdict",
    "judge",
    "verdict_from_json",
    "verdict_to_json",
]
