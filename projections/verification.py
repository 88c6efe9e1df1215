"""`jobledger verify`: the live read store against a replay of every event into a fresh one."""

import tempfile
from dataclasses import dataclass
from pathlib import Path

from infra.event_store import EventStore
from infra.read_store import ReadStore
from projections.compare import differences
from projections.projector import stored_position
from projections.replay import replay


@dataclass(frozen=True)
class Verification:
    differences: list[str]
    jobs: int  # job rows of the replayed read store
    log_lines: int
    catalog_objects: int


def verify(events: EventStore, live: ReadStore) -> Verification:
    """Replay every event into a temporary read store and compare `live` with it."""
    with tempfile.TemporaryDirectory(prefix="jobledger-verify-") as scratch:
        rebuilt = ReadStore(Path(scratch) / "views.sqlite3")
        replayed_position = replay(events, rebuilt)
        found = differences(live, rebuilt)
        with live.reading() as db:
            live_position = stored_position(db)[0]
        if live_position != replayed_position:
            # Says why every row below may differ: the live projection is behind (or ahead).
            found.insert(0, f"position: live {live_position} != replayed {replayed_position}")
        with rebuilt.reading() as db:
            jobs = db.execute("SELECT count(*) FROM jobs").fetchone()[0]
            log_lines = db.execute("SELECT count(*) FROM job_logs").fetchone()[0]
            objects = db.execute("SELECT count(*) FROM catalog").fetchone()[0]
    return Verification(found, int(jobs), int(log_lines), int(objects))
