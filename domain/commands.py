"""Commands: what a client, the API or a runner asks of a job. Flat, validated, JSON on the bus."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import uuid4

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from domain.job_types import JobTypeKey
from domain.statuses import JobStatus

LogLevel = Literal["INFO", "WARNING", "ERROR", "CRITICAL"]
CatalogKind = Literal[
    "projects", "deployments", "captures", "collections", "pipelines", "services", "exports"
]


def new_command_id() -> str:
    return uuid4().hex


def validation_reason(error: ValidationError) -> str:
    """One line naming each invalid field and what is wrong with it."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors()
    )


def is_subject_token(text: str) -> bool:
    """Whether `text` can stand as one token of a NATS subject (no blanks, '.', '*' or '>')."""
    return bool(text) and not any(c.isspace() or c in ".*>" for c in text)


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    command_id: str = Field(default_factory=new_command_id, min_length=1, max_length=128)
    correlation_id: str | None = None
    actor: str = "anonymous"

    @field_validator("command_id")
    @classmethod
    def one_subject_token(cls, command_id: str) -> str:
        """Its outcome is published on jobs.outcomes.<command_id>."""
        if not is_subject_token(command_id):
            raise ValueError("must be one NATS subject token: no blanks, '.', '*' or '>'")
        return command_id


class JobCommand(Command):
    job_id: int = Field(gt=0)


class RunnerReport(JobCommand):
    """Sent by the runner of one attempt; refused once that attempt or runner is not current."""

    attempt: int = Field(ge=1)
    runner: str = Field(min_length=1, max_length=128)


MAX_INT = 2**31 - 1  # Antenna keeps these in 32-bit integer columns
MAX_ID = 2**63 - 1
NonNegative = Annotated[int, Field(ge=0)]


def without_null_characters(value: Any) -> Any:
    """As Django REST framework reads any text: NUL is refused."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("Null characters are not allowed.")
    return value


def trimmed_printable(text: Any) -> Any:
    """As Django REST framework reads text: surrounding blanks are trimmed, NUL is refused."""
    text = without_null_characters(text)
    return text.strip() if isinstance(text, str) else text


# A job's or a catalog object's name.
Name = Annotated[str, Field(min_length=1, max_length=255), BeforeValidator(trimmed_printable)]


class JobSpec(BaseModel):
    """The writable fields of a job (CONTRACT.md section 4)."""

    name: Name
    delay: int = Field(default=0, ge=0, le=MAX_INT)
    limit: int | None = Field(default=100, ge=0, le=MAX_INT)
    shuffle: bool = True
    project_id: int = Field(gt=0, le=MAX_ID)
    deployment_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    source_image_collection_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    source_image_single_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    pipeline_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    job_type_key: JobTypeKey = "ml"

    @field_validator(
        "delay",
        "limit",
        "project_id",
        "deployment_id",
        "source_image_collection_id",
        "source_image_single_id",
        "pipeline_id",
        mode="before",
    )
    @classmethod
    def not_a_boolean(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("A valid integer is required.")
        return value


SPEC_FIELDS = frozenset(JobSpec.model_fields)


class CreateJob(JobSpec, Command):
    """Create a job; with start_now, queue it at once."""

    start_now: bool = False


class UpdateJob(JobCommand):
    """Set some writable fields; the job's stages and dispatch mode stay as they are."""

    changes: dict[str, Any]

    @field_validator("changes")
    @classmethod
    def only_writable_fields(cls, changes: dict[str, Any]) -> dict[str, Any]:
        if unknown := set(changes) - SPEC_FIELDS:
            raise ValueError(f"not writable: {', '.join(sorted(unknown))}")
        return changes


class DeleteJob(JobCommand):
    """Drop the job from the views; its history stays in the event store."""


class RunJob(JobCommand):
    """Queue a CREATED job; on an ended job, a retry."""


class CancelJob(JobCommand):
    """Cancel a job: at once if queued, through CANCELING if a runner has it."""


class RetryJob(JobCommand):
    """Run an ended job again as a new attempt, its progress reset."""


class ClaimJob(RunnerReport):
    """A runner takes the queued attempt (or takes a started one over)."""


class ReportProgress(RunnerReport):
    """The runner's progress on one stage: status, progress and params."""

    stage: str = Field(min_length=1)
    status: JobStatus | None = None
    progress: float | None = Field(default=None, ge=0.0, le=1.0)
    params: dict[str, Any] = Field(default_factory=dict)


class AppendLog(RunnerReport):
    """A log line from the runner."""

    level: LogLevel = "INFO"
    message: str = Field(min_length=1)


class FinishJob(RunnerReport):
    """The runner's attempt ended: SUCCESS (every stage complete) or FAILURE."""

    status: Literal[JobStatus.SUCCESS, JobStatus.FAILURE]
    reason: str = ""


class ConfirmCancelled(RunnerReport):
    """The runner has stopped the cancelled attempt."""


class ReapJob(JobCommand):
    """Fail an attempt that has reported nothing since `quiet_since` (sent by the reaper)."""

    attempt: int = Field(ge=1)
    quiet_since: datetime
    idle: float = Field(ge=0, description="seconds since the job last changed")
    stall_limit: float = Field(gt=0, description="seconds")


class NoteWorkerActivity(JobCommand):
    """A log line about workers' use of an async job (tasks fetched, results queued)."""

    level: LogLevel = "INFO"
    message: str = Field(min_length=1, max_length=10_000)
    # The attempt a line about a running job (its throughput) speaks of: once that attempt
    # has ended, the line is late and refused.
    while_running: int | None = Field(default=None, ge=1)


class QueueImages(RunnerReport):
    """The images an async job's attempt hands to workers, after filtering and `limit`."""

    image_ids: list[str]
    found: int = Field(ge=0)  # images found before `limit` cut the list


class RecordResult(JobCommand):
    """A worker's result for one task of an async job's attempt."""

    attempt: int = Field(ge=1)
    task_image_id: str  # the image of the task the result answers
    # The task was no longer out (answered already, or its queue emptied): the result is
    # recorded as refused, never counted; `task_image_id` is then the image it claims.
    task_gone: bool = False
    error: str | None = None
    source_image_ids: list[str] = Field(default_factory=list)
    # By the image they are on: only those on the job's images count.
    detections: dict[str, NonNegative] = Field(default_factory=dict)
    classifications: dict[str, NonNegative] = Field(default_factory=dict)


class SaveCatalogObject(Command):
    """Create a catalog object (a new id when none is given) or replace its fields; with
    `partial`, change only the fields given, of an object that exists."""

    kind: CatalogKind
    object_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    fields: dict[str, Any]
    partial: bool = False


class NoteServicesSeen(Command):
    """Workers of these processing services called the API (a liveness heartbeat)."""

    service_ids: list[int] = Field(min_length=1)


COMMANDS: dict[str, type[Command]] = {
    cls.__name__: cls
    for cls in (
        CreateJob,
        UpdateJob,
        DeleteJob,
        RunJob,
        CancelJob,
        RetryJob,
        ClaimJob,
        ReportProgress,
        AppendLog,
        FinishJob,
        ConfirmCancelled,
        QueueImages,
        RecordResult,
        ReapJob,
        NoteWorkerActivity,
        SaveCatalogObject,
        NoteServicesSeen,
    )
}
