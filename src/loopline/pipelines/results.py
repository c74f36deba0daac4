"""What a pipeline run returns: ``PipelineRun``, ``StepFailed``, and the command that resumes a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loopline.config import Settings
from loopline.errors import LooplineError
from loopline.pipelines.types import StepRecord, pipeline_uri


class StepFailed(LooplineError):
    """A pipeline run finished with failed steps; ``hint`` is the command that resumes it."""

    status_code = 500
    error_code = "INTERNAL_ERROR"

    def __init__(self, message: str, *, hint: str = "", run: PipelineRun | None = None) -> None:
        super().__init__(message, hint=hint)
        self.run = run


@dataclass
class PipelineRun:
    """A finished (or failed) pipeline run, as the runner returns it."""

    run_id: str
    name: str
    status: str
    steps: dict[str, StepRecord]
    outputs: Any
    error: str
    resume_command: str
    settings: Settings = field(repr=False)

    @property
    def uri(self) -> str:
        return pipeline_uri(self.name, self.run_id)

    @property
    def failed_steps(self) -> list[str]:
        return [n for n, s in self.steps.items() if s.status == "failed"]

    def raise_for_status(self) -> None:
        if self.status != "succeeded":
            raise StepFailed(
                self.error or f"Pipeline run {self.run_id} failed.", hint=self.resume_command, run=self
            )


def resume_command(run_id: str, settings: Settings) -> str:
    """The exact command that resumes ``run_id`` against the same store."""
    cmd = f"loopline pipeline resume {run_id}"
    if settings.tracking_uri != Settings.from_env().tracking_uri:
        cmd += f" --tracking-uri '{settings.tracking_uri}'"
    return cmd
