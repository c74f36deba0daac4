"""Pipelines: reproducible, cached DAGs of typed Python steps, on this machine or on Ray.

A ``@step`` is a typed function; a ``@pipeline`` wires steps by passing outputs to inputs, and
the DAG follows. Each run records its code version, environment, seed, parameters, inputs and
outputs (``pipelines:/<name>/<run_id>``, which is also the tracking run ``runs:/<run_id>``);
steps whose code, inputs and parameters are unchanged are skipped and their outputs reused; a
failed run resumes where it stopped. ``sweep`` runs a parameter search as parallel runs, and
``loopline server`` runs cron schedules. See docs/pipelines.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopline.lazy import lazy_names
from loopline.pipelines.graph import Step
from loopline.pipelines.options import StepOptions
from loopline.pipelines.pipeline import Pipeline, compose, load_target, pipeline
from loopline.pipelines.step import dataset, step

if TYPE_CHECKING:
    from loopline.pipelines.results import PipelineRun, StepFailed
    from loopline.pipelines.runner import Runner
    from loopline.pipelines.sweeps import SweepResult, sweep

_LAZY = {
    "PipelineRun": "loopline.pipelines.results",
    "Runner": "loopline.pipelines.runner",
    "StepFailed": "loopline.pipelines.results",
    "SweepResult": "loopline.pipelines.sweeps",
    "sweep": "loopline.pipelines.sweeps",
}

__all__ = [
    "Pipeline",
    "PipelineRun",
    "Runner",
    "Step",
    "StepFailed",
    "StepOptions",
    "SweepResult",
    "compose",
    "dataset",
    "load_target",
    "pipeline",
    "step",
    "sweep",
]


__getattr__ = lazy_names(__name__, _LAZY)
