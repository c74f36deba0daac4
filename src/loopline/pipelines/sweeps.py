"""Parameter sweeps: a grid, random or Optuna (TPE) search run as parallel pipeline runs.

Every trial is a pipeline run, hence a tracked run (``runs:/<id>``) tagged with its sweep and a
child of the sweep's own tracking run; the objective is a number the pipeline returns (its
output, or the key ``metric`` of a returned dict). When the search ends the best trial is tagged
``loopline.sweep.best=true`` and the sweep's run gets its parameters and value. Trials share the
step cache, so steps that do not depend on the swept parameters run once for the whole sweep.

Search spaces, in Python or as ``-s`` options of ``loopline sweep``:

==========================  ================================================
``lr=0.01,0.1,1``           the listed values (grid, random and Optuna)
``lr=loguniform:1e-4:1e-1``  a float, log-uniform (random and Optuna)
``dropout=uniform:0:0.5``   a float, uniform
``depth=int:2:8``           an integer in [2, 8]
==========================  ================================================
"""

from __future__ import annotations

import itertools
import math
import random
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from loopline.errors import InvalidInput

if TYPE_CHECKING:
    from loopline.config import Settings
    from loopline.pipelines.pipeline import Pipeline
    from loopline.pipelines.runner import Runner

METHODS = ("grid", "random", "optuna")


@dataclass(frozen=True)
class Dimension:
    kind: str  # choice | uniform | loguniform | int
    values: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0

    def sample(self, rng: random.Random) -> Any:
        if self.kind == "choice":
            return rng.choice(self.values)
        if self.kind == "int":
            return rng.randint(int(self.low), int(self.high))
        if self.kind == "loguniform":
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)

    def suggest(self, trial: Any, name: str) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(name, list(self.values))
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high))
        return trial.suggest_float(name, self.low, self.high, log=self.kind == "loguniform")

    def to_json(self) -> Any:
        return (
            list(self.values)
            if self.kind == "choice"
            else {"kind": self.kind, "low": self.low, "high": self.high}
        )


def parse_space(specs: Sequence[str] | Mapping[str, Any]) -> dict[str, Dimension]:
    """``["lr=0.01,0.1", "depth=int:2:8"]`` or ``{"lr": [0.01, 0.1], "depth": ("int", 2, 8)}``."""
    items: list[tuple[str, Any]] = list(specs.items()) if isinstance(specs, Mapping) else []
    if not isinstance(specs, Mapping):
        for spec in specs:
            name, sep, rest = spec.partition("=")
            if not sep or not name.strip():
                raise InvalidInput(
                    f"Invalid search dimension {spec!r}.", hint="Use NAME=v1,v2 or NAME=int:2:8."
                )
            items.append((name.strip(), rest.strip()))
    out: dict[str, Dimension] = {}
    for name, raw in items:
        out[name] = _dimension(name, raw)
    if not out:
        raise InvalidInput("A sweep needs a search space.", hint="Pass -s lr=0.01,0.1 (one per parameter).")
    return out


def _dimension(name: str, raw: Any) -> Dimension:
    if isinstance(raw, Dimension):
        return raw
    if isinstance(raw, tuple) and raw and raw[0] in ("int", "uniform", "loguniform"):
        raw = ":".join(str(x) for x in raw)
    if isinstance(raw, list | tuple):
        return Dimension("choice", tuple(raw))
    text = str(raw)
    kind, sep, rest = text.partition(":")
    if sep and kind in ("int", "uniform", "loguniform"):
        try:
            low, high = (float(x) for x in rest.split(":"))
        except ValueError:
            raise InvalidInput(
                f"Invalid range for {name!r}: {text!r}.", hint=f"Use {kind}:LOW:HIGH."
            ) from None
        if low > high or (kind == "loguniform" and low <= 0):
            raise InvalidInput(
                f"Invalid range for {name!r}: {text!r}.", hint="LOW <= HIGH, and LOW > 0 for loguniform."
            )
        return Dimension(kind, (), low, high)
    if sep and kind == "choice":
        text = rest
    return Dimension("choice", tuple(yaml.safe_load(v) if v.strip() else v for v in text.split(",")))


@dataclass
class Trial:
    number: int
    params: dict[str, Any]
    run_id: str = ""
    status: str = "pending"
    value: float | None = None
    error: str = ""


@dataclass
class SweepResult:
    sweep_id: str
    metric: str
    direction: str
    trials: list[Trial] = field(default_factory=list)

    @property
    def best(self) -> Trial | None:
        scored = [t for t in self.trials if t.value is not None]
        if not scored:
            return None
        pick = max if self.direction == "max" else min
        return pick(scored, key=lambda t: t.value if t.value is not None else 0.0)


def objective(outputs: Any, metric: str) -> float:
    """The number a trial scores: the output itself, or ``outputs[metric]`` of a dict output."""
    if isinstance(outputs, int | float) and not isinstance(outputs, bool):
        return float(outputs)
    if isinstance(outputs, Mapping):
        value = outputs.get(metric)
        if isinstance(value, Mapping) and len(value) == 1:
            value = next(iter(value.values()))
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    raise InvalidInput(
        f"The pipeline's output has no number {metric!r} to optimise.",
        hint=f"Return it: `return {{{metric!r}: score}}` (or pass --metric with a key it returns).",
    )


