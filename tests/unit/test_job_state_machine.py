"""The Job aggregate as the state machine of DESIGN.md and CONTRACT.md sections 9, 10 and 16.

Each test tells one rule: which command moves a job from which status to which, which events
and log lines that records, and which commands are refused (raising before anything changes).
"""

import copy
import json
import re
import typing
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from domain import job_types, statuses
from domain.commands import (
    AppendLog,
    CancelJob,
    ClaimJob,
    Command,
    ConfirmCancelled,
    CreateJob,
    FinishJob,
    NoteWorkerActivity,
    ReapJob,
    ReportProgress,
    RetryJob,
    RunJob,
    RunnerReport,
)
from domain.job import Job, Refused, cause_of
from domain.job_types import DONE_MOOD, INITIAL_MOOD, RUNNING_MOOD
from domain.progress import reset_progress
from domain.statuses import JobStatus

SEED = json.loads((Path(__file__).parent.parent / "seed" / "job-124.json").read_text())
SEED_LOG_LINE = re.compile(r"^\[[^\]]+\] (INFO|WARNING|ERROR|CRITICAL) (.*)$")

R = TypeVar("R", bound=RunnerReport)

JOB_ID = 124
NAME = "Trest"
RUNNER = "runner-a"
OTHER_RUNNER = "runner-b"

CREATED, PENDING, STARTED = JobStatus.CREATED, JobStatus.PENDING, JobStatus.STARTED
SUCCESS, FAILURE, REVOKED = JobStatus.SUCCESS, JobStatus.FAILURE, JobStatus.REVOKED
RETRY, CANCELING = JobStatus.RETRY, JobStatus.CANCELING


# Commands.


def create_job(**fields: Any) -> CreateJob:
    return CreateJob(**{"name": NAME, "project_id": 16, **fields})


def run(job: Job) -> RunJob:
    return RunJob(job_id=job.job_id)


def cancel(job: Job) -> CancelJob:
    return CancelJob(job_id=job.job_id)


def retry(job: Job) -> RetryJob:
    return RetryJob(job_id=job.job_id)


def report(
    kind: type[R], job: Job, runner: str = RUNNER, attempt: int | None = None, **fields: Any
) -> R:
    """A runner's report on the job's current attempt, unless another attempt is named."""
    current = job.attempt if attempt is None else attempt
    return kind(job_id=job.job_id, attempt=current, runner=runner, **fields)


def stage_report(job: Job, stage: str, runner: str = RUNNER, **fields: Any) -> ReportProgress:
    return report(ReportProgress, job, runner, stage=stage, **fields)


# Jobs in each status, built only through commands (RETRY aside, see `in_retry`).


def new_job(**fields: Any) -> Job:
    """A test job with a 10 s delay, like the seed: one `delay` stage."""
    return Job.create(JOB_ID, create_job(**{"delay": 10, **fields}))


def queued(**fields: Any) -> Job:
    return new_job(start_now=True, **fields)


def started(runner: str = RUNNER, **fields: Any) -> Job:
    job = queued(**fields)
    job.claim(report(ClaimJob, job, runner))
    return job


def complete_every_stage(job: Job, runner: str = RUNNER) -> None:
    for stage in job.progress["stages"]:
        job.report_progress(stage_report(job, stage["key"], runner, status=SUCCESS, progress=1.0))


def succeeded(**fields: Any) -> Job:
    job = started(**fields)
    complete_every_stage(job)
    job.finish(report(FinishJob, job, status=SUCCESS))
    return job


def failed(**fields: Any) -> Job:
    job = started(**fields)
    job.finish(report(FinishJob, job, status=FAILURE, reason="boom"))
    return job


def canceling(**fields: Any) -> Job:
    job = started(**fields)
    job.cancel(cancel(job))
    return job


def revoked(**fields: Any) -> Job:
    """Revoked after it ran: the runner confirmed the cancel."""
    job = canceling(**fields)
    job.confirm_cancelled(report(ConfirmCancelled, job))
    return job


