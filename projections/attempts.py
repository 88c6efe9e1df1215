"""A job's attempts, the first and one per retry, from its events."""

from collections.abc import Iterable
from dataclasses import dataclass

from domain.envelope import EventEnvelope
from domain.job import UNCHANGING_EVENTS
from domain.statuses import JobStatus
from projections.job_view import JobView, apply

CANCELLED = "cancelled"


@dataclass(frozen=True)
class Attempt:
    attempt: int
    status: str  # its last status
    started_at: str | None  # UTC ISO 8601, as in the job's view
    finished_at: str | None
    reason: str | None  # the failure's reason, "cancelled" if revoked, else None


def attempts(events: Iterable[EventEnvelope]) -> list[Attempt]:
    """Each attempt as it ended (or is now), first attempt first.

    The job's view is folded with the projection's `apply`: an attempt's status and times
    are the view's just before the next attempt began; the last attempt's are the job's own.
    """
    ends: dict[int, JobView] = {}
    failures: dict[int, str] = {}
    view: JobView | None = None
    for event in events:
        data = event.data
        if event.type == "LogAppended" and data["level"] == "ERROR" and view is not None:
            # A failure's reason is kept only in this line: 'Job #7 "Trest" failed: <reason>'.
            failed = f'Job #{view["id"]} "{view["name"]}" failed: '
            if data["message"].startswith(failed):
                failures[data["attempt"]] = data["message"].removeprefix(failed)
        elif event.type not in UNCHANGING_EVENTS:
            view = apply(view, event)
            if view is None:
                break
            ends[view["attempt"]] = view
    return [
        Attempt(
            attempt=number,
            status=end["status"],
            started_at=end["started_at"],
            finished_at=end["finished_at"],
            reason=_reason(end["status"], failures.get(number)),
        )
        for number, end in ends.items()
    ]


def _reason(status: str, failure: str | None) -> str | None:
    if status == JobStatus.FAILURE:
        return failure
    return CANCELLED if status == JobStatus.REVOKED else None
