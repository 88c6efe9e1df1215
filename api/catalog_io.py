"""Saving catalog objects in bulk: from a JSON or YAML file, the demo's seed, or the API.

A whole file is checked before anything is saved (every object's fields, and every reference
to an object already in the catalog or earlier in the file), so a bad file changes nothing.
"""

import asyncio
import time
from pathlib import Path
from typing import Any

import yaml

from domain.catalog import KINDS, Lookup, save_errors, unique_errors, validated_fields
from domain.commands import MAX_ID, SaveCatalogObject
from domain.job import Refused
from infra.bus import CommandBus
from infra.catalog import CatalogSnapshot, referents
from infra.read_store import ReadStore
from projections.views import projected_position

Entries = dict[str, list[dict[str, Any]]]

# The objects of the seed job (tests/seed/job-124.json), which `jobledger demo` uses.
SEED_CATALOG: Entries = {
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


def read_catalog_file(path: Path) -> Entries:
    """The kinds and objects of a JSON or YAML file (YAML is a superset of JSON)."""
    entries = yaml.safe_load(path.read_text())
    if not isinstance(entries, dict):
        raise ValueError(f"{path}: expected a mapping of kinds to lists of objects")
    return entries


def checked(
    entries: Entries, catalog: CatalogSnapshot, existing: Lookup
) -> list[SaveCatalogObject]:
    """One command per object, in the order of KINDS; ValueError names the first bad one."""
    if unknown := set(entries) - set(KINDS):
        raise ValueError(f"unknown catalog kind {sorted(unknown)[0]!r}; known: {', '.join(KINDS)}")
    if not_lists := [kind for kind, items in entries.items() if not isinstance(items, list)]:
        raise ValueError(f"{not_lists[0]}: expected a list of objects")
    saved_by_kind: dict[str, dict[int, dict[str, Any]]] = {}  # by this file, so far

    def lookup(kind: str, object_id: int) -> dict[str, Any] | None:
        return saved_by_kind.get(kind, {}).get(object_id) or existing(kind, object_id)

    commands = []
    for kind in KINDS:
        for item in entries.get(kind, []):
            if not isinstance(item, dict) or not isinstance(item.get("id"), int):
                raise ValueError(f"every {kind} entry needs an integer id: {item!r}")
            if not 0 < item["id"] <= MAX_ID:
                raise ValueError(f"{kind} {item['id']}: id: not between 1 and {MAX_ID}")
            object_id, fields = item["id"], {k: v for k, v in item.items() if k != "id"}
            try:
                valid = validated_fields(kind, fields)
            except Refused as refusal:
                raise ValueError(f"{kind} {object_id}: {refusal}") from None
            before = lookup(kind, object_id)
            of_kind = {**catalog.objects[kind], **saved_by_kind.setdefault(kind, {})}
            errors = save_errors(kind, object_id, before, valid, lookup)
            if errors := errors | unique_errors(kind, object_id, valid, of_kind):
                field, problems = next(iter(errors.items()))
                raise ValueError(f"{kind} {object_id}: {field}: {problems[0]}")
            saved_by_kind[kind][object_id] = valid
            commands.append(SaveCatalogObject(kind=kind, object_id=object_id, fields=fields))
    return commands


async def save_catalog(
    bus: CommandBus, store: ReadStore, catalog: CatalogSnapshot, entries: Entries, actor: str
) -> dict[str, int]:
    """Add or replace the objects by id, in order; return how many of each kind. Returns once
    the read store shows them."""
    commands = [
        c.model_copy(update={"actor": actor})
        for c in checked(entries, catalog, referents(catalog, store))
    ]
    last = 0
    for command in commands:
        outcome = await bus.send(command)
        if not outcome.accepted:  # another writer changed the catalog since the check
            raise ValueError(f"{command.kind} {command.object_id}: {outcome.reason}")
        last = max(last, outcome.position or 0)
    await projected(store, last, bus.timeout)
    return {kind: len(entries[kind]) for kind in KINDS if kind in entries}


async def projected(store: ReadStore, position: int, wait: float) -> None:
    """Wait, at most `wait` seconds, until the read store has applied `position`
    (read-your-writes)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        with store.reading() as db:
            if projected_position(db) >= position:
                return
        await asyncio.sleep(0.01)
