"""Response models of the jobs API, for its OpenAPI document (CONTRACT.md sections 3-6).

The API builds its JSON by hand (api/job_json.py) to match Antenna's field for field;
these models describe that JSON, and a test checks that real responses validate.
"""

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from domain.catalog import (
    CollectionFields,
    DeploymentFields,
    ExportFields,
    ProjectFields,
    SamplingMethod,
    ServiceFields,
)
from domain.commands import CatalogKind


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Nested(Strict):
    id: int
    details: str
    user_permissions: list[str]


class NamedObject(Nested):
    name: str


class Collection(NamedObject):
    method: SamplingMethod


class Capture(Nested):
    url: str | None
    width: int | None
    height: int | None
    timestamp: str | None
    event_id: int | None


class Pipeline(NamedObject):
    slug: str
    description: str
    version: int
    version_name: str
    created_at: str | None
    updated_at: str | None


# Fields in the order Antenna gives them (seed/job-124.json).
class Param(Strict):
    name: str
    key: str
    category: str
    value: Any


class Stage(Strict):
    status: str
    progress: float
    key: str
    name: str
    params: list[Param]


class Summary(Strict):
    status: str
    progress: float


class Progress(Strict):
    summary: Summary
    stages: list[Stage]
    errors: list[str]
    logs: list[str]


class Logs(Strict):
    stdout: list[str]
    stderr: list[str]


class JobType(Strict):
    name: str
    key: str


class DataExport(Strict):
    id: int
    user: int
    project: int
    format: str
    filters: dict[str, Any] | None
    file_url: str | None


class JobListItem(Strict):
    id: int
    details: str
    name: str
    delay: int
    limit: int | None
    shuffle: bool
    project: NamedObject
    deployment: NamedObject | None
    source_image_collection: Collection | None
    source_image_single: Capture | None
    pipeline: Pipeline | None
    status: str
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None
    duration: str | None
    progress: Progress
    logs: Logs
    job_type: JobType
    data_export: DataExport | None
    dispatch_mode: str
    user_permissions: list[str]


class Job(JobListItem):
    result: Any


class IdsOnlyItem(Strict):
    id: int
    pipeline_slug: str | None
    user_permissions: list[str]


class JobPage(Strict):
    count: int
    next: str | None
    previous: str | None
    results: list[JobListItem] | list[IdsOnlyItem]
    user_permissions: list[str]


# The catalog's objects at their `details` URLs: the nested shape and the other fields.

FORBID = ConfigDict(extra="forbid")


class ShortJob(Strict):
    """A job as captures, collections and deployments list it."""

    id: int
    details: str
    status: str
    job_type: JobType
    created_at: str
    updated_at: str


class ProjectDetail(NamedObject, ProjectFields):
    model_config = FORBID


class DeploymentDetail(NamedObject, DeploymentFields):
    model_config = FORBID
    jobs: list[ShortJob]


class CollectionDetail(Collection, CollectionFields):
    model_config = FORBID
    jobs: list[ShortJob]


class CaptureDetail(Capture):
    project_id: int | None
    deployment_id: int | None
    jobs: list[ShortJob]


class PipelineDetail(Pipeline):
    batch_size: int


class ServiceDetail(NamedObject, ServiceFields):
    model_config = FORBID
    last_seen: str | None


class ExportDetail(DataExport, ExportFields):
    model_config = FORBID


CATALOG_DETAILS: dict[CatalogKind, type[BaseModel]] = {
    "projects": ProjectDetail,
    "deployments": DeploymentDetail,
    "collections": CollectionDetail,
    "captures": CaptureDetail,
    "pipelines": PipelineDetail,
    "services": ServiceDetail,
    "exports": ExportDetail,
}

Item = TypeVar("Item", bound=BaseModel)


class Page(Strict, Generic[Item]):
    count: int
    next: str | None
    previous: str | None
    results: list[Item]
