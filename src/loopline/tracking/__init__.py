"""Experiment tracking: experiments, runs, params, metrics (buffered), tags and artifacts.

``Client`` is the object; the module-level verbs (``start_run``, ``log_metric``, …) are thin
wrappers over a default client and the active run of the current thread or task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopline.lazy import lazy_names

if TYPE_CHECKING:
    from loopline.tracking.client import Client as Client
    from loopline.tracking.fluent import (
        ActiveRun as ActiveRun,
        active_run as active_run,
        default_client as default_client,
        end_run as end_run,
        flush as flush,
        get_metric_history as get_metric_history,
        get_tracking_uri as get_tracking_uri,
        log_artifact as log_artifact,
        log_artifacts as log_artifacts,
        log_metric as log_metric,
        log_metrics as log_metrics,
        log_param as log_param,
        log_params as log_params,
        log_text as log_text,
        search_runs as search_runs,
        set_experiment as set_experiment,
        set_tag as set_tag,
        set_tags as set_tags,
        set_tracking_uri as set_tracking_uri,
        start_run as start_run,
    )

# Loaded on first use (PEP 562): importing ``loopline.tracking.types`` (which every store does)
# must not pay for the client, its buffer and the stores it opens.
_LAZY = {"Client": "loopline.tracking.client"} | dict.fromkeys(
    [
        "ActiveRun",
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
    ],
    "loopline.tracking.fluent",
)


__getattr__ = lazy_names(__name__, _LAZY)


__all__ = sorted(_LAZY)