def in_retry(**fields: Any) -> Job:
    """A started job recorded in RETRY: no command here enters it, but the rules accept it."""
    job = started(**fields)
    job.trigger_event(
        Job.StatusChanged,
        status=RETRY.value,
        previous_status=job.status.value,
        attempt=job.attempt,
        **cause_of(run(job)),
    )
    return job


JOB_IN: dict[JobStatus, Callable[[], Job]] = {
    CREATED: new_job,
    PENDING: queued,
    STARTED: started,
    RETRY: in_retry,
    CANCELING: canceling,
    SUCCESS: succeeded,
    FAILURE: failed,
    REVOKED: revoked,
}


def job_in(status: JobStatus) -> Job:
    job = JOB_IN[status]()
    assert job.status == status
    new_events(job)  # what the test does next is what it looks at
    return job


# What is expected.


def param(name: str, key: str, value: Any) -> dict[str, Any]:
    return {"key": key, "name": name, "category": "default", "value": value}


def created_stage(key: str, name: str, *params: dict[str, Any]) -> dict[str, Any]:
    """A stage as it is created: CREATED at 0."""
    return {"key": key, "name": name, "status": "CREATED", "progress": 0.0, "params": [*params]}


# What happened.


def new_events(job: Job) -> list[Any]:
    """The events recorded since the last look, oldest first."""
    return list(job.collect_events())


def kinds(events: list[Any]) -> list[str]:
    return [type(event).__name__ for event in events]


def logs(events: list[Any]) -> list[str]:
    return [event.message for event in events if isinstance(event, Job.LogAppended)]


def status_changes(events: list[Any]) -> list[tuple[str, str]]:
    return [
        (event.previous_status, event.status)
        for event in events
        if isinstance(event, Job.StatusChanged)
    ]


def state(job: Job) -> tuple[Any, ...]:
    return (
        job.version,
        len(job.pending_events),
        job.status,
        job.attempt,
        job.runner,
        copy.deepcopy(job.progress),
        job.started_at,
        job.finished_at,
        dict(job.applied_commands),
    )


def assert_refused(method: Callable[[Any], None], command: Command, reason: str) -> None:
    """The command raises Refused with `reason`, and the job is exactly as it was."""
    job: Job = method.__self__  # type: ignore[attr-defined]
    before = state(job)
    with pytest.raises(Refused, match=re.escape(reason)):
        method(command)
    assert state(job) == before
    assert not job.has_applied(command)


# Creation.


def test_a_new_job_is_created_at_attempt_one_with_nobody_running_it() -> None:
    command = create_job(delay=10)
    job = Job.create(JOB_ID, command)

    assert job.status == CREATED
    assert job.attempt == 1
    assert job.runner is None
    assert (job.started_at, job.finished_at) == (None, None)
    assert job.progress["summary"] == {"status": "CREATED", "progress": 0.0}
    assert job.has_applied(command)
    events = new_events(job)
    assert kinds(events) == ["JobCreated"]
    assert events[0].job_id == JOB_ID
    assert events[0].spec["name"] == NAME
    assert "start_now" not in events[0].spec


def test_a_job_with_a_delay_is_a_test_job_with_only_the_delay_stage() -> None:
    job = Job.create(JOB_ID, create_job(delay=10, pipeline_id=1))

    assert job.progress["stages"] == [
        created_stage(
            "delay", "Delay", param("Delay", "delay", 10), param("Mood", "mood", INITIAL_MOOD)
        )
    ]
    assert INITIAL_MOOD == "😴"
    assert job.dispatch_mode == "internal"


def test_an_ml_job_with_a_pipeline_and_no_delay_collects_processes_and_saves_results() -> None:
    job = Job.create(JOB_ID, create_job(pipeline_id=1, job_type_key="ml"))

    assert job.progress["stages"] == [
        created_stage("collect", "Collect", param("Total Images", "total_images", "")),
        created_stage(
            "process",
            "Process",
            param("Processed", "processed", ""),
            param("Remaining", "remaining", ""),
            param("Failed", "failed", ""),
        ),
        created_stage(
            "results",
            "Results",
            param("Captures", "captures", ""),
            param("Detections", "detections", ""),
            param("Classifications", "classifications", ""),
        ),
    ]
    assert job.progress["summary"] == {"status": "CREATED", "progress": 0.0}
    assert job.dispatch_mode == "async_api"


