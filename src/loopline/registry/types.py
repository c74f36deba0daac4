"""Registered models, their versions and aliases, and MLflow 3's logged models."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from loopline.tracking.types import Metric


class LoggedModelStatus(StrEnum):
    PENDING = "LOGGED_MODEL_PENDING"
    READY = "LOGGED_MODEL_READY"
    FAILED = "LOGGED_MODEL_UPLOAD_FAILED"


class ModelVersionStatus(StrEnum):
    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    FAILED_REGISTRATION = "FAILED_REGISTRATION"
    READY = "READY"


STAGES = ("None", "Staging", "Production", "Archived")  # MLflow's legacy stages


@dataclass(frozen=True, slots=True)
class ModelMetric(Metric):
    """A point of a logged model's metric: the run that logged it and the dataset it was measured on."""

    run_id: str = ""
    dataset_name: str = ""
    dataset_digest: str = ""


@dataclass(frozen=True, slots=True)
class LoggedModel:
    """A model saved by a run (MLflow 3): its files live at ``artifact_location``."""

    model_id: str
    experiment_id: str
    name: str
    artifact_location: str
    creation_timestamp: int
    last_updated_timestamp: int
    status: LoggedModelStatus = LoggedModelStatus.PENDING
    status_message: str = ""
    model_type: str = ""
    source_run_id: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: tuple[Metric, ...] = ()  # ModelMetric when read from a store

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_id}"


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """Version ``version`` of registered model ``name``; ``source`` says where its files are."""

    name: str
    version: int
    creation_timestamp: int
    last_updated_timestamp: int
    source: str
    run_id: str = ""
    model_id: str = ""
    user_id: str = ""
    description: str = ""
    current_stage: str = "None"
    status: ModelVersionStatus = ModelVersionStatus.READY
    status_message: str = ""
    run_link: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    digests: Mapping[str, str] = field(default_factory=dict)  # file path -> BLAKE3, checked on load

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, int] = field(default_factory=dict)  # alias -> version
    latest_versions: tuple[ModelVersion, ...] = ()
