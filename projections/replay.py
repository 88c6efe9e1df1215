"""Rebuild the read store (jobs and catalog) from the first event in the event store."""

from itertools import islice

from infra.event_store import EventStore
from infra.read_store import ReadStore
from projections.projector import apply_batch

REPLAY_BATCH = 1000


def replay(events: EventStore, target: ReadStore) -> int:
    """Apply every event of the event store to `target`; return the last position."""
    position = 0
    envelopes = events.all_envelopes()
    db = target.connect()
    try:
        while chunk := list(islice(envelopes, REPLAY_BATCH)):
            position, _ = apply_batch(db, [(event, 0) for event in chunk])
    finally:
        db.close()
    return position
