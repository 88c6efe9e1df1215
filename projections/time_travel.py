"""A job as it was at an earlier version or time, replayed from its own events.

The same `apply` that builds the live view folds the events, and log lines become the rows
`views.job_logs` serves, so a replay to the job's last version equals the live view.
"""

from datetime import datetime
from typing import Any

from domain.envelope import EventEnvelope
from domain.job import UNCHANGING_EVENTS
from projections.job_view import JobView, apply

LogRow = dict[str, Any]


def events_as_of(
    events: list[EventEnvelope], version: int | None = None, moment: datetime | None = None
) -> list[EventEnvelope]:
    """The job's events up to `version` and up to `moment` (timezone-aware)."""
    for index, event in enumerate(events):
        if (version is not None and event.version > version) or (
            moment is not None and event.occurred_at > moment
        ):
            return events[:index]
    return events


def view_as_of(
    events: list[EventEnvelope], version: int | None = None, moment: datetime | None = None
) -> tuple[JobView, list[LogRow]] | None:
    """The job's view and its log lines (newest first) after its events up to `version` and
    up to `moment` (timezone-aware); None if no event is that early or the job was deleted."""
    view: JobView | None = None
    logs: list[LogRow] = []
    for event in events_as_of(events, version, moment):
        if event.type == "LogAppended":
            data = event.data
            logged_at = event.occurred_at.isoformat()
            logs.append(
                {"logged_at": logged_at, "level": data["level"], "message": data["message"]}
            )
        elif event.type not in UNCHANGING_EVENTS:
            view = apply(view, event)
    return None if view is None else (view, logs[::-1])
