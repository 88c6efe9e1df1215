"""The counters of an async pipeline job (CONTRACT.md section 12): which images are queued,
processed, failed and counted in the results, and the process and results stages they make.
"""

from typing import Any

from domain.progress import Stage, update_stage
from domain.statuses import JobStatus

PENDING, DONE, FAILED = "pending", "done", "failed"


def too_many_failed(failed: int, total: int) -> bool:
    """More than half failed (exactly half is still a success)."""
    return total > 0 and failed / total > 0.5


def tally_status(previous: str, progress: float, failed: int, total: int) -> str:
    """A FAILURE stage stays FAILURE; crossing the threshold fails it even part way."""
    if previous == JobStatus.FAILURE or too_many_failed(failed, total):
        return JobStatus.FAILURE.value
    return (JobStatus.SUCCESS if progress >= 1.0 else JobStatus.STARTED).value


def process_stage(stage: Stage, images: dict[str, str]) -> Stage:
    total = len(images)
    remaining = sum(state == PENDING for state in images.values())
    failed = sum(state == FAILED for state in images.values())
    progress = (total - remaining) / total if total else 1.0
    counts = {"processed": total - remaining, "remaining": remaining, "failed": failed}
    return _tallied(stage, progress, failed, total, counts)


def results_stage(
    stage: Stage, images: dict[str, str], counted: int, counters: dict[str, int]
) -> Stage:
    total = len(images)
    failed = sum(state == FAILED for state in images.values())
    progress = (counted + failed) / total if total else 1.0
    return _tallied(stage, progress, failed, total, counters)


def _tallied(
    stage: Stage, progress: float, failed: int, total: int, params: dict[str, Any]
) -> Stage:
    """Counters drive these stages to the end, even one that failed part way."""
    progress = max(progress, stage["progress"])
    status = tally_status(stage["status"], progress, failed, total)
    return {**update_stage(stage, params), "progress": progress, "status": status}
