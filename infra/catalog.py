"""The catalog of objects jobs refer to (projects, collections, pipelines, ...): a JSON file.

The file maps each kind to a list of objects with an `id`. The job view holds only ids;
the API nests the catalog's objects when it serves a job.
"""

import json
from pathlib import Path
from typing import Any

import yaml

from domain.permissions import User, may_see

KINDS = ("projects", "deployments", "collections", "captures", "pipelines", "exports")

# The objects of the seed job (shared/seed/job-124.json), which `jobledger demo` uses.
SEED_CATALOG: dict[str, list[dict[str, Any]]] = {
    "projects": [{"id": 16, "name": "Aarhus Universitet, Department of Ecoscience"}],
    "collections": [{"id": 5, "name": "Denmark with detections", "method": "detections_only"}],
    "pipelines": [
        {
            "id": 1,
            "name": "Panama moths",
            "slug": "panama_moths_2023",
            "description": "",
            "version": 1,
            "version_name": "",
            "created_at": "2023-11-10T02:41:27.683282",
            "updated_at": "2026-04-01T17:09:36.425601",
        }
    ],
}


class Catalog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime: float | None = None
        self._objects: dict[str, dict[int, dict[str, Any]]] = {kind: {} for kind in KINDS}

    def get(self, kind: str, object_id: int | None) -> dict[str, Any] | None:
        if object_id is None:
            return None
        return self._load()[kind].get(object_id)

    def visible(self, user: User, project_id: int) -> bool:
        """Jobs of a draft project are for its members (CONTRACT.md section 3)."""
        project = self.get("projects", project_id) or {}
        return may_see(user, project_id, bool(project.get("draft", False)))

    def hidden_projects(self, user: User) -> frozenset[int]:
        """The draft projects whose jobs this user may not see."""
        return frozenset(
            project_id
            for project_id, project in self._load()["projects"].items()
            if not may_see(user, project_id, bool(project.get("draft", False)))
        )

    def import_file(self, path: Path) -> dict[str, int]:
        """Add the objects of a JSON or YAML file; how many of each kind."""
        entries = yaml.safe_load(path.read_text())  # YAML is a superset of JSON
        if not isinstance(entries, dict):
            raise ValueError(f"{path}: expected a mapping of kinds to lists of objects")
        self.add(entries)
        return {kind: len(items) for kind, items in entries.items()}

    def add(self, entries: dict[str, list[dict[str, Any]]]) -> None:
        """Add or replace objects by id, and write the file."""
        objects = self._load()
        for kind, items in entries.items():
            if kind not in KINDS:
                raise ValueError(f"unknown catalog kind {kind!r}; known: {', '.join(KINDS)}")
            for item in items:
                if not isinstance(item, dict) or not isinstance(item.get("id"), int):
                    raise ValueError(f"every {kind} entry needs an integer id: {item!r}")
                objects[kind][item["id"]] = item
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            kind: sorted(items.values(), key=lambda o: o["id"]) for kind, items in objects.items()
        }
        self.path.write_text(json.dumps(data, indent=2, ensure_ascii=False))

    def _load(self) -> dict[str, dict[int, dict[str, Any]]]:
        if not self.path.exists():
            return self._objects
        mtime = self.path.stat().st_mtime
        if mtime != self._mtime:
            data = json.loads(self.path.read_text())
            self._objects = {kind: {int(o["id"]): o for o in data.get(kind, [])} for kind in KINDS}
            self._mtime = mtime
        return self._objects
