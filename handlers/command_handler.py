"""Applies commands to Job aggregates and saves the events: the only writer of the event store.

`ROUTES` is the one table that says what each command does. A batch of commands is applied
in order and saved in one transaction; a conflict with another writer replays the batch
one command at a time on freshly loaded aggregates.
"""

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Recording
from pydantic import ValidationError

from domain.catalog import (
    UNIQUE,
    CatalogCreationReceipt,
    CatalogNumbers,
    CatalogObject,
    UniqueValue,
    catalog_receipt_uuid,
    catalog_uuid,
    job_move_errors,
    job_reference_errors,
    numbers_uuid,
    refusal_reason,
    save_errors,
    unique_uuid,
    validated_fields,
)
from domain.commands import (
    SPEC_FIELDS,
    AppendLog,
    CancelJob,
    CatalogKind,
    ClaimJob,
    Command,
    ConfirmCancelled,
    CreateJob,
    DeleteJob,
    FinishJob,
    JobCommand,
    JobSpec,
    NoteServicesSeen,
    NoteWorkerActivity,
    QueueImages,
    ReapJob,
    RecordResult,
    ReportProgress,
    RetryJob,
    RunJob,
    SaveCatalogObject,
    UpdateJob,
)
from domain.envelope import Outcome
from domain.image_tally import PENDING
from domain.job import (
    JOB_NUMBERS_ID,
    CreationReceipt,
    Job,
    JobNumbers,
    Refused,
    job_uuid,
    receipt_uuid,
)
from infra.event_store import EventStore, EventTooLarge

log = logging.getLogger(__name__)

ROUTES: dict[type[Command], Callable[[Job, Any], None]] = {
    UpdateJob: Job.update,
    DeleteJob: Job.delete,
    RunJob: Job.run,
    CancelJob: Job.cancel,
    RetryJob: Job.retry,
    ClaimJob: Job.claim,
    ReportProgress: Job.report_progress,
    AppendLog: Job.append_log,
    FinishJob: Job.finish,
    ConfirmCancelled: Job.confirm_cancelled,
    QueueImages: Job.queue_images,
    RecordResult: Job.record_result,
    ReapJob: Job.reap,
    NoteWorkerActivity: Job.note_worker_activity,
}

CONFLICT_RETRIES = 3


def job_brief(job: Job) -> dict[str, Any]:
    """What a runner or client needs to know of a job after its command."""
    return {
        "id": job.job_id,
        "name": job.name,
        "status": job.status.value,
        "attempt": job.attempt,
        "delay": job.spec["delay"],
        "limit": job.spec["limit"],
        "shuffle": job.spec["shuffle"],
        "project_id": job.spec["project_id"],
        "pipeline_id": job.spec["pipeline_id"],
        "source_image_collection_id": job.spec["source_image_collection_id"],
        "source_image_single_id": job.spec["source_image_single_id"],
        "job_type_key": job.spec["job_type_key"],
        "dispatch_mode": job.dispatch_mode,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "stages": job.progress["stages"],
        "pending_images": [image for image, state in job.images.items() if state == PENDING],
    }


@dataclass
class _Applied:
    """A command applied in memory, waiting for the save that makes it true."""

    outcome: Outcome
    aggregate_id: UUID | None = None
    saved: list[Aggregate] = field(default_factory=list)


