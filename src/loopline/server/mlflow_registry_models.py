"""MLflow's model-registry and logged-model shapes (``model_registry.proto``, ``service.proto``), for the
OpenAPI document of ``mlflow_registry.py`` (which reads and writes them by hand, like
``mlflow_models.py``'s tracking routes)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from loopline.registry.mlflow_json import DIGESTS_FIELD
from loopline.server.mlflow_models import (
    ExperimentId,
    Filter,
    Int64,
    Key,
    KeyValue,
    OrderBy,
    PageToken,
    RunId,
    Tag,
    TagValue,
)
from loopline.server.openapi_models import Answer, NonEmpty

# registry/sql_store.py: at most 256 characters, not blank, no '/', '@' or ':' (they delimit URIs).
ModelName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=256,
        pattern=r"^[^/@:]*[^/@:\s][^/@:]*$",
        description="a registered model's name: no '/', '@' or ':'",
    ),
]
Version = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,8}$", description="a version number, as a string")]
# Letters, digits, _ and -; not "latest" and not v<digits>, which read as versions.
Alias = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        pattern=r"^(?:[A-UW-Za-uw-z0-9_\-][A-Za-z0-9_\-]*|[vV](?:[A-Za-z0-9_\-]*[A-Za-z_\-][A-Za-z0-9_\-]*)?)$",
        description="letters, digits, _ and -; not 'latest' nor v<digits>",
    ),
]
Stage = Literal["None", "Staging", "Production", "Archived"]
LoggedModelStatus = Literal["LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"]
Digests = Annotated[
    dict[str, Annotated[str, Field(pattern=r"^[0-9a-f]{1,128}$")]],
    Field(description="{file path: BLAKE3 hex}: Loopline's loader checks every file against it"),
]


# ---- answers -------------------------------------------------------------------------------------


class ModelVersion(Answer):
    name: str
    version: str
    creation_timestamp: int
    last_updated_timestamp: int
    user_id: str
    current_stage: str
    description: str
    source: str
    run_id: str
    status: str
    run_link: str
    status_message: str | None = None
    tags: list[KeyValue] | None = None
    aliases: list[str] | None = None
    model_id: str | None = None
    loopline_digests: dict[str, str] | None = Field(None, alias=DIGESTS_FIELD)


class AliasOut(Answer):
    alias: str
    version: str


class RegisteredModel(Answer):
    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    description: str | None = None
    latest_versions: list[ModelVersion] | None = None
    tags: list[KeyValue] | None = None
    aliases: list[AliasOut] | None = None


class RegisteredModelAnswer(Answer):
    registered_model: RegisteredModel


class RegisteredModelsPage(Answer):
    registered_models: list[RegisteredModel] | None = None
    next_page_token: str | None = None


class ModelVersionAnswer(Answer):
    model_version: ModelVersion


class ModelVersionsPage(Answer):
    model_versions: list[ModelVersion] | None = None
    next_page_token: str | None = None


class DownloadUri(Answer):
    artifact_uri: str


class LoggedModelMetric(Answer):
    key: str
    value: float | str
    timestamp: int
    step: int
    model_id: str
    run_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


class LoggedModelInfo(Answer):
    model_id: str
    experiment_id: str
    name: str
    creation_timestamp_ms: int
    last_updated_timestamp_ms: int
    artifact_uri: str
    status: LoggedModelStatus
    model_type: str
    source_run_id: str
    status_message: str
    tags: list[KeyValue] | None = None


class LoggedModelData(Answer):
    params: list[KeyValue] | None = None
    metrics: list[LoggedModelMetric] | None = None


class LoggedModel(Answer):
    info: LoggedModelInfo
    data: LoggedModelData


class LoggedModelAnswer(Answer):
    model: LoggedModel


class LoggedModelsPage(Answer):
    models: list[LoggedModel] | None = None
    next_page_token: str | None = None


# ---- registered models: requests -----------------------------------------------------------------


class CreateRegisteredModel(BaseModel):
    name: ModelName
    tags: list[Tag] = []
    description: str | None = None


class ModelRef(BaseModel):
    name: ModelName


class RenameRegisteredModel(BaseModel):
    name: ModelName
    new_name: ModelName


class UpdateRegisteredModel(BaseModel):
    name: ModelName
    description: str | None = None


class SearchRegisteredModels(BaseModel):
    filter: Filter | None = None
    max_results: Annotated[int, Field(ge=1, le=1000)] = 100
    order_by: OrderBy = []
    page_token: PageToken | None = None


class SetRegisteredModelTag(BaseModel):
    name: ModelName
    key: Key
    value: TagValue = ""


class DeleteRegisteredModelTag(BaseModel):
    name: ModelName
    key: Key


class SetAlias(BaseModel):
    name: ModelName
    alias: Alias
    version: Version


class AliasRef(BaseModel):
    name: ModelName
    alias: Alias


class GetLatestVersions(BaseModel):
    name: ModelName
    stages: list[Stage] = []


# ---- model versions: requests --------------------------------------------------------------------


class CreateModelVersion(BaseModel):
    """``source`` is where the files are: ``runs:/<run_id>/<path>``, ``models:/<model_id>``,
    ``models:/<name>/<version>``, a URI of an artifact store, or a folder inside the artifact folder
    of the run (or logged model) named by ``run_id`` (``model_id``)."""

    name: ModelName
    source: Annotated[str, Field(min_length=1, max_length=1024)]
    run_id: RunId | None = None
    tags: list[Tag] = []
    run_link: Annotated[str, Field(max_length=1024)] | None = None
    description: str | None = None
    model_id: Annotated[str, Field(max_length=64)] | None = None
    loopline_digests: Digests | None = Field(None, alias=DIGESTS_FIELD)


class VersionRef(BaseModel):
    name: ModelName
    version: Version


class UpdateModelVersion(VersionRef):
    description: str | None = None


class SearchModelVersions(BaseModel):
    filter: Filter | None = None
    max_results: Annotated[int, Field(ge=1, le=200_000)] = 200_000
    order_by: OrderBy = []
    page_token: PageToken | None = None


class TransitionStage(VersionRef):
    stage: Stage
    archive_existing_versions: bool = False


class SetModelVersionTag(VersionRef):
    key: Key
    value: TagValue = ""


class DeleteModelVersionTag(VersionRef):
    key: Key


# ---- logged models: requests ---------------------------------------------------------------------


class CreateLoggedModel(BaseModel):
    experiment_id: ExperimentId
    name: Annotated[str, Field(max_length=500)] | None = None
    model_type: Annotated[str, Field(max_length=500)] | None = None
    source_run_id: RunId | None = None
    params: list[Tag] = []
    tags: list[Tag] = []


class FinalizeLoggedModel(BaseModel):
    status: LoggedModelStatus


class SetLoggedModelTags(BaseModel):
    tags: list[Tag] = []


class LogLoggedModelParams(BaseModel):
    params: list[Tag] = []


class DatasetFilter(BaseModel):
    dataset_name: NonEmpty
    dataset_digest: str | None = None


class LoggedModelOrder(BaseModel):
    field_name: Literal["creation_timestamp", "creation_time"]
    ascending: Literal[False] = Field(description="Loopline lists logged models newest first only")


class SearchLoggedModels(BaseModel):
    experiment_ids: Annotated[list[ExperimentId], Field(min_length=1)]
    filter: Filter | None = None
    datasets: list[DatasetFilter] = []
    order_by: list[LoggedModelOrder] = []
    max_results: Annotated[int, Field(ge=1, le=50_000)] = 50
    page_token: PageToken | None = None


class ModelOutputIn(BaseModel):
    model_id: NonEmpty
    step: Int64 = 0


class LogOutputs(BaseModel):
    run_id: RunId
    models: list[ModelOutputIn]
