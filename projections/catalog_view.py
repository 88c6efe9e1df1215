"""How each catalog event changes its object's row in the read store."""

from typing import Any

from domain.envelope import CatalogEnvelope

CatalogRow = dict[str, Any]


def apply_catalog(row: CatalogRow | None, event: CatalogEnvelope) -> CatalogRow:
    """The row after `event`: the object (its id and fields), when it was recorded and last
    changed, and a processing service's last heartbeat."""
    at = event.occurred_at.isoformat()
    if event.type == "CatalogObjectCreated":
        row = {"created_at": at, "updated_at": at, "last_seen": None}
    assert row is not None, f"{event.type} of {event.kind} {event.object_id} before its creation"
    if event.type in ("CatalogObjectCreated", "CatalogObjectChanged"):
        row = {**row, "object": {"id": event.object_id, **event.data["fields"]}, "updated_at": at}
    elif event.type == "ServiceSeen":
        row = {**row, "last_seen": at}
    return {
        **row,
        "kind": event.kind,
        "object_id": event.object_id,
        "version": event.version,
        "position": event.position,
    }