class CommandHandler:
    """Single-threaded by design: run it on one writer thread."""

    def __init__(self, store: EventStore, cache_size: int = 1000) -> None:
        self.store = store
        self.cache_size = cache_size
        self._cache: OrderedDict[UUID, Aggregate] = OrderedDict()

    def handle(self, commands: list[Command]) -> list[Outcome]:
        """Apply the commands in order and save them; one outcome per command."""
        try:
            return self._apply_and_save(commands)
        except (IntegrityError, EventTooLarge):
            # Another writer saved one of these aggregates first, or one command's change is
            # too large for the bus: one at a time, from the store.
            self._cache.clear()
            return [self._handle_one(command) for command in commands]

    def _handle_one(self, command: Command) -> Outcome:
        for _ in range(CONFLICT_RETRIES):
            try:
                return self._apply_and_save([command])[0]
            except IntegrityError:
                self._cache.clear()
            except EventTooLarge as error:
                self._cache.clear()
                return self._refuse_whole(command, str(error))
        return self._apply_and_save([command])[0]

    def _refuse_whole(self, command: Command, reason: str) -> Outcome:
        """Refuse a command that cannot be applied at all; a job records the refusal."""
        job = self._load_job(command.job_id) if isinstance(command, JobCommand) else None
        if job is None:
            return _refused(command, reason)
        return self._save([_refusal_recorded(job, command, reason)])[0]

    def _apply_and_save(self, commands: list[Command]) -> list[Outcome]:
        return self._save([self._apply(command) for command in commands])

    def _save(self, applied: list[_Applied]) -> list[Outcome]:
        touched = {id(a): a for item in applied for a in item.saved}
        try:
            recordings = self.store.save(*touched.values()) if touched else []
        except Exception:
            self._cache.clear()  # the cached aggregates hold events that were not saved
            raise
        positions = _positions(recordings)
        for item in applied:
            outcome = item.outcome
            if item.aggregate_id is not None and outcome.version is not None:
                outcome.position = positions.get((item.aggregate_id, outcome.version))
        return [item.outcome for item in applied]

    def _apply(self, command: Command) -> _Applied:
        if isinstance(command, CreateJob):
            return self._create(command)
        if isinstance(command, SaveCatalogObject):
            return self._save_catalog_object(command)
        if isinstance(command, NoteServicesSeen):
            return self._note_services_seen(command)
        assert isinstance(command, JobCommand)
        job = self._load_job(command.job_id)
        if job is None or job.deleted:
            return _Applied(_refused(command, f"Job {command.job_id} does not exist"))
        if job.has_applied(command):
            return _Applied(_outcome(command, job, duplicate=True))
        try:
            if isinstance(command, UpdateJob):
                self._check_update(job, command)
            ROUTES[type(command)](job, command)
        except Refused as refusal:
            return _refusal_recorded(job, command, str(refusal))
        return _Applied(_outcome(command, job), job.id, [job])

    def _create(self, command: CreateJob) -> _Applied:
        receipt = self._load(receipt_uuid(command.command_id))
        if isinstance(receipt, CreationReceipt):
            job = self._load_job(receipt.job_id)
            assert job is not None
            return _Applied(_outcome(command, job, duplicate=True))
        spec = command.model_dump(include=set(SPEC_FIELDS))
        if errors := job_reference_errors(spec, self._referent):
            # Refused before an id is taken: nothing is created.
            return _Applied(_refused(command, refusal_reason(errors)))
        project = self._load_catalog_object("projects", command.project_id)
        assert project is not None  # the reference check found it
        numbers = self._load(JOB_NUMBERS_ID) or JobNumbers()
        assert isinstance(numbers, JobNumbers)
        numbers.allocate()
        job = Job.create(numbers.last, command, project.fields["async_pipeline_workers"])
        receipt = CreationReceipt(command_id=command.command_id, job_id=job.job_id)
        for aggregate in (numbers, job, receipt):
            self._remember(aggregate)
        return _Applied(_outcome(command, job), job.id, [numbers, job, receipt])

    def _check_update(self, job: Job, command: UpdateJob) -> None:
        """The job's references after the change must exist and belong to its project then."""
        try:
            spec = JobSpec.model_validate({**job.spec, **command.changes}).model_dump()
        except ValidationError:
            return  # Job.update refuses it, naming the field
        errors = job_reference_errors(spec, self._referent)
        export = self._export_naming(job.job_id)
        if errors := errors | job_move_errors(job.job_id, spec["project_id"], export):
            raise Refused(refusal_reason(errors))

    def _export_naming(self, job_id: int) -> dict[str, Any] | None:
        """The data export that names the job (its id and fields), if one does."""
        claim = self._load_unique("exports", "job", job_id)
        if claim is None or claim.holder is None:
            return None
        export = self._load_catalog_object("exports", claim.holder)
        return None if export is None else {"id": claim.holder, **export.fields}

    def _save_catalog_object(self, command: SaveCatalogObject) -> _Applied:
        """Create the object (the next id of its kind when none is given) or change it.

        Saving the same fields again changes nothing, so a redelivered command has one effect.
        """
        if command.object_id is None:
            receipt = self._load(catalog_receipt_uuid(command.command_id))
            if isinstance(receipt, CatalogCreationReceipt):
                created = self._load_catalog_object(receipt.kind, receipt.object_id)
                outcome = _catalog_outcome(command, receipt.object_id, created)
                return _Applied(outcome.model_copy(update={"duplicate": True}))
        numbers = self._load(numbers_uuid(command.kind)) or CatalogNumbers(command.kind)
        assert isinstance(numbers, CatalogNumbers)
        object_id = command.object_id or numbers.last + 1
        found = self._load_catalog_object(command.kind, object_id)
        try:
            before = found.fields if found is not None else None
            base = before if before is not None and command.partial else {}
            fields = validated_fields(command.kind, {**base, **command.fields})
            if errors := save_errors(command.kind, object_id, before, fields, self._referent):
                raise Refused(refusal_reason(errors))
            for field in UNIQUE.get(command.kind, {}):
                self._check_unique(command.kind, field, fields[field], object_id)
            if found is None:
                found = CatalogObject.create(object_id, command)
            else:
                found.change(command)
        except Refused as refusal:
            # The id the sender named, if any: a refused create takes no number.
            return _Applied(_catalog_outcome(command, command.object_id, None, str(refusal)))
        saved: list[Aggregate] = [found]
        for field in UNIQUE.get(command.kind, {}):
            was = (before or {}).get(field)
            saved += self._move_unique(command.kind, field, object_id, was, fields[field])
        if object_id > numbers.last:
            numbers.take(object_id)
            saved.append(numbers)
        if command.object_id is None:
            saved.append(CatalogCreationReceipt(command.command_id, command.kind, object_id))
        for aggregate in saved:
            self._remember(aggregate)
        return _Applied(_catalog_outcome(command, object_id, found), found.id, saved)

    def _note_services_seen(self, command: NoteServicesSeen) -> _Applied:
        services = {i: self._load_catalog_object("services", i) for i in command.service_ids}
        if missing := [str(i) for i, service in services.items() if service is None]:
            reason = f"No processing service {', '.join(missing)}: none is marked seen"
            return _Applied(
                Outcome(
                    command_id=command.command_id,
                    command="NoteServicesSeen",
                    accepted=False,
                    reason=reason,
                )
            )
        seen = [service for service in services.values() if service is not None]
        for service in seen:
            service.seen(command)
        return _Applied(
            Outcome(command_id=command.command_id, command="NoteServicesSeen", accepted=True),
            saved=list(seen),
        )

    def _check_unique(self, kind: CatalogKind, field: str, value: Any, object_id: int) -> None:
        holder = self._load_unique(kind, field, value)
        if holder is not None:
            holder.check_free_for(object_id)

    def _move_unique(
        self, kind: CatalogKind, field: str, object_id: int, was: Any, value: Any
    ) -> list[Aggregate]:
        """The object takes `value` of a unique field (checked free) and gives up the value it
        `was`: the claims that changed, to be saved with the object. None is no value."""
        changed: list[Aggregate] = []
        holder = self._load_unique(kind, field, value)
        if value is not None and holder is None:
            changed.append(UniqueValue(kind, field, value, object_id))
        elif holder is not None and holder.holder != object_id:
            holder.take(object_id)
            changed.append(holder)
        previous = None if was in (None, value) else self._load_unique(kind, field, was)
        if previous is not None and previous.holder == object_id:
            previous.release()
            changed.append(previous)
        for aggregate in changed:
            self._remember(aggregate)
        return changed

    def _load_unique(self, kind: CatalogKind, field: str, value: Any) -> UniqueValue | None:
        if value is None:
            return None
        found = self._load(unique_uuid(kind, field, value))
        assert found is None or isinstance(found, UniqueValue)
        return found

    def _referent(self, kind: str, object_id: int) -> dict[str, Any] | None:
        """What a reference names: a catalog object's fields, or a job's project."""
        if kind == "jobs":
            job = self._load_job(object_id)
            return None if job is None or job.deleted else {"project_id": job.spec["project_id"]}
        found = self._load_catalog_object(kind, object_id)
        return None if found is None else found.fields

    def _load_catalog_object(self, kind: str, object_id: int) -> CatalogObject | None:
        found = self._load(catalog_uuid(kind, object_id))
        assert found is None or isinstance(found, CatalogObject)
        return found

    def _load_job(self, job_id: int) -> Job | None:
        job = self._load(job_uuid(job_id))
        assert job is None or isinstance(job, Job)
        return job

    def _load(self, aggregate_id: UUID) -> Aggregate | None:
        aggregate = self._cache.get(aggregate_id)
        if aggregate is not None:
            self._cache.move_to_end(aggregate_id)
            return aggregate
        try:
            aggregate = self.store.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        self._remember(aggregate)
        return aggregate

    def _remember(self, aggregate: Aggregate) -> None:
        self._cache[aggregate.id] = aggregate
        self._cache.move_to_end(aggregate.id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


def _refusal_recorded(job: Job, command: Command, reason: str) -> _Applied:
    """The job records that it refused the command, and why."""
    job.refuse(command, reason)
    return _Applied(_outcome(command, job, reason=reason), job.id, [job])


def _positions(recordings: list[Recording[Any]]) -> dict[tuple[UUID, int], int]:
    return {
        (r.domain_event.originator_id, r.domain_event.originator_version): r.notification.id
        for r in recordings
    }


def _outcome(
    command: Command, job: Job, *, reason: str | None = None, duplicate: bool = False
) -> Outcome:
    return Outcome(
        command_id=command.command_id,
        command=type(command).__name__,
        accepted=reason is None,
        job_id=job.job_id,
        version=job.version,
        reason=reason,
        duplicate=duplicate,
        job=job_brief(job),
    )


def _catalog_outcome(
    command: SaveCatalogObject, object_id: int | None, found: CatalogObject | None, reason: str = ""
) -> Outcome:
    return Outcome(
        command_id=command.command_id,
        command=type(command).__name__,
        accepted=found is not None,
        object_id=object_id,
        version=found.version if found else None,
        reason=reason or None,
    )


def _refused(command: Command, reason: str) -> Outcome:
    job_id = command.job_id if isinstance(command, JobCommand) else None
    return Outcome(
        command_id=command.command_id,
        command=type(command).__name__,
        accepted=False,
        job_id=job_id,
        reason=reason,
    )