def _grid(space: Mapping[str, Dimension]) -> Iterator[dict[str, Any]]:
    for name, d in space.items():
        if d.kind != "choice":
            raise InvalidInput(
                f"A grid needs listed values; {name!r} is a {d.kind} range.", hint="Use random or optuna."
            )
    names = list(space)
    for combo in itertools.product(*(space[n].values for n in names)):
        yield dict(zip(names, combo, strict=True))


def sweep(
    pipeline: Pipeline,
    space: Sequence[str] | Mapping[str, Any],
    *,
    metric: str = "output",
    direction: str = "max",
    method: str = "grid",
    trials: int | None = None,
    parallel: int = 2,
    params: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
    executor: Any = None,
    seed: int = 0,
    runner: Runner | None = None,
    on_trial: Callable[[Trial], None] | None = None,
) -> SweepResult:
    """Search ``space`` with ``method``; each trial a pipeline run; returns every trial and the best.

    Example:
        >>> result = sweep(train, {"lr": [0.01, 0.1, 1.0]}, metric="auc")  # doctest: +SKIP
        >>> result.best.params  # doctest: +SKIP
        {'lr': 0.1}
    """
    from loopline.pipelines.runner import Runner

    if method not in METHODS:
        raise InvalidInput(f"Unknown search method {method!r}.", hint=f"Use one of {', '.join(METHODS)}.")
    if direction not in ("max", "min"):
        raise InvalidInput(f"Unknown direction {direction!r}.", hint="Use max or min.")
    dims = parse_space(space)
    unknown = sorted(set(dims) - set(pipeline.params))
    if unknown:
        raise InvalidInput(
            f"Pipeline {pipeline.name!r} has no parameter {', '.join(map(repr, unknown))} to sweep.",
            hint=f"Its parameters: {', '.join(pipeline.params) or 'none'}.",
        )
    base = dict(params or {})
    pipeline.resolve_params(
        {**base, **{n: d.sample(random.Random(0)) for n, d in dims.items()}}
    )  # fail early
    own = runner is None
    runner = runner or Runner(settings, executor=executor)
    try:
        return _search(
            runner, pipeline, dims, base, metric, direction, method, trials, parallel, seed, on_trial
        )
    finally:
        if own:
            runner.close()


def _search(
    runner: Runner,
    pipeline: Pipeline,
    dims: dict[str, Dimension],
    base: dict[str, Any],
    metric: str,
    direction: str,
    method: str,
    trials: int | None,
    parallel: int,
    seed: int,
    on_trial: Callable[[Trial], None] | None,
) -> SweepResult:
    client = runner.client
    exp = client.set_experiment(pipeline.name)
    parent = client.create_run(
        exp.experiment_id, run_name=f"sweep-{pipeline.name}", tags={"loopline.sweep": method}
    )
    sweep_id = parent.info.run_id
    space_json = {n: d.to_json() for n, d in dims.items()}
    runner.store.create_sweep(sweep_id, pipeline.name, pipeline.target, method, metric, direction, space_json)
    client.log_batch(sweep_id, params={"method": method, "metric": metric, "direction": direction, **base})
    result = SweepResult(sweep_id, metric, direction)
    lock = threading.Lock()
    study: Any = None
    if method == "optuna":
        try:
            import optuna
        except ImportError:
            raise InvalidInput("The optuna method needs Optuna.", hint="pip install optuna") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            direction="maximize" if direction == "max" else "minimize",
            sampler=optuna.samplers.TPESampler(seed=seed),
        )
    if method == "grid":
        planned: list[dict[str, Any]] | None = list(_grid(dims))[: trials or None]
    elif method == "random":
        rng = random.Random(seed)
        planned = [{n: d.sample(rng) for n, d in dims.items()} for _ in range(trials or 10)]
    else:
        planned = None
    count = len(planned) if planned is not None else (trials or 10)

    def run_one(number: int) -> None:
        handle = None
        with lock:
            if planned is not None:
                chosen = planned[number]
            else:
                handle = study.ask()
                chosen = {n: d.suggest(handle, n) for n, d in dims.items()}
            trial = Trial(number, chosen)
            result.trials.append(trial)
        tags = {"mlflow.parentRunId": sweep_id, "loopline.sweep.trial": str(number)}
        try:
            run = runner.run(pipeline, {**base, **chosen}, sweep_id=sweep_id, tags=tags)
            trial.run_id, trial.status = run.run_id, run.status
            if run.status == "succeeded":
                trial.value = objective(run.outputs, metric)
            else:
                trial.error = run.error
        except Exception as e:  # one bad trial does not stop the sweep
            trial.status, trial.error = "failed", str(e)
        if study is not None:
            with lock:
                if trial.value is not None:
                    study.tell(handle, trial.value)
                else:
                    study.tell(handle, state=optuna.trial.TrialState.FAIL)
        if on_trial is not None:
            on_trial(trial)

    status = "failed"
    try:
        with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="loopline-trial") as pool:
            list(pool.map(run_one, range(count)))
        status = "succeeded"
    finally:
        result.trials.sort(key=lambda t: t.number)
        best = result.best
        if best is not None:
            client.set_tag(best.run_id, "loopline.sweep.best", "true")
            client.log_batch(
                sweep_id,
                params={f"best.{k}": v for k, v in best.params.items()},
                tags={"loopline.sweep.best_run_id": best.run_id},
            )
            client.log_metric(sweep_id, f"best_{metric}", best.value or 0.0, synchronous=True)
        runner.store.finish_sweep(sweep_id, status, best.run_id if best else "", best.value if best else None)
        client.set_terminated(sweep_id, "FINISHED" if status == "succeeded" and best else "FAILED")
    return result
