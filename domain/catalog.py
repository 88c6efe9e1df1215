"""The catalog: the projects, deployments, collections, captures, pipelines, processing services
and data exports that jobs refer to (CONTRACT.md section 5).

Each object is an aggregate of its own, so every change to it is an event like a job's: a
replay rebuilds the objects a job view nests exactly as they were.
"""

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, get_args
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event
from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from domain.commands import (
    MAX_ID,
    CatalogKind,
    Command,
    Name,
    SaveCatalogObject,
    validation_reason,
    without_null_characters,
)
from domain.job import NAMESPACE, Refused, cause_of

# In the order an import saves them, so that references point backwards.
KINDS: tuple[CatalogKind, ...] = get_args(CatalogKind)

SLUG = re.compile(r"[-a-zA-Z0-9_]+")
BAD_SLUG = "Enter a valid “slug” consisting of letters, numbers, underscores or hyphens."

Id = Field(gt=0, le=MAX_ID)


def each_once(ids: list[int]) -> list[int]:
    return list(dict.fromkeys(ids))


# Ids of other objects, each once, as Django keeps a many-to-many relation.
IdSet = Annotated[list[int], AfterValidator(each_once)]


class Fields(BaseModel):
    # As for jobs, fields a client may not write are ignored rather than refused.
    model_config = ConfigDict(extra="ignore")

    refuse_null_characters = field_validator("*", mode="before")(without_null_characters)


class ProjectFields(Fields):
    name: Name
    description: str = ""
    draft: bool = False  # a draft project's jobs are seen by its members only
    async_pipeline_workers: bool = True  # pipeline jobs are async_api, else sync_api


class DeploymentFields(Fields):
    name: Name
    project_id: int = Id


# How a collection's images were chosen, as Antenna names the methods.
SamplingMethod = Literal[
    "full",
    "random",
    "stratified_random",
    "interval",
    "manual",
    "starred",
    "random_from_each_event",
    "last_and_random_from_each_event",
    "greatest_file_size_from_each_event",
    "detections_only",
    "common_combined",
]


class CollectionFields(Fields):
    name: Name
    project_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    method: SamplingMethod = "full"
    images: IdSet = Field(default_factory=list)  # capture ids


class CaptureFields(Fields):
    project_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    deployment_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    url: AnyHttpUrl | None = None  # handed to workers and services as the image's URL
    width: int | None = Field(default=None, ge=0)
    height: int | None = Field(default=None, ge=0)
    timestamp: datetime | None = None
    event_id: int | None = None


class PipelineFields(Fields):
    name: Name
    # Workers poll by slug, several at once comma-separated: a slug is one word.
    slug: str = Field(min_length=1, max_length=255)
    description: str = ""
    version: int = Field(default=1, ge=0)
    version_name: str = ""
    batch_size: int = Field(default=1, ge=1)  # images per request to a sync processing service
    created_at: datetime | None = None  # as the pipeline's origin gives them; else the catalog's
    updated_at: datetime | None = None

    @field_validator("slug")
    @classmethod
    def one_word(cls, slug: str) -> str:
        if not SLUG.fullmatch(slug):
            raise ValueError(BAD_SLUG)
        return slug


class ServiceFields(Fields):
    """A processing service: with an endpoint it serves sync_api jobs over HTTP; without one
    it stands for workers that pull an async_api job's tasks."""

    name: Name
    endpoint_url: AnyHttpUrl | None = None
    pipelines: IdSet = Field(default_factory=list)
    projects: IdSet = Field(default_factory=list)


class ExportFields(Fields):
    user: int = Field(ge=0, le=MAX_ID)
    project: int = Id
    format: str = Field(min_length=1, max_length=255)
    filters: dict[str, Any] | None = None
    file_url: str | None = None
    job: int | None = Field(default=None, gt=0, le=MAX_ID)  # the job that exports it


FIELDS: dict[CatalogKind, type[Fields]] = {
    "projects": ProjectFields,
    "deployments": DeploymentFields,
    "collections": CollectionFields,
    "captures": CaptureFields,
    "pipelines": PipelineFields,
    "services": ServiceFields,
    "exports": ExportFields,
}

# What a reference may point into: a catalog kind, or jobs (an export names its job).
Referent = CatalogKind | Literal["jobs"]

# Reference fields, the kind each points into: what they name must exist and, where it
# belongs to a project, to the referring object's.
REFERENCES: dict[CatalogKind, dict[str, Referent]] = {
    "deployments": {"project_id": "projects"},
    "collections": {"project_id": "projects", "images": "captures"},
    "captures": {"project_id": "projects", "deployment_id": "deployments"},
    "services": {"pipelines": "pipelines", "projects": "projects"},
    "exports": {"project": "projects", "job": "jobs"},
}

