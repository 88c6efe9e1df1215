"""What a pipeline answers for images (CONTRACT.md section 12): a result or an error.

Workers post these to /result/; a processing service called for a sync_api job answers
with them. Either way each image's answer becomes one RecordResult.
"""

from collections import Counter
from typing import Any

from pydantic import BaseModel, Field

from domain.commands import RecordResult


class SourceImage(BaseModel):
    id: str
    url: str


class Classification(BaseModel):
    classification: str
    labels: list[str] | None = None
    scores: list[float]
    logits: list[float] | None = None
    inference_time: float | None = None
    algorithm: dict[str, Any]
    terminal: bool = True
    timestamp: str


class Detection(BaseModel):
    source_image_id: str
    bbox: dict[str, float] | None
    inference_time: float | None = None
    algorithm: dict[str, Any]
    timestamp: str
    crop_image_url: str | None = None
    classifications: list[Classification] = Field(default_factory=list)


class PipelineResult(BaseModel):
    """A successful result; unknown keys (even `error`) are ignored."""

    pipeline: str
    algorithms: dict[str, Any] = Field(default_factory=dict)
    total_time: float
    source_images: list[SourceImage]
    detections: list[Detection]
    errors: list[Any] | str | None = None


class PipelineError(BaseModel):
    error: str = Field(max_length=10_000)
    image_id: str | None = None


def record_result(
    job_id: int, attempt: int, image_id: str, result: PipelineResult | PipelineError, actor: str
) -> RecordResult:
    """The command that records `result` as the answer for the task of `image_id`."""
    if isinstance(result, PipelineError):
        return RecordResult(
            job_id=job_id, attempt=attempt, task_image_id=image_id, error=result.error, actor=actor
        )
    return RecordResult(
        job_id=job_id,
        attempt=attempt,
        task_image_id=image_id,
        source_image_ids=[image.id for image in result.source_images],
        detections=dict(Counter(d.source_image_id for d in result.detections)),
        classifications=dict(
            Counter(d.source_image_id for d in result.detections for _ in d.classifications)
        ),
        actor=actor,
    )


def claimed_image(result: PipelineResult | PipelineError) -> str:
    """The image a result says it is for ("" when it names none)."""
    if isinstance(result, PipelineError):
        return result.image_id or ""
    return result.source_images[0].id if result.source_images else ""


def of_image(result: PipelineResult, image_id: str) -> PipelineResult:
    """The part of a result for many images that concerns one of them."""
    return result.model_copy(
        update={
            "source_images": [i for i in result.source_images if i.id == image_id],
            "detections": [d for d in result.detections if d.source_image_id == image_id],
        }
    )
