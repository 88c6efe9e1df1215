"""The Job aggregate: the state machine of DESIGN.md, and the events it records.

Every public method checks its rule first and raises `Refused` before anything changes,
so a refused command is never half-applied. Every event carries the command that caused it.
"""

from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event
from pydantic import ValidationError

from domain.commands import (
    SPEC_FIELDS,
    AppendLog,
    ClaimJob,
    Command,
    ConfirmCancelled,
    CreateJob,
    FinishJob,
    JobSpec,
    NoteWorkerActivity,
    QueueImages,
    ReapJob,
    RecordResult,
    ReportProgress,
    RunnerReport,
    UpdateJob,
    validation_reason,
)
from domain.image_tally import (
    DONE,
    FAILED,
    PENDING,
    process_stage,
    results_stage,
    too_many_failed,
)
from domain.job_types import dispatch_mode_for, initial_stages
from domain.progress import (
    Progress,
    Stage,
    find_stage,
    is_complete,
    new_progress,
    reset_progress,
    update_stage,
    with_stage,
    with_stages,
    with_summary_status,
)
from domain.statuses import ACTIVE, FINAL, RUNNING, JobStatus

NAMESPACE = uuid5(NAMESPACE_URL, "https://jobledger/")

# A runner or workers are at work in these statuses, so silence means they are gone.
REAPABLE = frozenset({JobStatus.STARTED, JobStatus.RETRY, JobStatus.CANCELING})

# Events that leave the job as it was: a log line is a record of its own, a refusal changes
# nothing. They are no progress to the reaper, and the job view's row stays as it is.
UNCHANGING_EVENTS = frozenset({"LogAppended", "CommandRefused"})


class Refused(Exception):
    """A command the state machine does not allow; the message is the reason."""


def job_uuid(job_id: int) -> UUID:
    return uuid5(NAMESPACE, f"job/{job_id}")


def cause_of(command: Command) -> dict[str, Any]:
    return {
        "command_id": command.command_id,
        "correlation_id": command.correlation_id or command.command_id,
        "actor": command.actor,
    }


def minutes(seconds: float) -> str:
    return f"{round(seconds / 60, 1):g}"


