"""Experiment tracking: experiments, runs, params, metrics (buffered), tags and artifacts.

``Client`` is the object; the module-level verbs (``start_run``, ``log_metric``, …) are thin
wrappers over a default client and the active run of the current thread or task.
"""

from loopline.tracking.client import Client
from loopline.tracking.fluent import (
    ActiveRun,
    active_run,
    default_client,
    end_run,
    flush,
    get_metric_history,
    get_tracking_uri,
    log_artifact,
    log_artifacts,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_text,
    search_runs,
    set_experiment,
    set_tag,
    set_tags,
    set_tracking_uri,
    start_run,
)

__all__ = [
    "ActiveRun",
    "Client",
    "active_run",
    "default_client",
    "end_run",
    "flush",
    "get_metric_history",
    "get_tracking_uri",
    "log_artifact",
    "log_artifacts",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]
