"""A job as it was at a version or time, and its attempts, from the events of the aggregate."""

from datetime import timedelta

from domain.commands import (
    CancelJob,
    ClaimJob,
    ConfirmCancelled,
    CreateJob,
    DeleteJob,
    FinishJob,
    ReportProgress,
    RetryJob,
    RunJob,
)
from domain.envelope import EventEnvelope, envelope_of
from domain.job import UNCHANGING_EVENTS, Job
from domain.statuses import JobStatus
from projections.attempts import Attempt, attempts
from projections.time_travel import view_as_of

JOB_ID = 7
RUNNER = "runner-a"


def envelopes(job: Job) -> list[EventEnvelope]:
    return [envelope_of(event, None) for event in job.collect_events()]


def failed_then_cancelled() -> list[EventEnvelope]:
    """Attempt 1 fails ("boom"), attempt 2 is cancelled while it runs."""
    job = Job.create(JOB_ID, CreateJob(name="Trest", project_id=16, delay=10))
    job.run(RunJob(job_id=JOB_ID))
    job.claim(ClaimJob(job_id=JOB_ID, attempt=1, runner=RUNNER))
    job.report_progress(
        ReportProgress(job_id=JOB_ID, attempt=1, runner=RUNNER, stage="delay", progress=0.5)
    )
    job.finish(
        FinishJob(job_id=JOB_ID, attempt=1, runner=RUNNER, status=JobStatus.FAILURE, reason="boom")
    )
    job.retry(RetryJob(job_id=JOB_ID))
    job.claim(ClaimJob(job_id=JOB_ID, attempt=2, runner=RUNNER))
    job.cancel(CancelJob(job_id=JOB_ID))
    job.confirm_cancelled(ConfirmCancelled(job_id=JOB_ID, attempt=2, runner=RUNNER))
    return envelopes(job)


def status_times(events: list[EventEnvelope]) -> list[tuple[str, str]]:
    return [
        (event.data["status"], event.occurred_at.isoformat())
        for event in events
        if event.type == "StatusChanged"
    ]


def log_rows(events: list[EventEnvelope]) -> list[dict[str, str]]:
    """The rows `views.job_logs` would give for these events: newest first."""
    return [
        {
            "logged_at": event.occurred_at.isoformat(),
            "level": event.data["level"],
            "message": event.data["message"],
        }
        for event in reversed(events)
        if event.type == "LogAppended"
    ]


def test_version_1_is_the_job_as_created_without_logs() -> None:
    events = failed_then_cancelled()
    found = view_as_of(events, version=1)
    assert found is not None
    view, logs = found
    assert (view["status"], view["attempt"], view["version"]) == ("CREATED", 1, 1)
    assert (view["started_at"], view["finished_at"]) == (None, None)
    assert view["progress"] == events[0].data["progress"]
    assert view["created_at"] == view["updated_at"] == events[0].occurred_at.isoformat()
    assert logs == []


def test_each_version_holds_the_events_up_to_it_and_its_log_lines_newest_first() -> None:
    events = failed_then_cancelled()
    for event in events:
        found = view_as_of(events, version=event.version)
        assert found is not None
        view, logs = found
        earlier = events[: event.version]
        statuses = status_times(earlier)
        assert view["status"] == (statuses[-1][0] if statuses else "CREATED")
        assert logs == log_rows(earlier)
        row_versions = [e.version for e in earlier if e.type not in UNCHANGING_EVENTS]
        assert view["version"] == row_versions[-1]


def test_a_moment_takes_the_events_up_to_it() -> None:
    events = failed_then_cancelled()
    started = next(e for e in events if e.type == "StatusChanged" and e.data["status"] == "STARTED")
    found = view_as_of(events, moment=started.occurred_at)
    assert found is not None
    view, logs = found
    assert view["status"] == "STARTED"
    assert view["started_at"] == started.occurred_at.isoformat()
    assert view["version"] == started.version
    assert logs == log_rows(events[: started.version])
    assert view_as_of(events, moment=events[0].occurred_at - timedelta(microseconds=1)) is None


def test_with_neither_bound_it_is_the_job_now_and_a_version_and_moment_take_the_earlier() -> None:
    events = failed_then_cancelled()
    now = view_as_of(events)
    assert now is not None
    assert (now[0]["status"], now[0]["attempt"]) == ("REVOKED", 2)
    assert now[0]["finished_at"] == status_times(events)[-1][1]
    assert now[1] == log_rows(events)
    assert view_as_of(events, version=1, moment=events[-1].occurred_at) == view_as_of(events, 1)
    assert view_as_of(events, version=len(events), moment=events[0].occurred_at) == view_as_of(
        events, 1
    )


def test_a_deleted_job_has_no_view_after_its_deletion() -> None:
    job = Job.create(JOB_ID, CreateJob(name="Trest", project_id=16, delay=10))
    job.delete(DeleteJob(job_id=JOB_ID))
    events = envelopes(job)
    assert [e.type for e in events] == ["JobCreated", "JobDeleted"]
    assert view_as_of(events) is None
    assert view_as_of(events, version=1) is not None


def test_attempts_have_their_last_status_times_and_reason() -> None:
    events = failed_then_cancelled()
    statuses = [status for status, _ in status_times(events)]
    assert statuses == [
        "PENDING",
        "STARTED",
        "FAILURE",
        "PENDING",
        "STARTED",
        "CANCELING",
        "REVOKED",
    ]
    at = [moment for _, moment in status_times(events)]
    assert attempts(events) == [
        Attempt(1, "FAILURE", at[1], at[2], "boom"),
        Attempt(2, "REVOKED", at[4], at[6], "cancelled"),
    ]


def test_a_created_job_has_one_attempt_and_a_retried_one_a_queued_attempt() -> None:
    job = Job.create(JOB_ID, CreateJob(name="Trest", project_id=16, delay=0))
    events = envelopes(job)
    assert attempts(events) == [Attempt(1, "CREATED", None, None, None)]
    job.cancel(CancelJob(job_id=JOB_ID))
    job.retry(RetryJob(job_id=JOB_ID))
    events += envelopes(job)
    (_, revoked), (_, _) = status_times(events)
    assert attempts(events) == [
        Attempt(1, "REVOKED", None, revoked, "cancelled"),
        Attempt(2, "PENDING", None, None, None),
    ]
