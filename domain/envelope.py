"""The public shape of every event on the bus (DESIGN.md, "Names on the bus")."""

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION = 1


class EventEnvelope(BaseModel):
    """A job's event."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    type: str
    job_id: int
    version: int
    position: int | None  # the event's place in the global order; None in a job's own history
    occurred_at: datetime
    causation_id: str
    correlation_id: str
    actor: str
    schema_version: int = SCHEMA_VERSION
    data: dict[str, Any]


class CatalogEnvelope(BaseModel):
    """A catalog object's event: the same envelope, naming the object instead of a job."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    type: str
    kind: str
    object_id: int
    version: int
    position: int | None
    occurred_at: datetime
    causation_id: str
    correlation_id: str
    actor: str
    schema_version: int = SCHEMA_VERSION
    data: dict[str, Any]


Envelope = EventEnvelope | CatalogEnvelope

# The attributes of a stored event that the envelope carries outside `data`.
ENVELOPE_FIELDS = frozenset(
    {
        "originator_id",
        "originator_version",
        "originator_topic",
        "timestamp",
        "job_id",
        "kind",
        "object_id",
        "command_id",
        "correlation_id",
        "actor",
    }
)


def project_set_by(event: EventEnvelope) -> int | None:
    """The project a job's event puts it in: its creation's, or a move's; else None."""
    if event.type == "JobCreated":
        project_id: int = event.data["spec"]["project_id"]
        return project_id
    if event.type == "JobUpdated":
        moved_to: int | None = event.data["changes"].get("project_id")
        return moved_to
    return None


def origin(event: Envelope) -> tuple[str, int]:
    """The job or catalog object an event belongs to."""
    if isinstance(event, EventEnvelope):
        return ("job", event.job_id)
    return (event.kind, event.object_id)


def same_change(earlier: Envelope, later: Envelope) -> bool:
    """Whether two events in a row are of one command's change to one job or object."""
    return (origin(earlier), earlier.causation_id) == (origin(later), later.causation_id)


def envelope_of(event: Any, position: int | None) -> EventEnvelope:
    """The public envelope of a stored job event."""
    return EventEnvelope(job_id=event.job_id, **_common(event, position))


def catalog_envelope_of(event: Any, position: int | None) -> CatalogEnvelope:
    """The public envelope of a stored catalog event."""
    return CatalogEnvelope(kind=event.kind, object_id=event.object_id, **_common(event, position))


def _common(event: Any, position: int | None) -> dict[str, Any]:
    return {
        "id": uuid5(event.originator_id, str(event.originator_version)),
        "type": type(event).__name__,
        "version": event.originator_version,
        "position": position,
        "occurred_at": event.timestamp,
        "causation_id": event.command_id,
        "correlation_id": event.correlation_id,
        "actor": event.actor,
        "data": {k: v for k, v in event.__dict__.items() if k not in ENVELOPE_FIELDS},
    }


class Outcome(BaseModel):
    """What became of a command: accepted with the job's new version, or refused with a reason."""

    command_id: str
    command: str
    accepted: bool
    job_id: int | None = None
    object_id: int | None = None  # of a catalog object
    version: int | None = None
    position: int | None = None
    reason: str | None = None
    duplicate: bool = False
    job: dict[str, Any] | None = None