def times_after(
    status: str, at: datetime, started_at: datetime | None, finished_at: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """started_at and finished_at after a status change at `at` (shared with the projection)."""
    if status == JobStatus.PENDING:
        return None, None
    if status == JobStatus.STARTED:
        return started_at or at, None
    if status in FINAL:
        return started_at, at
    return started_at, finished_at


class Job(Aggregate):
    # Version 1 had no `changed_at`; snapshots it took are upcast.
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["changed_at"] = state["_modified_on"]

    class JobCreated(Aggregate.Created):
        # Version 1 called the job's writable fields `fields`; stored events are upcast.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            if "fields" in state:
                state["spec"] = state.pop("fields")

        command_id: str
        correlation_id: str
        actor: str
        job_id: int
        spec: dict[str, Any]
        dispatch_mode: str
        progress: dict[str, Any]

    class JobEvent(Aggregate.Event):
        job_id: int
        command_id: str
        correlation_id: str
        actor: str

        def apply(self, aggregate: Any) -> None:
            self.mutate_job(aggregate)
            # Replayed as well as new: a job loaded from the store knows its commands too.
            aggregate.applied_commands[self.command_id] = self.originator_version
            if type(self).__name__ not in UNCHANGING_EVENTS:
                aggregate.changed_at = self.timestamp

        def mutate_job(self, job: "Job") -> None:
            """How this event changes the job."""

    class StatusChanged(JobEvent):
        status: str
        previous_status: str
        attempt: int

        def mutate_job(self, job: "Job") -> None:
            job.started_at, job.finished_at = times_after(
                self.status, self.timestamp, job.started_at, job.finished_at
            )
            job.status = JobStatus(self.status)
            job.progress = with_summary_status(job.progress, self.status)

    class StageProgressed(JobEvent):
        attempt: int
        stage: dict[str, Any]
        summary: dict[str, Any]

        def mutate_job(self, job: "Job") -> None:
            job.progress = with_stage(job.progress, self.stage)  # type: ignore[arg-type]

    class LogAppended(JobEvent):
        attempt: int
        level: str
        message: str

    class CancelRequested(JobEvent):
        attempt: int

    class JobClaimed(JobEvent):
        attempt: int
        runner: str

        def mutate_job(self, job: "Job") -> None:
            job.runner = self.runner

    class JobRetried(JobEvent):
        attempt: int
        progress: dict[str, Any]

        def mutate_job(self, job: "Job") -> None:
            job.attempt = self.attempt
            job.runner = None
            job.clear_tally()
            job.progress = self.progress  # type: ignore[assignment]

    class CommandRefused(JobEvent):
        command: str
        reason: str

    class ImagesQueued(JobEvent):
        attempt: int
        image_ids: list[str]
        stages: list[dict[str, Any]]
        summary: dict[str, Any]

        def mutate_job(self, job: "Job") -> None:
            job.images = dict.fromkeys(self.image_ids, PENDING)
            job.progress = with_stages(job.progress, self.stages)  # type: ignore[arg-type]

    class ResultRecorded(JobEvent):
        attempt: int
        processed: list[str]  # images done by this result
        failed: list[str]  # images failed by this result
        counted: list[str]  # images counted in the results for the first time
        detections: int
        classifications: int
        stages: list[dict[str, Any]]
        summary: dict[str, Any]

        def mutate_job(self, job: "Job") -> None:
            job.images.update(dict.fromkeys(self.processed, DONE))
            job.images.update(dict.fromkeys(self.failed, FAILED))
            job.counted.update(dict.fromkeys(self.counted))
            job.counters = {
                "captures": job.counters["captures"] + len(self.counted),
                "detections": job.counters["detections"] + self.detections,
                "classifications": job.counters["classifications"] + self.classifications,
            }
            job.progress = with_stages(job.progress, self.stages)  # type: ignore[arg-type]

    class JobUpdated(JobEvent):
        changes: dict[str, Any]

        def mutate_job(self, job: "Job") -> None:
            job.spec = {**job.spec, **self.changes}

    class JobDeleted(JobEvent):
        def mutate_job(self, job: "Job") -> None:
            job.deleted = True

    def __init__(
        self,
        command_id: str,
        correlation_id: str,
        actor: str,
        job_id: int,
        spec: dict[str, Any],
        dispatch_mode: str,
        progress: Progress,
    ) -> None:
        self.job_id = job_id
        self.spec = spec
        self.dispatch_mode = dispatch_mode
        self.progress = progress
        self.status = JobStatus.CREATED
        self.attempt = 1
        self.runner: str | None = None
        self.deleted = False
        self.clear_tally()
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.changed_at: datetime = self.created_on  # when an event last changed the job
        self.applied_commands: dict[str, int] = {command_id: 1}

    def clear_tally(self) -> None:
        """An async attempt's images (id → pending, done or failed) and results counters."""
        self.images: dict[str, str] = {}
        self.counted: dict[str, None] = {}
        self.counters = {"captures": 0, "detections": 0, "classifications": 0}

    @staticmethod
    def create_id(job_id: int, **_: Any) -> UUID:
        return job_uuid(job_id)

    @classmethod
    def create(cls, job_id: int, command: CreateJob, async_workers: bool = True) -> "Job":
        """`async_workers`: the project has workers pull its pipeline jobs' tasks."""
        spec = command.model_dump(include=set(SPEC_FIELDS))
        stages = initial_stages(command.job_type_key, command.delay, command.pipeline_id)
        job = cls._create(
            cls.JobCreated,
            job_id=job_id,
            spec=spec,
            dispatch_mode=dispatch_mode_for(command.delay, command.pipeline_id, async_workers),
            progress=new_progress(stages),
            **cause_of(command),
        )
        if command.start_now:
            job.run(command)
        return job

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        super().trigger_event(event_class, job_id=self.job_id, **kwargs)

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    def has_applied(self, command: Command) -> bool:
        return command.command_id in self.applied_commands

    # Commands from clients.

    def update(self, command: UpdateJob) -> None:
        """Change writable fields; the whole spec must stay valid. Stages are not rebuilt."""
        try:
            spec = JobSpec.model_validate({**self.spec, **command.changes}).model_dump()
        except ValidationError as error:
            raise Refused(validation_reason(error)) from None
        changes = {key: value for key, value in spec.items() if self.spec.get(key) != value}
        if changes:
            self.trigger_event(self.JobUpdated, changes=changes, **cause_of(command))

    def delete(self, command: Command) -> None:
        self.trigger_event(self.JobDeleted, **cause_of(command))

    def run(self, command: Command) -> None:
        """Queue a CREATED job; from a final status a run is a retry."""
        if self.status in FINAL:
            self.retry(command)
            return
        if self.status != JobStatus.CREATED:
            raise Refused(f"Job {self.job_id} is already queued or running ({self.status})")
        self._change_status(JobStatus.PENDING, command)

    def cancel(self, command: Command) -> None:
        if self.status in FINAL:
            raise Refused(f"Job {self.job_id} has already ended ({self.status}); nothing to cancel")
        if self.status == JobStatus.CANCELING:
            raise Refused(f"Job {self.job_id} is already being cancelled")
        if self.status in (JobStatus.CREATED, JobStatus.PENDING) or self.is_async:
            # Nothing of ours runs an async job once queued: workers just find no more tasks.
            self._change_status(JobStatus.REVOKED, command)
            return
        self.trigger_event(self.CancelRequested, attempt=self.attempt, **cause_of(command))
        self._change_status(JobStatus.CANCELING, command)

    def retry(self, command: Command) -> None:
        if self.status not in FINAL:
            raise Refused(
                f"Only a job that has ended can be retried; job {self.job_id} is {self.status}"
            )
        self.trigger_event(
            self.JobRetried,
            attempt=self.attempt + 1,
            progress=reset_progress(self.progress),
            **cause_of(command),
        )
        rerun = f'Re-running job #{self.job_id} "{self.name}" (attempt {self.attempt})'
        self._log("INFO", rerun, command)
        self._change_status(JobStatus.PENDING, command)

    # Reports from the runner of the current attempt.

    def claim(self, command: ClaimJob) -> None:
        """A runner takes the queued attempt, or takes over a started one after a restart.

        From then on only that runner's reports count, so an earlier runner can never
        report on top of the one that took over.
        """
        self._check_attempt(command)
        if self.status not in (JobStatus.PENDING, *ACTIVE):
            raise Refused(f"Job {self.job_id} is {self.status}; there is nothing to run")
        if command.runner == self.runner:
            raise Refused(f"Job {self.job_id} is already running in runner {command.runner}")
        self.trigger_event(
            self.JobClaimed, attempt=self.attempt, runner=command.runner, **cause_of(command)
        )
        if self.status == JobStatus.PENDING:
            self._log("INFO", f'Running job #{self.job_id} "{self.name}" ({self.status})', command)
            self._change_status(JobStatus.STARTED, command)
        else:
            self._log("INFO", f'Resuming job #{self.job_id} "{self.name}" ({self.status})', command)

    def report_progress(self, command: ReportProgress) -> None:
        self._check_attempt(command)
        self._check_status(command, ACTIVE)
        stage = find_stage(self.progress, command.stage)
        if stage is None:
            raise Refused(f"Job {self.job_id} has no stage {command.stage!r}")
        updates: dict[str, Any] = dict(command.params)
        if command.status is not None:
            updates["status"] = command.status
        if command.progress is not None:
            updates["progress"] = command.progress
        new_stage = update_stage(stage, updates)
        summary = with_stage(self.progress, new_stage)["summary"]
        self.trigger_event(
            self.StageProgressed,
            attempt=self.attempt,
            stage=new_stage,
            summary=summary,
            **cause_of(command),
        )

    def append_log(self, command: AppendLog) -> None:
        self._check_attempt(command)
        self._check_status(command, RUNNING)
        self._log(command.level, command.message, command)

    def note_worker_activity(self, command: NoteWorkerActivity) -> None:
        """Workers may call on a job in any status; the line records what they asked."""
        running = (self.attempt, self.status) == (command.while_running, JobStatus.STARTED)
        if command.while_running is not None and not running:
            raise Refused(f"Job {self.job_id} attempt {command.while_running} is not running")
        self._log(command.level, command.message, command)

    def finish(self, command: FinishJob) -> None:
        self._check_attempt(command)
        self._check_status(command, ACTIVE)
        if command.status == JobStatus.SUCCESS and not is_complete(self.progress["stages"]):
            raise Refused(f"Job {self.job_id} cannot succeed before every stage is complete")
        if command.status == JobStatus.FAILURE:
            failed = f'Job #{self.job_id} "{self.name}" failed: {command.reason}'
            self._log("ERROR", failed, command)
        self._change_status(command.status, command)
        self._log("INFO", f'Finished job #{self.job_id} "{self.name}" ({self.status})', command)

    def reap(self, command: ReapJob) -> None:
        """A started attempt that fell silent ends: FAILURE (REVOKED if it was being cancelled)."""
        if command.attempt != self.attempt or self.status not in REAPABLE:
            raise Refused(f"Job {self.job_id} is {self.status} in attempt {self.attempt}")
        if self.changed_at > command.quiet_since:  # as the job view's updated_at shows it
            raise Refused(f"Job {self.job_id} has reported since {command.quiet_since}")
        stages = ", ".join(
            f"{s['key']}={round(s['progress'] * 100)}% {s['status']}"
            for s in self.progress["stages"]
        )
        self._log(
            "WARNING",
            f"Reaping stalled job: no progress for {minutes(command.idle)} min (threshold"
            f" {minutes(command.stall_limit)} min). previous_status={self.status},"
            f" dispatch_mode={self.dispatch_mode}, stages: {stages or 'none'}",
            command,
        )
        ended = JobStatus.REVOKED if self.status == JobStatus.CANCELING else JobStatus.FAILURE
        if ended == JobStatus.FAILURE:
            stalled = f"stalled, no progress for {minutes(command.idle)} min"
            self._log("ERROR", f'Job #{self.job_id} "{self.name}" failed: {stalled}', command)
        self._change_status(ended, command)
        self._log("INFO", f'Finished job #{self.job_id} "{self.name}" ({self.status})', command)

    def queue_images(self, command: QueueImages) -> None:
        """Collect is done: these images go to the pipeline (none at all: the job is done)."""
        self._check_attempt(command)
        self._check_status(command, ACTIVE)
        if self.dispatch_mode == "internal":
            raise Refused(f"Job {self.job_id} has no pipeline to process images")
        if self.images:
            raise Refused(f"Attempt {self.attempt} of job {self.job_id} has queued its images")
        images = dict.fromkeys(command.image_ids, PENDING)
        collect_params: dict[str, Any] = {"Total Images": command.found}
        if len(images) < command.found:
            collect_params["Limit"] = len(images)
        stages = self._stages_with(
            collect=update_stage(
                self._stage("collect"), {**collect_params, "status": "SUCCESS", "progress": 1.0}
            ),
            process=process_stage(self._stage("process"), images),
            results=results_stage(self._stage("results"), images, 0, self.counters),
        )
        self.trigger_event(
            self.ImagesQueued,
            attempt=self.attempt,
            image_ids=list(images),
            stages=stages,
            summary=with_stages(self.progress, stages)["summary"],
            **cause_of(command),
        )
        self._finish_if_complete(command)

    def record_result(self, command: RecordResult) -> None:
        """Count a worker's result: its images are processed (or failed), counted once."""
        if command.attempt != self.attempt or self.status not in ACTIVE:
            raise Refused(
                f"Result for attempt {command.attempt} of job {self.job_id}, which is"
                f" {self.status} in attempt {self.attempt}"
            )
        if command.task_gone:
            raise Refused(
                f"Result for image {command.task_image_id} of job {self.job_id}, whose task is no"
                " longer out: answered already, or its queue emptied"
            )
        if command.task_image_id not in self.images:
            raise Refused(f"Image {command.task_image_id} is not one of job {self.job_id}'s")
        if command.error is not None:
            self._log(
                "ERROR",
                f"Pipeline returned error for job {self.job_id}, image {command.task_image_id}:"
                f" {command.error}",
                command,
            )
            failed = (
                [command.task_image_id] if self.images[command.task_image_id] == PENDING else []
            )
            processed, counted = [], []
        else:
            # The task's own image is done, and so is any other image of ours the result covers.
            covered = [command.task_image_id, *command.source_image_ids]
            processed = [i for i in dict.fromkeys(covered) if self.images.get(i) == PENDING]
            counted = [
                i
                for i in dict.fromkeys(covered)
                if self.images.get(i) in (PENDING, DONE) and i not in self.counted
            ]
            failed = []
        images = {**self.images, **dict.fromkeys(processed, DONE), **dict.fromkeys(failed, FAILED)}
        detections = sum(command.detections.get(image, 0) for image in counted)
        classifications = sum(command.classifications.get(image, 0) for image in counted)
        counters = {
            "captures": self.counters["captures"] + len(counted),
            "detections": self.counters["detections"] + detections,
            "classifications": self.counters["classifications"] + classifications,
        }
        stages = self._stages_with(
            process=process_stage(self._stage("process"), images),
            results=results_stage(
                self._stage("results"), images, len(self.counted) + len(counted), counters
            ),
        )
        self.trigger_event(
            self.ResultRecorded,
            attempt=self.attempt,
            processed=processed,
            failed=failed,
            counted=counted,
            detections=detections,
            classifications=classifications,
            stages=stages,
            summary=with_stages(self.progress, stages)["summary"],
            **cause_of(command),
        )
        self._finish_if_complete(command)

    def _finish_if_complete(self, command: Command) -> None:
        """Every stage complete: SUCCESS, or FAILURE when more than half the images failed."""
        if not is_complete(self.progress["stages"]):
            return
        failed = sum(state == FAILED for state in self.images.values())
        if too_many_failed(failed, len(self.images)):
            self._log(
                "ERROR",
                f'Job #{self.job_id} "{self.name}" failed: Failed to process'
                " more than 50% of images",
                command,
            )
            self._change_status(JobStatus.FAILURE, command)
        else:
            self._change_status(JobStatus.SUCCESS, command)
        self._log("INFO", f'Finished job #{self.job_id} "{self.name}" ({self.status})', command)

    @property
    def is_async(self) -> bool:
        return self.dispatch_mode == "async_api"

    def _stage(self, key: str) -> Stage:
        stage = find_stage(self.progress, key)
        if stage is None:
            raise Refused(f"Job {self.job_id} has no stage {key!r}")
        return stage

    def _stages_with(self, **stages: Stage) -> list[Stage]:
        return [stages.get(s["key"], s) for s in self.progress["stages"]]

    def confirm_cancelled(self, command: ConfirmCancelled) -> None:
        self._check_attempt(command)
        self._check_status(command, frozenset({JobStatus.CANCELING}))
        self._change_status(JobStatus.REVOKED, command)

    def refuse(self, command: Command, reason: str) -> None:
        """Record a refused command in the history; nothing else changes."""
        self.trigger_event(
            self.CommandRefused, command=type(command).__name__, reason=reason, **cause_of(command)
        )

    # Rules shared by the commands above.

    def _check_attempt(self, command: RunnerReport) -> None:
        if command.attempt != self.attempt:
            raise Refused(
                f"Report from attempt {command.attempt} of job {self.job_id}, "
                f"whose current attempt is {self.attempt}"
            )
        if not isinstance(command, ClaimJob | ConfirmCancelled) and command.runner != self.runner:
            running = f"is run by {self.runner}" if self.runner else "has not been claimed"
            raise Refused(f"Report from runner {command.runner}, but job {self.job_id} {running}")

    def _check_status(self, command: RunnerReport, allowed: frozenset[JobStatus]) -> None:
        if self.status not in allowed:
            raise Refused(
                f"{type(command).__name__} is not accepted while job {self.job_id} is {self.status}"
            )

    def _change_status(self, status: JobStatus, command: Command) -> None:
        self.trigger_event(
            self.StatusChanged,
            status=status.value,
            previous_status=self.status.value,
            attempt=self.attempt,
            **cause_of(command),
        )
        self._log("INFO", f"Changing status of job {self.job_id} to {status}", command)

    def _log(self, level: str, message: str, command: Command) -> None:
        self.trigger_event(
            self.LogAppended,
            attempt=self.attempt,
            level=level,
            message=message,
            **cause_of(command),
        )


class JobNumbers(Aggregate):
    """The sequence of job ids. Saved with each new job, so two handlers never hand out one id."""

    def __init__(self) -> None:
        self.last = 0

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return JOB_NUMBERS_ID

    @event("Allocated")
    def allocate(self) -> None:
        self.last += 1


JOB_NUMBERS_ID = uuid5(NAMESPACE, "job-numbers")


class CreationReceipt(Aggregate):
    """Which job a CreateJob command made, so that a redelivered CreateJob has one effect."""

    def __init__(self, command_id: str, job_id: int) -> None:
        self.command_id = command_id
        self.job_id = job_id

    @staticmethod
    def create_id(command_id: str, **_: Any) -> UUID:
        return receipt_uuid(command_id)


def receipt_uuid(command_id: str) -> UUID:
    return uuid5(NAMESPACE, f"create/{command_id}")


# The names of the events a job records, as the envelope's `type` gives them.
JOB_EVENT_TYPES = frozenset(
    name
    for name, member in vars(Job).items()
    if isinstance(member, type)
    and issubclass(member, Aggregate.Event)
    and member not in (Job.Event, Job.Created, Job.JobEvent)  # the bases, never recorded
)