@pytest.mark.parametrize(
    ("job_type_key", "pipeline_id", "dispatch_mode"),
    [
        ("ml", None, "internal"),
        ("data_export", None, "internal"),
        ("populate_captures_collection", None, "internal"),
        ("post_processing", 1, "async_api"),  # §10: a job with a pipeline is dispatched
    ],
)
def test_other_jobs_without_a_delay_start_with_no_stages(
    job_type_key: str, pipeline_id: int | None, dispatch_mode: str
) -> None:
    job = Job.create(JOB_ID, create_job(job_type_key=job_type_key, pipeline_id=pipeline_id))

    assert job.progress["stages"] == []
    assert job.progress["summary"] == {"status": "CREATED", "progress": 0.0}
    assert job.dispatch_mode == dispatch_mode


def test_start_now_queues_the_job_as_it_is_created() -> None:
    job = Job.create(JOB_ID, create_job(delay=10, start_now=True))

    assert job.status == PENDING
    assert job.attempt == 1
    events = new_events(job)
    assert kinds(events) == ["JobCreated", "StatusChanged", "LogAppended"]
    assert status_changes(events) == [("CREATED", "PENDING")]
    assert logs(events) == [f"Changing status of job {JOB_ID} to PENDING"]


def test_every_event_carries_the_command_that_caused_it() -> None:
    job = job_in(CREATED)
    command = RunJob(job_id=JOB_ID, actor="alice", correlation_id="request-7")

    job.run(command)

    for event in new_events(job):
        assert (event.command_id, event.correlation_id, event.actor) == (
            command.command_id,
            "request-7",
            "alice",
        )
        assert event.job_id == JOB_ID


# Run.


def test_run_queues_a_created_job() -> None:
    job = job_in(CREATED)

    job.run(run(job))

    assert job.status == PENDING
    assert job.attempt == 1
    events = new_events(job)
    assert status_changes(events) == [("CREATED", "PENDING")]
    assert logs(events) == [f"Changing status of job {JOB_ID} to PENDING"]


@pytest.mark.parametrize("final", [SUCCESS, FAILURE, REVOKED])
def test_run_of_an_ended_job_is_a_retry(final: JobStatus) -> None:
    job = job_in(final)

    job.run(run(job))

    assert job.status == PENDING
    assert job.attempt == 2
    assert kinds(new_events(job))[0] == "JobRetried"


@pytest.mark.parametrize("status", [PENDING, STARTED, RETRY, CANCELING])
def test_run_of_a_queued_or_running_job_is_refused(status: JobStatus) -> None:
    job = job_in(status)

    assert_refused(job.run, run(job), f"Job {JOB_ID} is already queued or running ({status.value})")


# Cancel.


@pytest.mark.parametrize("status", [CREATED, PENDING])
def test_cancel_of_a_job_nobody_runs_revokes_it_at_once(status: JobStatus) -> None:
    job = job_in(status)

    job.cancel(cancel(job))

    assert job.status == REVOKED
    assert job.finished_at is not None
    events = new_events(job)
    assert kinds(events) == ["StatusChanged", "LogAppended"]
    assert status_changes(events) == [(status.value, "REVOKED")]
    assert logs(events) == [f"Changing status of job {JOB_ID} to REVOKED"]


@pytest.mark.parametrize("status", [STARTED, RETRY])
def test_cancel_of_a_running_job_asks_the_runner_to_stop(status: JobStatus) -> None:
    job = job_in(status)

    job.cancel(cancel(job))

    assert job.status == CANCELING
    assert job.finished_at is None
    events = new_events(job)
    assert kinds(events) == ["CancelRequested", "StatusChanged", "LogAppended"]
    assert events[0].attempt == 1
    assert status_changes(events) == [(status.value, "CANCELING")]
    assert logs(events) == [f"Changing status of job {JOB_ID} to CANCELING"]