# A job's reference fields, the kind each points into.
JOB_REFERENCES: dict[str, CatalogKind] = {
    "project_id": "projects",
    "deployment_id": "deployments",
    "source_image_collection_id": "collections",
    "source_image_single_id": "captures",
    "pipeline_id": "pipelines",
}

# Fields whose value one object of the kind holds at a time, and DRF's words when taken:
# workers poll by a pipeline's slug; a job shows the one data export it makes.
UNIQUE: dict[CatalogKind, dict[str, str]] = {
    "pipelines": {"slug": "pipeline with this slug already exists."},
    "exports": {"job": "data export with this job already exists."},
}

# The object (its fields, with `project_id` where it belongs to a project) of a kind (a
# Referent) and id, None when there is none.
Lookup = Callable[[str, int], dict[str, Any] | None]


def validated_fields(kind: CatalogKind, fields: dict[str, Any]) -> dict[str, Any]:
    """The object's fields with defaults, as JSON values; `Refused` names what is wrong."""
    try:
        return FIELDS[kind].model_validate(fields).model_dump(mode="json")
    except ValidationError as error:
        raise Refused(validation_reason(error)) from None


def referenced(kind: CatalogKind, fields: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(field, kind, id) of every object these fields refer to."""
    found: list[tuple[str, str, int]] = []
    for field, target in REFERENCES.get(kind, {}).items():
        value = fields.get(field)
        for object_id in value if isinstance(value, list) else [value]:
            if object_id is not None:
                found.append((field, target, object_id))
    return found


def project_of(kind: CatalogKind, object_id: int | None, fields: dict[str, Any]) -> int | None:
    """The project an object belongs to; None for the objects every project shares."""
    match kind:
        case "projects":
            return object_id
        case "exports":
            return fields.get("project")
        case "pipelines" | "services":
            return None
    return fields.get("project_id")


def reference_errors(
    references: list[tuple[str, str, int]], project_id: int | None, lookup: Lookup
) -> dict[str, list[str]]:
    """What is wrong with each reference field, in DRF's words where DRF has them: an object
    that does not exist, or one that belongs to another project than `project_id`."""
    errors: dict[str, list[str]] = {}
    for field, kind, object_id in references:
        found = lookup(kind, object_id)
        if found is None:
            problem = f'Invalid pk "{object_id}" - object does not exist.'
        elif project_id is not None and found.get("project_id") not in (None, project_id):
            noun = kind.rstrip("s").capitalize()
            problem = (
                f"{noun} {object_id} belongs to project {found['project_id']}, not {project_id}."
            )
        else:
            continue
        errors.setdefault(field, [problem])  # the first problem of a field says enough
    return errors


def save_errors(
    kind: CatalogKind,
    object_id: int | None,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    lookup: Lookup,
) -> dict[str, list[str]]:
    """What is wrong with saving `after` over `before` (None: a new object): a reference
    that does not hold, or a move to another project, which would leave the jobs and objects
    that refer to it there pointing across projects."""
    own_project = project_of(kind, object_id, after)
    errors = reference_errors(referenced(kind, after), own_project, lookup)
    if before is not None and kind != "projects":
        was_in = project_of(kind, object_id, before)
        if was_in != own_project:
            field = "project" if kind == "exports" else "project_id"
            noun = kind.rstrip("s").capitalize()
            where = "in no project" if was_in is None else f"in project {was_in}"
            errors.setdefault(field, [f"{noun} {object_id} stays {where}."])
    return errors


def unique_errors(
    kind: CatalogKind,
    object_id: int | None,
    fields: dict[str, Any],
    others: dict[int, dict[str, Any]],
) -> dict[str, list[str]]:
    """The UNIQUE fields of `fields` whose value another of `others` (objects of the kind by
    id) holds, in DRF's words."""
    return {
        field: [taken]
        for field, taken in UNIQUE.get(kind, {}).items()
        if fields.get(field) is not None
        and any(
            other.get(field) == fields[field]
            for other_id, other in others.items()
            if other_id != object_id
        )
    }


def job_reference_errors(spec: dict[str, Any], lookup: Lookup) -> dict[str, list[str]]:
    """What is wrong with a job's references (`spec`: its writable fields): each must exist
    and, where it belongs to a project, belong to the job's."""
    references: list[tuple[str, str, int]] = [
        (field, kind, spec[field])
        for field, kind in JOB_REFERENCES.items()
        if spec.get(field) is not None
    ]
    return reference_errors(references, spec["project_id"], lookup)


def job_move_errors(
    job_id: int, project_id: int, export: dict[str, Any] | None
) -> dict[str, list[str]]:
    """A job that a data export names (`export`: its id and fields) stays in its project."""
    if export is None or export["project"] == project_id:
        return {}
    stays = f"Job {job_id} stays in project {export['project']}"
    return {"project_id": [f"{stays}: data export {export['id']} of that project names it."]}


def refusal_reason(errors: dict[str, list[str]]) -> str:
    """Field errors as one reason on the bus: `field: problem; field: problem`."""
    return "; ".join(f"{field}: {problems[0]}" for field, problems in errors.items())


def catalog_uuid(kind: str, object_id: int) -> UUID:
    return uuid5(NAMESPACE, f"catalog/{kind}/{object_id}")


def numbers_uuid(kind: str) -> UUID:
    return uuid5(NAMESPACE, f"catalog-numbers/{kind}")


def unique_uuid(kind: str, field: str, value: Any) -> UUID:
    return uuid5(NAMESPACE, f"unique/{kind}/{field}/{value}")


class CatalogObject(Aggregate):
    class CatalogObjectCreated(Aggregate.Created):
        command_id: str
        correlation_id: str
        actor: str
        kind: str
        object_id: int
        fields: dict[str, Any]

    class CatalogEvent(Aggregate.Event):
        kind: str
        object_id: int
        command_id: str
        correlation_id: str
        actor: str

    class CatalogObjectChanged(CatalogEvent):
        fields: dict[str, Any]  # all of them, after the change
        changes: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate.fields = self.fields

    class ServiceSeen(CatalogEvent):
        """Workers of this processing service called (the event's time is when)."""

    def __init__(
        self,
        command_id: str,
        correlation_id: str,
        actor: str,
        kind: str,
        object_id: int,
        fields: dict[str, Any],
    ) -> None:
        self.kind = kind
        self.object_id = object_id
        self.fields = fields

    @staticmethod
    def create_id(kind: str, object_id: int, **_: Any) -> UUID:
        return catalog_uuid(kind, object_id)

    @classmethod
    def create(cls, object_id: int, command: SaveCatalogObject) -> "CatalogObject":
        if command.partial:
            raise Refused(f"{command.kind} {object_id} does not exist")
        fields = validated_fields(command.kind, command.fields)
        return cls._create(
            cls.CatalogObjectCreated,
            kind=command.kind,
            object_id=object_id,
            fields=fields,
            **cause_of(command),
        )

    def change(self, command: SaveCatalogObject) -> None:
        """Replace the fields, or with `partial` only those given; the whole must stay valid."""
        base = self.fields if command.partial else {}
        fields = validated_fields(command.kind, {**base, **command.fields})
        changes = {key: value for key, value in fields.items() if self.fields.get(key) != value}
        if changes:
            self.trigger_event(
                self.CatalogObjectChanged, fields=fields, changes=changes, **cause_of(command)
            )

    def seen(self, command: Command) -> None:
        if self.kind != "services":
            raise Refused(f"{self.kind} {self.object_id} is not a processing service")
        self.trigger_event(self.ServiceSeen, **cause_of(command))

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        super().trigger_event(event_class, kind=self.kind, object_id=self.object_id, **kwargs)


class CatalogCreationReceipt(Aggregate):
    """Which object a SaveCatalogObject without an id created, so that a redelivered one
    creates no second object."""

    def __init__(self, command_id: str, kind: str, object_id: int) -> None:
        self.command_id = command_id
        self.kind = kind
        self.object_id = object_id

    @staticmethod
    def create_id(command_id: str, **_: Any) -> UUID:
        return catalog_receipt_uuid(command_id)


def catalog_receipt_uuid(command_id: str) -> UUID:
    return uuid5(NAMESPACE, f"catalog-create/{command_id}")


class CatalogNumbers(Aggregate):
    """The ids of one kind: new objects get the next one, imported ones keep theirs."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.last = 0

    @staticmethod
    def create_id(kind: str) -> UUID:
        return numbers_uuid(kind)

    @event("Taken")
    def take(self, object_id: int) -> None:
        self.last = max(self.last, object_id)


class UniqueValue(Aggregate):
    """Which object of a kind holds a value of one of its UNIQUE fields. Saved in the same
    transaction as the object that takes or gives it up, so of two writers giving one value
    to two objects, the second conflicts and, loading it again, is refused."""

    def __init__(self, kind: CatalogKind, field: str, value: Any, holder: int) -> None:
        self.kind = kind
        self.field = field
        self.value = value
        self.holder: int | None = holder

    @staticmethod
    def create_id(kind: str, field: str, value: Any, **_: Any) -> UUID:
        return unique_uuid(kind, field, value)

    def check_free_for(self, object_id: int) -> None:
        if self.holder not in (None, object_id):
            raise Refused(refusal_reason({self.field: [UNIQUE[self.kind][self.field]]}))

    @event("Taken")
    def take(self, holder: int) -> None:
        self.holder = holder

    @event("Released")
    def release(self) -> None:
        self.holder = None
