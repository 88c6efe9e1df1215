"""Job types and the stages each starts with (CONTRACT.md sections 5 and 7)."""

from typing import Literal

from domain.progress import Stage, make_param, make_stage

JobTypeKey = Literal[
    "ml",
    "populate_captures_collection",
    "data_storage_sync",
    "regroup_events",
    "data_export",
    "post_processing",
    "unknown",
]

JOB_TYPE_NAMES: dict[JobTypeKey, str] = {
    "ml": "ML pipeline",
    "populate_captures_collection": "Populate capture set",
    "data_storage_sync": "Data storage sync",
    "regroup_events": "Regroup sessions",
    "data_export": "Data Export",
    "post_processing": "Post Processing",
    "unknown": "Unknown",
}

INITIAL_MOOD = "😴"
RUNNING_MOOD = "😵‍💫"
DONE_MOOD = "🥳"


def delay_stage(delay: int) -> Stage:
    return make_stage("Delay", [make_param("Delay", delay), make_param("Mood", INITIAL_MOOD)])


def ml_stages() -> list[Stage]:
    return [
        make_stage("Collect", [make_param("Total Images", "")]),
        make_stage(
            "Process",
            [make_param("Processed", ""), make_param("Remaining", ""), make_param("Failed", "")],
        ),
        make_stage(
            "Results",
            [
                make_param("Captures", ""),
                make_param("Detections", ""),
                make_param("Classifications", ""),
            ],
        ),
    ]


def initial_stages(job_type_key: str, delay: int, pipeline_id: int | None) -> list[Stage]:
    """A job with a delay is a test job: its only stage is the delay (as in the seed job)."""
    if delay:
        return [delay_stage(delay)]
    if job_type_key == "ml" and pipeline_id is not None:
        return ml_stages()
    return []


def dispatch_mode_for(delay: int, pipeline_id: int | None, async_workers: bool) -> str:
    """Fixed at creation: test jobs and jobs without a pipeline run inside jobledger; pipeline
    jobs go to workers that pull tasks, or where the project has none, to a processing
    service that jobledger calls."""
    if delay or pipeline_id is None:
        return "internal"
    return "async_api" if async_workers else "sync_api"
