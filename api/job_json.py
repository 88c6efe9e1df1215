"""The Antenna job object (CONTRACT.md sections 4, 5 and 8) from a job view."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from api.schemas import Param, Stage
from domain.job_types import JOB_TYPE_NAMES
from domain.permissions import User, job_permissions
from infra.catalog import CatalogSnapshot
from projections.job_view import JobView
from projections.view_diff import local

ERROR_LEVELS = frozenset({"ERROR", "CRITICAL"})


def in_antennas_order(stage: dict[str, Any]) -> dict[str, Any]:
    """A stage with its keys, and its params' keys, in the order Antenna gives them."""
    params = [{key: param[key] for key in Param.model_fields} for param in stage["params"]]
    return {**{key: stage[key] for key in Stage.model_fields}, "params": params}


class JobRenderer:
    """Renders views for one request: URLs on its base, times in the configured zone."""

    def __init__(
        self,
        catalog: CatalogSnapshot,
        base_url: str,
        time_zone: ZoneInfo,
        api_format: bool,
        user: User,
    ) -> None:
        self.user = user
        self.catalog = catalog
        self.base_url = base_url.rstrip("/")
        self.time_zone = time_zone
        self.suffix = "?format=api" if api_format else ""

    def url(self, path: str) -> str:
        return f"{self.base_url}/api/v2/{path}{self.suffix}"

    def local(self, value: str | None) -> str | None:
        return local(value, self.time_zone)

    def log_line(self, entry: dict[str, Any]) -> str:
        moment = datetime.fromisoformat(entry["logged_at"]).astimezone(self.time_zone)
        return f"[{moment:%Y-%m-%d %H:%M:%S}] {entry['level']} {entry['message']}"

    def job(self, view: JobView, logs: list[dict[str, Any]] | None) -> dict[str, Any]:
        """The detail shape with `logs`, or the list shape (empty logs, no `result`) without."""
        stdout = [self.log_line(entry) for entry in logs or []]
        stderr = [entry["message"] for entry in logs or [] if entry["level"] in ERROR_LEVELS]
        job: dict[str, Any] = {
            "id": view["id"],
            "details": self.url(f"jobs/{view['id']}/"),
            "name": view["name"],
            "delay": view["delay"],
            "limit": view["limit"],
            "shuffle": view["shuffle"],
            "project": self.project(view["project_id"]),
            "deployment": self.named("deployments", view["deployment_id"], "deployments"),
            "source_image_collection": self.collection(view["source_image_collection_id"]),
            "source_image_single": self.capture(view["source_image_single_id"]),
            "pipeline": self.pipeline(view["pipeline_id"]),
            "status": view["status"],
            "created_at": self.local(view["created_at"]),
            "updated_at": self.local(view["updated_at"]),
            "started_at": self.local(view["started_at"]),
            "finished_at": self.local(view["finished_at"]),
            "duration": duration(view["started_at"], view["finished_at"]),
            "progress": {
                **view["progress"],
                "stages": [in_antennas_order(stage) for stage in view["progress"]["stages"]],
                "logs": stdout,
            },
            "logs": {"stdout": stdout, "stderr": stderr},
            "job_type": self.job_type(view),
            "data_export": self.export_of(view["id"]),
            "dispatch_mode": view["dispatch_mode"],
            "result": None,
            "user_permissions": job_permissions(
                self.user,
                view["project_id"],
                view["job_type_key"],
                view["source_image_single_id"] is not None,
            ),
        }
        if logs is None:
            del job["result"]
        return job

    def nested(self, kind: str, object_id: int) -> dict[str, Any] | None:
        """An object of the catalog as a job nests it (CONTRACT.md section 5)."""
        match kind:
            case "projects" | "deployments":
                return self.named(kind, object_id, kind)
            case "collections":
                return self.collection(object_id)
            case "captures":
                return self.capture(object_id)
            case "pipelines":
                return self.pipeline(object_id)
            case "services":
                return self.named(kind, object_id, "ml/processing_services")
        found = self.catalog.get(kind, object_id)
        return None if found is None else self.export(found)

    def detail(self, kind: str, object_id: int) -> dict[str, Any] | None:
        """An object at its `details` URL: the nested shape and the rest of its fields."""
        nested = self.nested(kind, object_id)
        if nested is None:
            return None
        row = self.catalog.row(kind, object_id)
        assert row is not None
        extra = {"last_seen": self.local(row["last_seen"])} if kind == "services" else {}
        return {**row["object"], **nested, **extra}

    def short_job(self, view: JobView) -> dict[str, Any]:
        """A job as captures, collections and deployments list it (CONTRACT.md section 14)."""
        return {
            "id": view["id"],
            "details": self.url(f"jobs/{view['id']}/"),
            "status": view["status"],
            "job_type": self.job_type(view),
            "created_at": self.local(view["created_at"]),
            "updated_at": self.local(view["updated_at"]),
        }

    def job_type(self, view: JobView) -> dict[str, str]:
        return {"name": JOB_TYPE_NAMES[view["job_type_key"]], "key": view["job_type_key"]}

    def export_of(self, job_id: int) -> dict[str, Any] | None:
        found = self.catalog.exports_by_job.get(job_id)
        return None if found is None else self.export(found)

    @staticmethod
    def export(found: dict[str, Any]) -> dict[str, Any]:
        keys = ("id", "user", "project", "format", "filters", "file_url")
        return {key: found[key] for key in keys}

    def project(self, project_id: int) -> dict[str, Any]:
        found = self.named("projects", project_id, "projects")
        return found or {
            "id": project_id,
            "name": "",
            "details": self.url(f"projects/{project_id}/"),
            "user_permissions": [],
        }

    def named(self, kind: str, object_id: int | None, path: str) -> dict[str, Any] | None:
        found = self.catalog.get(kind, object_id)
        if found is None:
            return None
        return {
            "id": found["id"],
            "name": found["name"],
            "details": self.url(f"{path}/{found['id']}/"),
            "user_permissions": [],
        }

    def collection(self, collection_id: int | None) -> dict[str, Any] | None:
        found = self.catalog.get("collections", collection_id)
        if found is None:
            return None
        return {
            "id": found["id"],
            "name": found["name"],
            "details": self.url(f"captures/collections/{found['id']}/"),
            "method": found["method"],
            "user_permissions": [],
        }

    def capture(self, capture_id: int | None) -> dict[str, Any] | None:
        found = self.catalog.get("captures", capture_id)
        if found is None:
            return None
        return {
            "id": found["id"],
            "details": self.url(f"captures/{found['id']}/"),
            **{key: found[key] for key in ("url", "width", "height", "timestamp", "event_id")},
            "user_permissions": [],
        }

    def pipeline(self, pipeline_id: int | None) -> dict[str, Any] | None:
        found = self.catalog.get("pipelines", pipeline_id)
        if found is None:
            return None
        row = self.catalog.rows[("pipelines", found["id"])]
        return {
            "id": found["id"],
            "details": self.url(f"ml/pipelines/{found['id']}/"),
            "name": found["name"],
            "slug": found["slug"],
            "description": found["description"],
            "version": found["version"],
            "version_name": found["version_name"],
            # Times the pipeline brought from its origin, else when the catalog recorded it.
            "created_at": self.local(found["created_at"] or row["created_at"]),
            "updated_at": self.local(found["updated_at"] or row["updated_at"]),
            "user_permissions": [],
        }


def duration(started_at: str | None, finished_at: str | None) -> str | None:
    """finished − started as a string of seconds, e.g. "10.324413"."""
    if not started_at or not finished_at:
        return None
    elapsed = datetime.fromisoformat(finished_at) - datetime.fromisoformat(started_at)
    return str(elapsed.total_seconds())