def test_cancel_of_a_job_being_cancelled_is_refused() -> None:
    job = job_in(CANCELING)

    assert_refused(job.cancel, cancel(job), f"Job {JOB_ID} is already being cancelled")


@pytest.mark.parametrize("final", [SUCCESS, FAILURE, REVOKED])
def test_cancel_of_an_ended_job_is_refused(final: JobStatus) -> None:
    job = job_in(final)

    assert_refused(
        job.cancel,
        cancel(job),
        f"Job {JOB_ID} has already ended ({final.value}); nothing to cancel",
    )


def test_the_runner_confirms_the_cancel_and_the_job_is_revoked() -> None:
    job = job_in(CANCELING)

    job.confirm_cancelled(report(ConfirmCancelled, job))

    assert job.status == REVOKED
    assert job.finished_at is not None
    events = new_events(job)
    assert status_changes(events) == [("CANCELING", "REVOKED")]
    assert job.finished_at == events[0].timestamp
    assert logs(events) == [f"Changing status of job {JOB_ID} to REVOKED"]


@pytest.mark.parametrize("status", [PENDING, STARTED, RETRY, SUCCESS, FAILURE, REVOKED])
def test_a_cancel_is_confirmed_only_while_the_job_is_being_cancelled(status: JobStatus) -> None:
    job = job_in(status)

    assert_refused(
        job.confirm_cancelled,
        report(ConfirmCancelled, job),
        f"ConfirmCancelled is not accepted while job {JOB_ID} is {status.value}",
    )


def test_a_cancel_confirmed_for_another_attempt_is_refused() -> None:
    job = job_in(CANCELING)

    assert_refused(
        job.confirm_cancelled,
        report(ConfirmCancelled, job, attempt=2),
        f"Report from attempt 2 of job {JOB_ID}, whose current attempt is 1",
    )


# Retry.


@pytest.mark.parametrize("final", [SUCCESS, FAILURE, REVOKED])
def test_retry_of_an_ended_job_queues_a_new_attempt(final: JobStatus) -> None:
    job = job_in(final)

    job.retry(retry(job))

    assert job.status == PENDING
    assert job.attempt == 2
    assert job.runner is None
    assert (job.started_at, job.finished_at) == (None, None)
    events = new_events(job)
    assert kinds(events) == ["JobRetried", "LogAppended", "StatusChanged", "LogAppended"]
    assert events[0].attempt == 2
    assert status_changes(events) == [(final.value, "PENDING")]
    assert logs(events) == [
        f'Re-running job #{JOB_ID} "{NAME}" (attempt 2)',
        f"Changing status of job {JOB_ID} to PENDING",
    ]


def test_each_retry_opens_the_next_attempt() -> None:
    job = job_in(FAILURE)

    job.retry(retry(job))
    job.cancel(cancel(job))
    job.retry(retry(job))

    assert job.attempt == 3
    assert job.status == PENDING


def test_retry_resets_progress_to_zero_keeping_string_params() -> None:
    job = started(delay=0, pipeline_id=1)
    job.report_progress(
        stage_report(
            job,
            "collect",
            status=SUCCESS,
            progress=1.0,
            params={"total_images": 42, "limit": 10},
        )
    )
    job.report_progress(stage_report(job, "process", progress=0.5, params={"processed": 21.0}))
    job.finish(report(FinishJob, job, status=FAILURE, reason="boom"))
    before = copy.deepcopy(job.progress)
    new_events(job)

    job.retry(retry(job))

    reset = [
        created_stage(
            "collect",
            "Collect",
            param("Total Images", "total_images", 0),
            param("limit", "limit", 0),
        ),
        created_stage(
            "process",
            "Process",
            param("Processed", "processed", 0),
            param("Remaining", "remaining", ""),
            param("Failed", "failed", ""),
        ),
        created_stage(
            "results",
            "Results",
            param("Captures", "captures", ""),
            param("Detections", "detections", ""),
            param("Classifications", "classifications", ""),
        ),
    ]
    retried = new_events(job)[0]
    assert isinstance(retried, Job.JobRetried)
    assert retried.progress == reset_progress(before)
    assert retried.progress["summary"] == {"status": "CREATED", "progress": 0.0}
    assert retried.progress["stages"] == reset
    assert job.progress["stages"] == reset
    assert job.progress["summary"]["progress"] == 0.0


