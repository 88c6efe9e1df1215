"""Commands: what a client, the API or a runner asks of a job. Flat, validated, JSON on the bus."""

from typing import Any, Literal
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field

from domain.job_types import JobTypeKey
from domain.statuses import JobStatus

LogLevel = Literal["INFO", "WARNING", "ERROR", "CRITICAL"]


def new_command_id() -> str:
    return uuid4().hex


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    command_id: str = Field(default_factory=new_command_id, min_length=1, max_length=128)
    correlation_id: str | None = None
    actor: str = "anonymous"


class JobCommand(Command):
    job_id: int = Field(gt=0)


class RunnerReport(JobCommand):
    """Sent by the runner of one attempt; refused once that attempt or runner is not current."""

    attempt: int = Field(ge=1)
    runner: str = Field(min_length=1, max_length=128)


class CreateJob(Command):
    name: str = Field(min_length=1, max_length=255)
    delay: int = Field(default=0, ge=0)
    limit: int | None = Field(default=None, ge=0)
    shuffle: bool = True
    project_id: int = Field(gt=0)
    deployment_id: int | None = None
    source_image_collection_id: int | None = None
    source_image_single_id: int | None = None
    pipeline_id: int | None = None
    job_type_key: JobTypeKey = "ml"
    start_now: bool = False


class RunJob(JobCommand):
    pass


class CancelJob(JobCommand):
    pass


class RetryJob(JobCommand):
    pass


class ClaimJob(RunnerReport):
    pass


class ReportProgress(RunnerReport):
    stage: str = Field(min_length=1)
    status: JobStatus | None = None
    progress: float | None = Field(default=None, ge=0.0, le=1.0)
    params: dict[str, Any] = Field(default_factory=dict)


class AppendLog(RunnerReport):
    level: LogLevel = "INFO"
    message: str = Field(min_length=1)


class FinishJob(RunnerReport):
    status: Literal[JobStatus.SUCCESS, JobStatus.FAILURE]
    reason: str = ""


class ConfirmCancelled(RunnerReport):
    pass


COMMANDS: dict[str, type[Command]] = {
    cls.__name__: cls
    for cls in (
        CreateJob,
        RunJob,
        CancelJob,
        RetryJob,
        ClaimJob,
        ReportProgress,
        AppendLog,
        FinishJob,
        ConfirmCancelled,
    )
}
