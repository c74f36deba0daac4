"""Loopline: the machine-learning lifecycle as one closed loop.

    import loopline

    with loopline.start_run(experiment="iris") as run:
        loopline.log_params({"C": 1.0, "kernel": "rbf"})
        for epoch in range(10):
            loopline.log_metric("loss", 1 / (epoch + 1), step=epoch)
        loopline.log_artifact("confusion.png")

    loopline.search_runs(["iris"], "metrics.loss < 0.2", order_by=["metrics.loss"])

Importing is cheap: the verbs below load their modules on first use (PEP 562).
"""

from __future__ import annotations

from loopline._version import __version__ as __version__
from loopline.lazy import lazy_names

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: every CLI start pays it
if TYPE_CHECKING:
    from loopline.config import Settings as Settings
    from loopline.data import (
        DataClient as DataClient,
        get_dataset_version as get_dataset_version,
        load_dataset as load_dataset,
        log_dataset as log_dataset,
    )
    from loopline.data.types import DatasetVersion as DatasetVersion
    from loopline.errors import LooplineError as LooplineError
    from loopline.features import FeatureStore as FeatureStore
    from loopline.monitoring.drift import drift as drift
    from loopline.pipelines.pipeline import pipeline as pipeline
    from loopline.pipelines.step import step as step
    from loopline.registry import (
        LoadedModel as LoadedModel,
        RegistryClient as RegistryClient,
        infer_signature as infer_signature,
        load_model as load_model,
        log_model as log_model,
        save_model as save_model,
    )
    from loopline.registry.evaluation import EvaluationResult as EvaluationResult, evaluate as evaluate
    from loopline.tracking import (
        ActiveRun as ActiveRun,
        Client as Client,
        active_run as active_run,
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
    from loopline.tracking.types import (
        Experiment as Experiment,
        Metric as Metric,
        Param as Param,
        Run as Run,
        RunInfo as RunInfo,
        RunStatus as RunStatus,
        RunTag as RunTag,
    )

# The public API: each name and the module it loads from, on first use. ``__all__`` and ``dir()`` derive
# from this table; the block for type checkers above mirrors it (tests/test_package.py checks the two).
_LAZY = {
    "ActiveRun": "loopline.tracking",
    "Client": "loopline.tracking",
    "DataClient": "loopline.data",
    "DatasetVersion": "loopline.data.types",
    "EvaluationResult": "loopline.registry.evaluation",
    "Experiment": "loopline.tracking.types",
    "FeatureStore": "loopline.features",
    "LoadedModel": "loopline.registry",
    "LooplineError": "loopline.errors",
    "Metric": "loopline.tracking.types",
    "Param": "loopline.tracking.types",
    "RegistryClient": "loopline.registry",
    "Run": "loopline.tracking.types",
    "RunInfo": "loopline.tracking.types",
    "RunStatus": "loopline.tracking.types",
    "RunTag": "loopline.tracking.types",
    "Settings": "loopline.config",
    "active_run": "loopline.tracking",
    "drift": "loopline.monitoring",
    "end_run": "loopline.tracking",
    "evaluate": "loopline.registry.evaluation",
    "flush": "loopline.tracking",
    "get_dataset_version": "loopline.data",
    "get_metric_history": "loopline.tracking",
    "get_tracking_uri": "loopline.tracking",
    "infer_signature": "loopline.registry",
    "load_dataset": "loopline.data",
    "load_model": "loopline.registry",
    "log_artifact": "loopline.tracking",
    "log_artifacts": "loopline.tracking",
    "log_dataset": "loopline.data",
    "log_metric": "loopline.tracking",
    "log_metrics": "loopline.tracking",
    "log_model": "loopline.registry",
    "log_param": "loopline.tracking",
    "log_params": "loopline.tracking",
    "log_text": "loopline.tracking",
    "pipeline": "loopline.pipelines",
    "save_model": "loopline.registry",
    "search_runs": "loopline.tracking",
    "set_experiment": "loopline.tracking",
    "set_tag": "loopline.tracking",
    "set_tags": "loopline.tracking",
    "set_tracking_uri": "loopline.tracking",
    "start_run": "loopline.tracking",
    "step": "loopline.pipelines",
}

__all__ = sorted(["__version__", *_LAZY])


__getattr__ = lazy_names(__name__, _LAZY)


def __dir__() -> list[str]:
    return __all__