@pytest.mark.parametrize("status", [CREATED, PENDING, STARTED, RETRY, CANCELING])
def test_retry_of_a_job_that_has_not_ended_is_refused(status: JobStatus) -> None:
    job = job_in(status)

    assert_refused(
        job.retry,
        retry(job),
        f"Only a job that has ended can be retried; job {JOB_ID} is {status.value}",
    )


# Claim: a runner takes the attempt.


def test_a_runner_claims_a_queued_job_and_starts_it() -> None:
    job = job_in(PENDING)

    job.claim(report(ClaimJob, job))

    assert job.status == STARTED
    assert job.runner == RUNNER
    events = new_events(job)
    assert kinds(events) == ["JobClaimed", "LogAppended", "StatusChanged", "LogAppended"]
    assert (events[0].attempt, events[0].runner) == (1, RUNNER)
    assert logs(events) == [
        f'Running job #{JOB_ID} "{NAME}" (PENDING)',
        f"Changing status of job {JOB_ID} to STARTED",
    ]
    assert job.started_at == events[2].timestamp
    assert job.finished_at is None


@pytest.mark.parametrize("status", [STARTED, RETRY])
def test_another_runner_takes_over_a_started_job(status: JobStatus) -> None:
    job = job_in(status)
    started_at = job.started_at

    job.claim(report(ClaimJob, job, OTHER_RUNNER))

    assert job.status == status
    assert job.runner == OTHER_RUNNER
    assert job.started_at == started_at
    events = new_events(job)
    assert kinds(events) == ["JobClaimed", "LogAppended"]
    assert logs(events) == [f'Resuming job #{JOB_ID} "{NAME}" ({status.value})']


def test_after_a_takeover_only_the_new_runner_reports() -> None:
    job = job_in(STARTED)
    job.claim(report(ClaimJob, job, OTHER_RUNNER))
    superseded = f"Report from runner {RUNNER}, but job {JOB_ID} is run by {OTHER_RUNNER}"

    assert_refused(job.report_progress, stage_report(job, "delay", progress=0.5), superseded)
    assert_refused(job.append_log, report(AppendLog, job, message="still here"), superseded)
    assert_refused(job.finish, report(FinishJob, job, status=FAILURE), superseded)
    job.report_progress(stage_report(job, "delay", OTHER_RUNNER, progress=0.5))
    assert job.progress["stages"][0]["progress"] == 0.5


def test_the_same_runner_cannot_claim_its_job_twice() -> None:
    job = job_in(STARTED)

    assert_refused(
        job.claim, report(ClaimJob, job), f"Job {JOB_ID} is already running in runner {RUNNER}"
    )


def test_a_claim_of_another_attempt_is_refused() -> None:
    job = job_in(PENDING)

    assert_refused(
        job.claim,
        report(ClaimJob, job, attempt=2),
        f"Report from attempt 2 of job {JOB_ID}, whose current attempt is 1",
    )


@pytest.mark.parametrize("status", [CREATED, CANCELING, SUCCESS, FAILURE, REVOKED])
def test_there_is_nothing_to_claim_unless_the_job_is_queued_or_started(status: JobStatus) -> None:
    job = job_in(status)

    assert_refused(
        job.claim,
        report(ClaimJob, job, OTHER_RUNNER),
        f"Job {JOB_ID} is {status.value}; there is nothing to run",
    )


def test_the_runner_of_the_previous_attempt_can_claim_the_retry() -> None:
    job = job_in(FAILURE)  # attempt 1 was run by RUNNER
    job.retry(retry(job))
    new_events(job)

    job.claim(report(ClaimJob, job))

    assert job.status == STARTED
    assert (job.attempt, job.runner) == (2, RUNNER)
    assert logs(new_events(job))[0] == f'Running job #{JOB_ID} "{NAME}" (PENDING)'


