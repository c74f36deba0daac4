"""Plain, frozen value objects shared by every layer: what stores return and clients get.

Users never see ORM rows. Field names follow MLflow's entities so code written against
``mlflow.entities`` reads the same here.
"""

from loopline.entities.data import DatasetSummary, DatasetVersion, ValidationRecord
from loopline.entities.registry import (
    STAGES,
    LoggedModel,
    LoggedModelStatus,
    ModelMetric,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
)
from loopline.entities.tracking import (
    Dataset,
    DatasetInput,
    Experiment,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
)

__all__ = [
    "STAGES",
    "Dataset",
    "DatasetInput",
    "DatasetSummary",
    "DatasetVersion",
    "Experiment",
    "LifecycleStage",
    "LoggedModel",
    "LoggedModelStatus",
    "Metric",
    "ModelMetric",
    "ModelVersion",
    "ModelVersionStatus",
    "Param",
    "RegisteredModel",
    "Run",
    "RunData",
    "RunInfo",
    "RunStatus",
    "RunTag",
    "ValidationRecord",
]
