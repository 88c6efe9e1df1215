"""How each event changes a job's view. `APPLIERS` is the one table; logs go to their own rows.

A view is the job as the read store keeps it: its own fields and progress, times in UTC.
The API adds what comes from elsewhere (nested catalog objects, logs, URLs) when it serves it.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from domain.envelope import EventEnvelope
from domain.job import times_after

JobView = dict[str, Any]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def job_created(_: JobView | None, event: EventEnvelope) -> JobView:
    now = _iso(event.occurred_at)
    return {
        "id": event.job_id,
        **event.data["spec"],
        "dispatch_mode": event.data["dispatch_mode"],
        "progress": event.data["progress"],
        "status": "CREATED",
        "attempt": 1,
        "created_at": now,
        "updated_at": now,
        "started_at": None,
        "finished_at": None,
    }


def status_changed(view: JobView, event: EventEnvelope) -> JobView:
    status = event.data["status"]
    started_at, finished_at = times_after(
        status, event.occurred_at, _parse(view["started_at"]), _parse(view["finished_at"])
    )
    progress = view["progress"]
    return {
        **view,
        "status": status,
        "started_at": _iso(started_at),
        "finished_at": _iso(finished_at),
        "progress": {**progress, "summary": {**progress["summary"], "status": status}},
    }


def stage_progressed(view: JobView, event: EventEnvelope) -> JobView:
    stage = event.data["stage"]
    progress = view["progress"]
    stages = [stage if s["key"] == stage["key"] else s for s in progress["stages"]]
    return {**view, "progress": {**progress, "stages": stages, "summary": event.data["summary"]}}


def stages_tallied(view: JobView, event: EventEnvelope) -> JobView:
    progress = {
        **view["progress"],
        "stages": event.data["stages"],
        "summary": event.data["summary"],
    }
    return {**view, "progress": progress}


def job_retried(view: JobView, event: EventEnvelope) -> JobView:
    return {**view, "attempt": event.data["attempt"], "progress": event.data["progress"]}


def job_updated(view: JobView, event: EventEnvelope) -> JobView:
    return {**view, **event.data["changes"]}


def unchanged(view: JobView, _: EventEnvelope) -> JobView:
    return view


APPLIERS: dict[str, Callable[[Any, EventEnvelope], JobView]] = {
    "JobUpdated": job_updated,
    "JobCreated": job_created,
    "StatusChanged": status_changed,
    "StageProgressed": stage_progressed,
    "JobRetried": job_retried,
    "ImagesQueued": stages_tallied,
    "ResultRecorded": stages_tallied,
    "CancelRequested": unchanged,
    "JobClaimed": unchanged,
}


def apply(view: JobView | None, event: EventEnvelope) -> JobView | None:
    """The view after `event`, with the version and update time it brings; None once deleted."""
    if event.type == "JobDeleted":
        return None
    changed = APPLIERS[event.type](view, event)
    return {**changed, "version": event.version, "updated_at": _iso(event.occurred_at)}