def test_reports_from_a_superseded_attempt_are_refused() -> None:
    job = job_in(FAILURE)
    job.retry(retry(job))
    job.claim(report(ClaimJob, job, OTHER_RUNNER))
    late = f"Report from attempt 1 of job {JOB_ID}, whose current attempt is 2"

    assert_refused(job.report_progress, stage_report(job, "delay", attempt=1), late)
    assert_refused(job.append_log, report(AppendLog, job, attempt=1, message="late"), late)
    assert_refused(job.finish, report(FinishJob, job, attempt=1, status=SUCCESS), late)


def test_before_a_claim_no_runner_may_report() -> None:
    job = job_in(PENDING)
    nobody = f"Report from runner {RUNNER}, but job {JOB_ID} has not been claimed"

    assert_refused(job.append_log, report(AppendLog, job, message="early"), nobody)
    assert_refused(job.report_progress, stage_report(job, "delay"), nobody)


# Progress reports.


@pytest.mark.parametrize("status", [STARTED, RETRY])
def test_the_runner_reports_the_progress_of_a_stage(status: JobStatus) -> None:
    job = job_in(status)

    job.report_progress(stage_report(job, "delay", progress=0.1, params={"mood": RUNNING_MOOD}))

    delay_stage = {
        **created_stage(
            "delay", "Delay", param("Delay", "delay", 10), param("Mood", "mood", RUNNING_MOOD)
        ),
        "status": "STARTED",
        "progress": 0.1,
    }
    assert job.progress["stages"] == [delay_stage]
    assert job.progress["summary"] == {"status": status.value, "progress": 0.1}
    events = new_events(job)
    assert kinds(events) == ["StageProgressed"]
    assert events[0].stage == delay_stage
    assert events[0].summary == {"status": status.value, "progress": 0.1}
    assert events[0].attempt == 1
    assert job.status == status


def test_a_report_on_a_stage_the_job_does_not_have_is_refused() -> None:
    job = job_in(STARTED)

    assert_refused(
        job.report_progress,
        stage_report(job, "collect", progress=0.5),
        f"Job {JOB_ID} has no stage 'collect'",
    )


@pytest.mark.parametrize("status", [CANCELING, SUCCESS, FAILURE, REVOKED])
def test_progress_is_accepted_only_while_the_job_is_started(status: JobStatus) -> None:
    job = job_in(status)

    assert_refused(
        job.report_progress,
        stage_report(job, "delay", progress=1.0),
        f"ReportProgress is not accepted while job {JOB_ID} is {status.value}",
    )


def test_progress_from_another_attempt_is_refused() -> None:
    job = job_in(STARTED)

    assert_refused(
        job.report_progress,
        stage_report(job, "delay", attempt=2, progress=0.5),
        f"Report from attempt 2 of job {JOB_ID}, whose current attempt is 1",
    )


# Logs from the runner.


@pytest.mark.parametrize("status", [STARTED, RETRY, CANCELING])
def test_the_runner_appends_log_lines_while_the_job_runs(status: JobStatus) -> None:
    job = job_in(status)

    job.append_log(report(AppendLog, job, level="WARNING", message="slow disk"))

    events = new_events(job)
    assert kinds(events) == ["LogAppended"]
    assert (events[0].level, events[0].message, events[0].attempt) == ("WARNING", "slow disk", 1)
    assert job.status == status


@pytest.mark.parametrize("status", [SUCCESS, FAILURE, REVOKED])
def test_no_log_lines_are_appended_to_an_ended_job(status: JobStatus) -> None:
    job = job_in(status)

    assert_refused(
        job.append_log,
        report(AppendLog, job, message="late"),
        f"AppendLog is not accepted while job {JOB_ID} is {status.value}",
    )


# Finish.


