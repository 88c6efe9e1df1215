"""The catalog as the read store holds it (the projection writes it from catalog events):
what requests and job runs read of projects, collections, captures, pipelines, ..."""

import json
from pathlib import Path
from typing import Any

from domain.catalog import KINDS, Lookup
from domain.permissions import User, may_see
from infra.read_store import ReadStore

CatalogRow = dict[str, Any]


class CatalogSnapshot:
    """The catalog as the read store holds it at one moment: what one request or run reads."""

    def __init__(self, rows: list[CatalogRow]) -> None:
        self.objects: dict[str, dict[int, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self.rows: dict[tuple[str, int], CatalogRow] = {}
        for row in rows:
            self.objects[row["kind"]][row["object_id"]] = row["object"]
            self.rows[(row["kind"], row["object_id"])] = row
        self.exports_by_job = {
            export["job"]: export for export in self.objects["exports"].values() if export["job"]
        }

    def get(self, kind: str, object_id: int | None) -> dict[str, Any] | None:
        if object_id is None:
            return None
        return self.objects[kind].get(object_id)

    def row(self, kind: str, object_id: int) -> CatalogRow | None:
        return self.rows.get((kind, object_id))

    def visible(self, user: User, project_id: int) -> bool:
        """Jobs of a draft project are for its members (CONTRACT.md section 3)."""
        project = self.get("projects", project_id) or {}
        return may_see(user, project_id, bool(project.get("draft", False)))

    def hidden_projects(self, user: User) -> frozenset[int]:
        """The draft projects whose jobs this user may not see."""
        return frozenset(
            project_id
            for project_id, project in self.objects["projects"].items()
            if not may_see(user, project_id, bool(project["draft"]))
        )

    def async_services(self, pipeline_id: int | None, project_id: int | None) -> list[CatalogRow]:
        """The rows of the processing services whose workers pull tasks of this pipeline for
        this project (None: of any)."""
        return [
            self.rows[("services", service_id)]
            for service_id, service in self.objects["services"].items()
            if service["endpoint_url"] is None
            and pipeline_id in (None, *service["pipelines"])
            and project_id in (None, *service["projects"])
        ]

    def seen_by(self, user: User, lookup: Lookup) -> Lookup:
        """`lookup` as `user` may see: what lies in a project hidden from them does not exist,
        so that a refusal never tells them of it."""
        hidden = self.hidden_projects(user)

        def seen(kind: str, object_id: int) -> dict[str, Any] | None:
            found = lookup(kind, object_id)
            project = object_id if kind == "projects" else (found or {}).get("project_id")
            return None if found is None or project in hidden else found

        return seen

    def sync_service(self, pipeline_id: int, project_id: int) -> dict[str, Any] | None:
        """A processing service that serves this pipeline over HTTP for this project."""
        return next(
            (
                service
                for service in self.objects["services"].values()
                if service["endpoint_url"] is not None
                and pipeline_id in service["pipelines"]
                and project_id in service["projects"]
            ),
            None,
        )


def referents(snapshot: CatalogSnapshot, store: ReadStore) -> Lookup:
    """What a reference names: a catalog object, or a job (by its project) in the view."""

    def lookup(kind: str, object_id: int) -> dict[str, Any] | None:
        if kind != "jobs":
            return snapshot.get(kind, object_id)
        with store.reading() as db:
            row = db.execute("SELECT project_id FROM jobs WHERE job_id = ?", (object_id,))
            found = row.fetchone()
        return None if found is None else {"project_id": found["project_id"]}

    return lookup


class Catalog:
    """Reads the catalog from the read store, anew only when a catalog event was applied."""

    def __init__(self, store: ReadStore) -> None:
        self.store = store
        self._seen: tuple[Path, int] | None = None
        self._snapshot = CatalogSnapshot([])

    def current(self) -> CatalogSnapshot:
        with self.store.reading() as db:
            seen = (
                self.store.current,
                db.execute("SELECT max(position) FROM catalog").fetchone()[0] or 0,
            )
            if seen != self._seen:
                rows = db.execute("SELECT * FROM catalog").fetchall()
                self._snapshot = CatalogSnapshot(
                    [{**dict(row), "object": json.loads(row["object"])} for row in rows]
                )
                self._seen = seen
        return self._snapshot

    def get(self, kind: str, object_id: int | None) -> dict[str, Any] | None:
        return self.current().get(kind, object_id)
