"""The bodies of Antenna's async worker protocol (CONTRACT.md section 12)."""

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.commands import MAX_INT
from domain.pipeline_results import PipelineError, PipelineResult
from infra.bus import TASKS_STREAM


class TasksRequest(BaseModel):
    batch_size: int = Field(ge=1, le=MAX_INT)
    client_info: dict[str, Any] | None = None

    @field_validator("batch_size", mode="before")
    @classmethod
    def whole_number(cls, value: Any) -> Any:
        """5, "5" and "5.0" are 5; true, 5.5, "" and "abc" are not numbers of tasks."""
        if isinstance(value, bool) or value is None:
            raise ValueError("A valid integer is required.")
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise ValueError("A valid integer is required.") from None
            if not number.is_integer():
                raise ValueError("A valid integer is required.")
            return int(number)
        return value


class TaskResult(BaseModel):
    # Tried in this order: a payload that is a success is one, even with an `error` key.
    model_config = ConfigDict(extra="ignore")

    reply_subject: str = Field(min_length=1)
    result: PipelineResult | PipelineError = Field(union_mode="left_to_right")


class ResultsRequest(BaseModel):
    results: list[TaskResult]
    client_info: dict[str, Any] | None = None


@dataclass(frozen=True)
class TaskRef:
    """Which delivery a reply subject acknowledges: the attempt's consumer and the task."""

    attempt: int
    stream_seq: int


def task_ref(reply_subject: str, job_id: int) -> TaskRef | None:
    """The task a reply subject names, or None if it is not one of this job's.

    A reply subject reads `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>...`.
    """
    parts = reply_subject.split(".")
    if len(parts) < 6 or parts[:3] != ["$JS", "ACK", TASKS_STREAM]:
        return None
    prefix = f"job-{job_id}-a"
    consumer, stream_seq = parts[3], parts[5]
    attempt = consumer.removeprefix(prefix)
    if not consumer.startswith(prefix) or not attempt.isdigit() or not stream_seq.isdigit():
        return None
    return TaskRef(attempt=int(attempt), stream_seq=int(stream_seq))