def test_a_job_succeeds_only_when_every_stage_is_complete() -> None:
    job = job_in(STARTED)
    not_yet = f"Job {JOB_ID} cannot succeed before every stage is complete"

    assert_refused(job.finish, report(FinishJob, job, status=SUCCESS), not_yet)
    job.report_progress(stage_report(job, "delay", status=CREATED, progress=1.0))
    assert job.progress["stages"][0]["status"] == "STARTED"  # at 1.0 but not final yet
    assert_refused(job.finish, report(FinishJob, job, status=SUCCESS), not_yet)
    job.report_progress(stage_report(job, "delay"))
    assert job.progress["stages"][0]["status"] == "SUCCESS"
    new_events(job)

    job.finish(report(FinishJob, job, status=SUCCESS))

    assert job.status == SUCCESS
    events = new_events(job)
    assert status_changes(events) == [("STARTED", "SUCCESS")]
    assert job.finished_at == events[0].timestamp
    assert logs(events) == [
        f"Changing status of job {JOB_ID} to SUCCESS",
        f'Finished job #{JOB_ID} "{NAME}" (SUCCESS)',
    ]


def test_an_ml_job_with_one_stage_left_cannot_succeed() -> None:
    job = started(delay=0, pipeline_id=1)
    for stage in ("collect", "process"):
        job.report_progress(stage_report(job, stage, status=SUCCESS, progress=1.0))

    assert_refused(
        job.finish,
        report(FinishJob, job, status=SUCCESS),
        f"Job {JOB_ID} cannot succeed before every stage is complete",
    )


@pytest.mark.parametrize("status", [STARTED, RETRY])
def test_a_failed_job_says_why_in_an_error_line(status: JobStatus) -> None:
    job = job_in(status)

    job.finish(report(FinishJob, job, status=FAILURE, reason="No pipeline specified"))

    assert job.status == FAILURE
    events = new_events(job)
    assert status_changes(events) == [(status.value, "FAILURE")]
    assert job.finished_at == next(e for e in events if isinstance(e, Job.StatusChanged)).timestamp
    lines = [(e.level, e.message) for e in events if isinstance(e, Job.LogAppended)]
    assert lines == [
        ("ERROR", f'Job #{JOB_ID} "{NAME}" failed: No pipeline specified'),
        ("INFO", f"Changing status of job {JOB_ID} to FAILURE"),
        ("INFO", f'Finished job #{JOB_ID} "{NAME}" (FAILURE)'),
    ]


@pytest.mark.parametrize("status", [CANCELING, SUCCESS, FAILURE, REVOKED])
@pytest.mark.parametrize("outcome", [SUCCESS, FAILURE])
def test_a_job_being_cancelled_or_ended_is_never_finished(
    status: JobStatus, outcome: JobStatus
) -> None:
    job = job_in(status)

    assert_refused(
        job.finish,
        report(FinishJob, job, status=outcome),
        f"FinishJob is not accepted while job {JOB_ID} is {status.value}",
    )


# The seed job, start to end.


def seed_log() -> list[tuple[str, str]]:
    """The seed's log lines as (level, message), oldest first."""
    lines = [SEED_LOG_LINE.match(line) for line in reversed(SEED["logs"]["stdout"])]
    return [(match.group(1), match.group(2)) for match in lines if match]


def test_the_seed_job_runs_to_success_with_the_seeds_log() -> None:
    assert len(seed_log()) == len(SEED["logs"]["stdout"]) == 10
    job = Job.create(
        JOB_ID, create_job(delay=SEED["delay"], pipeline_id=1, limit=100, start_now=True)
    )
    job.claim(report(ClaimJob, job))
    for second in (1, 3, 5, 7, 9):
        message = f"Delaying job {JOB_ID} for the {second} out of 10 seconds"
        job.append_log(report(AppendLog, job, message=message))
        job.report_progress(
            stage_report(
                job, "delay", status=STARTED, progress=second / 10, params={"mood": RUNNING_MOOD}
            )
        )
    job.report_progress(
        stage_report(job, "delay", status=SUCCESS, progress=1.0, params={"mood": DONE_MOOD})
    )
    job.finish(report(FinishJob, job, status=SUCCESS))

    events = new_events(job)
    lines = [(e.level, e.message) for e in events if isinstance(e, Job.LogAppended)]
    assert lines == seed_log()
    assert job.status == SEED["status"] == "SUCCESS"
    assert job.progress["summary"] == SEED["progress"]["summary"]
    seed_stage = SEED["progress"]["stages"][0]
    stage = job.progress["stages"][0]
    assert (stage["key"], stage["name"], stage["status"], stage["progress"]) == (
        seed_stage["key"],
        seed_stage["name"],
        seed_stage["status"],
        seed_stage["progress"],
    )
    assert stage["params"][1] == seed_stage["params"][1]  # the mood, 🥳
    assert job.started_at is not None
    assert job.finished_at is not None
    assert job.started_at < job.finished_at


