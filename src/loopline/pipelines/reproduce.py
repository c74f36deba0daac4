"""``rerun``: repeat a past pipeline run and say whether it reproduced.

The rerun loads the same pipeline (by the run's recorded target), with the same parameters and
seed, with the cache off so every step really runs again, then compares each step's output with
the original's by content (``compare``: equal digests, else tables by values, models by
parameters, fitted state and predictions; never a saved model's bytes, which differ between two
saves of one model) and the two runs' environments (git commit and uncommitted changes, Python,
packages). Outputs that differ while the environment matched point at nondeterminism (unseeded
randomness, time, threads); a changed environment explains differences too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loopline.pipelines import environment
from loopline.pipelines.compare import difference
from loopline.pipelines.pipeline import Pipeline, load_target
from loopline.pipelines.results import PipelineRun
from loopline.pipelines.runner import Runner


@dataclass
class RerunReport:
    original: str
    rerun: PipelineRun
    same: list[str] = field(default_factory=list)  # nodes with identical outputs
    different: list[str] = field(default_factory=list)
    differences: dict[str, str] = field(default_factory=dict)  # node -> what differs
    missing: list[str] = field(default_factory=list)  # steps that did not succeed in one of the runs
    environment: list[str] = field(default_factory=list)  # what changed in the environment

    @property
    def matched(self) -> bool:
        return self.rerun.status == "succeeded" and not self.different and not self.missing

    def to_json(self) -> dict[str, Any]:
        return {
            "original_run_id": self.original,
            "rerun_run_id": self.rerun.run_id,
            "status": self.rerun.status,
            "matched": self.matched,
            "same": self.same,
            "different": self.different,
            "differences": self.differences,
            "missing": self.missing,
            "environment_changes": self.environment,
        }


def rerun(runner: Runner, run_id: str, pipeline: Pipeline | None = None) -> RerunReport:
    """Run ``run_id`` again (same target, parameters and seed, no cache) and compare outputs."""
    original = runner.store.get_run(run_id)
    pipeline = pipeline or load_target(original.target)
    before = {s.node: s for s in runner.store.steps(run_id)}
    result = runner.run(pipeline, original.params, cache=False, seed=original.seed, rerun_of=run_id)
    report = RerunReport(run_id, result)
    store = runner.client.artifacts
    for node, step in result.steps.items():
        old = before.get(node)
        if old is None or old.status not in ("succeeded", "cached") or step.status != "succeeded":
            report.missing.append(node)
        elif not (diff := difference(old, step, store, {d: before[d] for d in old.inputs if d in before})):
            report.same.append(node)
        else:
            report.different.append(node)
            report.differences[node] = diff
    after = runner.store.get_run(result.run_id)
    report.environment = environment.compare(dict(original.environment), dict(after.environment))
    return report
