"""The counters of an async pipeline job (CONTRACT.md section 12): which images are queued,
processed, failed and counted in the results, and the process and results stages they make.
"""

from datetime import datetime
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


def throughput_line(
    job_id: int, started_at: datetime | None, now: datetime, stages: list[Stage]
) -> str | None:
    """Antenna's progress line for a pipeline job (CONTRACT.md section 8), from its process
    stage; None before it started, or in its first 3 s."""
    process = next((stage for stage in stages if stage["key"] == "process"), None)
    if started_at is None or process is None:
        return None
    elapsed = (now - started_at).total_seconds()
    params = {param["key"]: param["value"] for param in process["params"]}
    processed, remaining = params.get("processed"), params.get("remaining")
    if elapsed < 3 or not isinstance(processed, int) or not isinstance(remaining, int):
        return None
    total = processed + remaining
    rate = processed / (elapsed / 60)
    if processed == 0:
        pace = "rate=0.0 imgs/min, ETA=unknown"
    else:
        pace = f"rate={rate:.1f} imgs/min, ETA={_duration((total - processed) / rate * 60)}"
    return (
        f"Job {job_id} throughput: elapsed={_duration(elapsed)},"
        f" processed={processed}/{total}, {pace}"
    )


def _duration(seconds: float) -> str:
    """`<M>m <SS>s`, or `<H>h <MM>m <SS>s` from an hour on."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"
