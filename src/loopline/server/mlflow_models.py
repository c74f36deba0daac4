"""MLflow's tracking and artifact shapes (protobuf JSON, ``service.proto``), for the OpenAPI document.

The routes in ``mlflow_tracking.py`` and ``mlflow_artifacts.py`` read and write these by hand
(orjson; see ``http.py``); the models only document them and let the contract test
(``tests/server/test_openapi_contract.py``) check that every answer has the documented shape and that
data generated from a request schema is taken. Constraints are the server's own: a request that fits
its schema is answered 200, or 404 for an object that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from loopline.metadata.limits import KEY, PARAM_VALUE, TAG_VALUE
from loopline.server.openapi_models import Answer, NonEmpty

# ---- scalars -------------------------------------------------------------------------------------

# The server takes any int64; the document says ±(2**53 - 1), JSON's exact integers, because FastAPI
# writes numeric bounds as doubles (2**63 - 1 would read as 2**63, which is refused).
SAFE = 2**53 - 1
Int64 = Annotated[int, Field(ge=-SAFE, le=SAFE)]
Millis = Annotated[int, Field(ge=0, le=SAFE, description="milliseconds since the epoch, UTC")]
# Numbers from lenient clients are accepted as well; 18 digits keep every documented ID in int64.
ExperimentId = Annotated[str, Field(pattern=r"^[0-9]{1,18}$", description="an experiment ID: digits")]
RunId = Annotated[str, Field(min_length=1, max_length=32, description="a run ID (32 hex digits)")]
_SEGMENT = r"(?:[\w\- :][\w\-. :]*|\.[\w\- :][\w\-. :]*|\.\.[\w\-. :]+)"
# tracking/validation.py:validate_key — letters, digits, _ - . space : /, a relative path.
Key = Annotated[
    str,
    Field(
        min_length=1,
        max_length=KEY,
        pattern=rf"^{_SEGMENT}(?:/{_SEGMENT})*/?$",
        description="letters, digits, _ - . : / and spaces; a relative path without '.', '..' or '//'",
    ),
]
TagValue = Annotated[str, Field(max_length=TAG_VALUE)]
ParamValue = Annotated[str, Field(max_length=PARAM_VALUE)]
Double = Annotated[
    float | Literal["NaN", "Infinity", "-Infinity"],
    Field(description='a number; "NaN", "Infinity" and "-Infinity" as protobuf writes them'),
]
ViewType = Literal["ACTIVE_ONLY", "DELETED_ONLY", "ALL"]
RunStatusName = Literal["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]
LifecycleStage = Literal["active", "deleted"]
OrderBy = Annotated[list[str], Field(description="e.g. ['metrics.loss ASC', 'start_time DESC']")]
Filter = Annotated[str, Field(description='MLflow\'s search grammar, e.g. "metrics.loss < 0.5"')]
PageToken = Annotated[str, Field(description="next_page_token of the previous page, as given")]


class Tag(BaseModel):
    key: Key
    value: TagValue = ""


class ParamIn(BaseModel):
    key: Key
    value: ParamValue


class KeyValue(Answer):
    key: str
    value: str


class MetricIn(BaseModel):
    key: Key
    value: Double
    timestamp: Int64
    step: Int64 = 0
    model_id: str | None = Field(None, description="MLflow 3: the logged model this point describes")
    dataset_name: Annotated[str, Field(max_length=500)] | None = None
    dataset_digest: Annotated[str, Field(max_length=64)] | None = None


class Metric(Answer):
    key: str
    value: Double
    timestamp: int
    step: int


# ---- answers -------------------------------------------------------------------------------------


class Experiment(Answer):
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: LifecycleStage
    creation_time: int | None = None
    last_update_time: int | None = None
    tags: list[KeyValue] | None = None


class RunInfo(Answer):
    run_id: str
    run_uuid: str = Field(description="the same as run_id (MLflow's older name)")
    run_name: str
    experiment_id: str
    user_id: str
    status: RunStatusName
    artifact_uri: str
    lifecycle_stage: LifecycleStage
    start_time: int | None = None
    end_time: int | None = None


class RunData(Answer):
    metrics: list[Metric] | None = Field(None, description="each metric's latest point")
    params: list[KeyValue] | None = None
    tags: list[KeyValue] | None = None


class DatasetOut(Answer):
    name: str
    digest: str
    source_type: str
    source: str
    schema_: str | None = Field(None, alias="schema")
    profile: str | None = None


class DatasetInputOut(Answer):
    dataset: DatasetOut
    tags: list[KeyValue] | None = None


class ModelRef(Answer):
    model_id: str


class ModelOutput(Answer):
    model_id: str
    step: int


class RunInputs(Answer):
    dataset_inputs: list[DatasetInputOut] | None = None
    model_inputs: list[ModelRef] | None = None


class RunOutputs(Answer):
    model_outputs: list[ModelOutput]


class Run(Answer):
    info: RunInfo
    data: RunData
    inputs: RunInputs
    outputs: RunOutputs | None = None


class ExperimentIdAnswer(Answer):
    experiment_id: str


class ExperimentAnswer(Answer):
    experiment: Experiment


class ExperimentsPage(Answer):
    experiments: list[Experiment]
    next_page_token: str | None = None


class RunAnswer(Answer):
    run: Run


class RunInfoAnswer(Answer):
    run_info: RunInfo


class RunsPage(Answer):
    runs: list[Run]
    next_page_token: str | None = None


class MetricsPage(Answer):
    metrics: list[Metric]
    next_page_token: str | None = None


# ---- experiments: requests -----------------------------------------------------------------------


class CreateExperiment(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=256, pattern=r"\S")]
    artifact_location: Annotated[str, Field(max_length=1024)] | None = Field(
        None, description="default: under the server's artifact root"
    )
    tags: list[Tag] = []


class GetExperiment(BaseModel):
    experiment_id: ExperimentId


class GetExperimentByName(BaseModel):
    experiment_name: NonEmpty


class SearchExperiments(BaseModel):
    view_type: ViewType = "ACTIVE_ONLY"
    max_results: Annotated[int, Field(ge=1, le=50_000)] = 1000
    filter: Filter | None = None
    order_by: OrderBy = []
    page_token: PageToken | None = None


class ExperimentRef(BaseModel):
    experiment_id: ExperimentId


class DeleteExperiment(BaseModel):
    experiment_id: Annotated[
        str, Field(pattern=r"^0*[1-9][0-9]{0,17}$", description="an experiment ID; not the Default one (0)")
    ]


class UpdateExperiment(BaseModel):
    experiment_id: ExperimentId
    new_name: Annotated[str, Field(min_length=1, max_length=256, pattern=r"\S")]


class SetExperimentTag(BaseModel):
    experiment_id: ExperimentId
    key: Key
    value: TagValue = ""


class DeleteExperimentTag(BaseModel):
    experiment_id: ExperimentId
    key: Key


# ---- runs: requests ------------------------------------------------------------------------------


class CreateRun(BaseModel):
    experiment_id: ExperimentId = Field("0", description="default: the Default experiment")
    user_id: Annotated[str, Field(max_length=255)] | None = None
    start_time: Millis | None = None
    tags: list[Tag] = []
    run_name: Annotated[str, Field(max_length=250)] | None = None


class RunRef(BaseModel):
    run_id: RunId


class GetRun(RunRef):
    run_uuid: RunId | None = Field(None, description="MLflow's older name for run_id")


class UpdateRun(GetRun):
    status: RunStatusName | None = None
    end_time: Millis | None = None
    run_name: Annotated[str, Field(max_length=250)] | None = None


class LogMetric(MetricIn):
    run_id: RunId
    run_uuid: RunId | None = None


class LogParam(BaseModel):
    run_id: RunId
    run_uuid: RunId | None = None
    key: Key
    value: ParamValue


class SetTag(BaseModel):
    run_id: RunId
    run_uuid: RunId | None = None
    key: Key
    value: TagValue


class DeleteTag(BaseModel):
    run_id: RunId
    key: Key


class LogBatch(BaseModel):
    """At most 1,000 metrics, 100 params and 100 tags, 1,000 in all (MLflow's limits); a param
    may appear once per run."""

    run_id: RunId
    metrics: Annotated[list[MetricIn], Field(max_length=800)] = []
    params: Annotated[list[ParamIn], Field(max_length=100)] = []
    tags: Annotated[list[Tag], Field(max_length=100)] = []


class DatasetIn(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=500)]
    digest: Annotated[str, Field(min_length=1, max_length=64)]
    source_type: Annotated[str, Field(max_length=36)] = ""
    source: str = ""
    schema_: str = Field("", alias="schema")
    profile: str = ""


class DatasetInputIn(BaseModel):
    dataset: DatasetIn
    tags: list[Tag] = []


class ModelInputIn(BaseModel):
    model_id: NonEmpty


class LogInputs(BaseModel):
    run_id: RunId
    datasets: list[DatasetInputIn] = []
    models: list[ModelInputIn] = []


class SearchRuns(BaseModel):
    experiment_ids: list[ExperimentId] = []
    filter: Filter | None = None
    run_view_type: ViewType = "ACTIVE_ONLY"
    max_results: Annotated[int, Field(ge=1, le=50_000)] = 1000
    order_by: OrderBy = []
    page_token: PageToken | None = None


class GetMetricHistory(BaseModel):
    run_id: RunId
    run_uuid: RunId | None = None
    metric_key: Key
    max_results: Annotated[int, Field(ge=1, le=SAFE)] | None = None
    page_token: PageToken | None = None


# ---- artifacts -----------------------------------------------------------------------------------

RelPath = Annotated[str, Field(description="a path relative to the root: no leading '/', no '..'")]


class FileInfo(Answer):
    path: str
    is_dir: bool
    file_size: int | None = Field(None, description="bytes; absent for folders")


class ArtifactFiles(Answer):
    files: list[FileInfo] | None = None


class ArtifactListing(Answer):
    root_uri: str
    files: list[FileInfo] | None = None


class ListProxiedArtifacts(BaseModel):
    path: RelPath | None = None


class ListRunArtifacts(BaseModel):
    run_id: RunId
    run_uuid: RunId | None = None
    path: RelPath | None = None


class GetRunArtifact(BaseModel):
    run_id: RunId
    run_uuid: RunId | None = None
    path: RelPath


class GetModelVersionArtifact(BaseModel):
    name: NonEmpty
    version: Annotated[str, Field(pattern=r"^[1-9][0-9]{0,8}$")]
    path: RelPath


class ListLoggedModelArtifacts(BaseModel):
    artifact_directory_path: RelPath | None = None


class GetLoggedModelArtifact(BaseModel):
    artifact_file_path: RelPath


class MpuCreate(BaseModel):
    path: NonEmpty = Field(description="the client's local file: its name is the uploaded file's name")
    num_parts: Annotated[int, Field(ge=1, le=10_000)] = 1


class Credential(Answer):
    url: str
    part_number: int
    headers: dict[str, str]


class MpuCreated(Answer):
    upload_id: str
    credentials: list[Credential]


class Part(BaseModel):
    part_number: Annotated[int, Field(ge=1, le=10_000)]
    etag: str = ""


UploadId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$", description="mpu/create's upload_id")]


class MpuComplete(BaseModel):
    path: NonEmpty
    upload_id: UploadId
    parts: Annotated[list[Part], Field(min_length=1)]


class MpuAbort(BaseModel):
    path: NonEmpty
    upload_id: UploadId


class UploadStatus(Answer):
    upload_id: str
    path: str
    parts: list[int]


class ServerInfo(Answer):
    store_type: str
    workspaces_enabled: bool
    trace_archival_enabled: bool
    multipart_uploads_enabled: bool
    multipart_downloads_enabled: bool
    presigned_upload_run_id_supported: bool
    presigned_upload_model_id_supported: bool
    features_enabled: dict[str, bool]
    server: str
    version: str