# Refusals recorded, and commands already applied.


# The reaper.


def reap(job: Job, quiet_since: datetime) -> ReapJob:
    return ReapJob(
        job_id=job.job_id, attempt=job.attempt, quiet_since=quiet_since, idle=600, stall_limit=600
    )


def test_log_lines_and_refusals_do_not_keep_a_silent_job_from_the_reaper() -> None:
    job = job_in(STARTED)
    quiet_since = datetime.now(UTC)
    job.refuse(run(job), "Job 124 is already queued or running (STARTED)")
    job.append_log(report(AppendLog, job, message="still here"))
    job.note_worker_activity(NoteWorkerActivity(job_id=JOB_ID, message="Tasks fetched"))

    job.reap(reap(job, quiet_since))

    assert status_changes(new_events(job)) == [("STARTED", "FAILURE")]


def test_a_job_that_progressed_since_the_reapers_cut_off_is_left_running() -> None:
    job = job_in(STARTED)
    quiet_since = datetime.now(UTC)
    job.report_progress(stage_report(job, "delay", progress=0.5))
    new_events(job)

    assert_refused(job.reap, reap(job, quiet_since), "Job 124 has reported since")


def test_a_refusal_is_recorded_and_changes_nothing_else() -> None:
    job = job_in(SUCCESS)
    command = cancel(job)
    version = job.version
    unchanged = (job.status, job.attempt, job.runner, copy.deepcopy(job.progress))

    job.refuse(command, "Job 124 has already ended (SUCCESS); nothing to cancel")

    events = new_events(job)
    assert kinds(events) == ["CommandRefused"]
    assert (events[0].command, events[0].reason) == (
        "CancelJob",
        "Job 124 has already ended (SUCCESS); nothing to cancel",
    )
    assert events[0].command_id == command.command_id
    assert job.version == version + 1
    assert (job.status, job.attempt, job.runner, job.progress) == unchanged
    assert job.has_applied(command)


def test_a_job_knows_the_commands_it_has_applied() -> None:
    job = job_in(PENDING)
    claim = report(ClaimJob, job)
    other = report(ClaimJob, job, OTHER_RUNNER)

    assert not job.has_applied(claim)
    job.claim(claim)

    assert job.has_applied(claim)
    assert not job.has_applied(other)


# The named sets and job types of the contract.


def test_the_status_values_are_antennas() -> None:
    antennas = "CREATED PENDING STARTED SUCCESS FAILURE RETRY CANCELING REVOKED RECEIVED UNKNOWN"
    assert [status.value for status in JobStatus] == antennas.split()


def test_the_named_status_sets_are_those_of_contract_section_9() -> None:
    assert set(statuses.FINAL) == {"SUCCESS", "FAILURE", "REVOKED"}
    assert set(statuses.FAILED) == {"FAILURE", "REVOKED", "UNKNOWN"}
    assert set(statuses.RUNNING) == {"PENDING", "STARTED", "RETRY", "CANCELING", "UNKNOWN"}
    assert set(statuses.ACTIVE) == {"STARTED", "RETRY"}
    assert set(statuses.FINALIZABLE) == {"CREATED", "PENDING", "STARTED", "RETRY"}


def test_the_job_types_are_the_seven_of_contract_section_5() -> None:
    assert set(typing.get_args(job_types.JobTypeKey)) == set(job_types.JOB_TYPE_NAMES)
    assert job_types.JOB_TYPE_NAMES == {
        "ml": "ML pipeline",
        "populate_captures_collection": "Populate capture set",
        "data_storage_sync": "Data storage sync",
        "regroup_events": "Regroup sessions",
        "data_export": "Data Export",
        "post_processing": "Post Processing",
        "unknown": "Unknown",
    }
