"""Keeps the read store up to date from JOBS_EVENTS: jobs' and catalog objects' events.

It reads the stream with an ordered consumer from the sequence after the last one it
applied, applies each batch in one transaction together with the new position, and skips
any event at or below that position: every event is applied exactly once, in order. A batch
ends where a command's change ends, so a reader never sees half of one (a job SUCCESS
before the log line that says so).
"""

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from domain.envelope import CatalogEnvelope, Envelope
from domain.job import UNCHANGING_EVENTS
from infra.bus import ALL_EVENTS, CONTINUES_HEADER, EVENTS_STREAM, parse_envelope
from infra.event_feed import all_events, first_sequence_after
from infra.read_store import ReadStore
from projections.catalog_view import CatalogRow, apply_catalog
from projections.compare import differences
from projections.job_view import JobView, apply

log = logging.getLogger(__name__)

PROJECTION = "job_view"
MAX_BATCH = 2000
REBUILT_CHECK = 1.0  # seconds


def stored_position(db: sqlite3.Connection) -> tuple[int, int]:
    row = db.execute(
        "SELECT position, stream_seq FROM projection_position WHERE name = ?", (PROJECTION,)
    ).fetchone()
    return (int(row["position"]), int(row["stream_seq"])) if row else (0, 0)


def mark_stream_seq(db: sqlite3.Connection, stream_seq: int) -> None:
    """Record that a caught-up store has everything up to this stream sequence."""
    position, _ = stored_position(db)
    with db:
        db.execute(
            "INSERT INTO projection_position (name, position, stream_seq) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET stream_seq = excluded.stream_seq",
            (PROJECTION, position, stream_seq),
        )


def load_view(db: sqlite3.Connection, job_id: int) -> JobView | None:
    row = db.execute("SELECT view FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return json.loads(row["view"]) if row else None


def load_catalog_row(db: sqlite3.Connection, key: tuple[str, int]) -> CatalogRow | None:
    row = db.execute(
        "SELECT object, created_at, updated_at, last_seen FROM catalog"
        " WHERE kind = ? AND object_id = ?",
        key,
    ).fetchone()
    return {**dict(row), "object": json.loads(row["object"])} if row else None


def apply_batch(db: sqlite3.Connection, batch: Iterable[tuple[Envelope, int]]) -> tuple[int, int]:
    """Apply events (with their stream sequence) in one transaction; return the new position
    and stream sequence."""
    position, stream_seq = stored_position(db)
    views: dict[int, JobView | None] = {}
    logs: list[tuple[int, int, str, str, str]] = []
    versions: dict[int, int] = {}  # every event counts, refusals and log lines too
    catalog: dict[tuple[str, int], CatalogRow] = {}
    for event, seq in batch:
        stream_seq = max(stream_seq, seq)
        if event.position is None or event.position <= position:
            continue
        position = event.position
        if isinstance(event, CatalogEnvelope):
            key = (event.kind, event.object_id)
            row = catalog[key] if key in catalog else load_catalog_row(db, key)
            catalog[key] = apply_catalog(row, event)
            continue
        versions[event.job_id] = event.version
        if event.type == "LogAppended":
            data = event.data
            logs.append(
                (
                    event.job_id,
                    event.version,
                    event.occurred_at.isoformat(),
                    data["level"],
                    data["message"],
                )
            )
            continue
        if event.type in UNCHANGING_EVENTS:
            continue
        view = views[event.job_id] if event.job_id in views else load_view(db, event.job_id)
        views[event.job_id] = apply(view, event)
    with db:
        db.executemany(
            "INSERT INTO jobs (job_id, version, project_id, status, name, pipeline_id,"
            " deployment_id, source_image_collection_id, source_image_single_id, job_type_key,"
            " dispatch_mode, results_status, created_at, updated_at, started_at, finished_at, view)"
            " VALUES (:id, :version, :project_id, :status, :name, :pipeline_id, :deployment_id,"
            " :source_image_collection_id, :source_image_single_id, :job_type_key, :dispatch_mode,"
            " (SELECT json_extract(stage.value, '$.status')"
            "  FROM json_each(:view, '$.progress.stages') AS stage"
            "  WHERE json_extract(stage.value, '$.key') = 'results'),"
            " :created_at, :updated_at, :started_at, :finished_at, :view)"
            " ON CONFLICT (job_id) DO UPDATE SET"
            " version = excluded.version, project_id = excluded.project_id,"
            " status = excluded.status, name = excluded.name, pipeline_id = excluded.pipeline_id,"
            " deployment_id = excluded.deployment_id,"
            " source_image_collection_id = excluded.source_image_collection_id,"
            " source_image_single_id = excluded.source_image_single_id,"
            " job_type_key = excluded.job_type_key, dispatch_mode = excluded.dispatch_mode,"
            " results_status = excluded.results_status, updated_at = excluded.updated_at,"
            " started_at = excluded.started_at, finished_at = excluded.finished_at,"
            " view = excluded.view",
            [{**view, "view": json.dumps(view)} for view in views.values() if view is not None],
        )
        db.executemany(
            "INSERT OR IGNORE INTO job_logs (job_id, version, logged_at, level, message)"
            " VALUES (?, ?, ?, ?, ?)",
            logs,
        )
        db.executemany(
            "INSERT INTO job_versions (job_id, version) VALUES (?, ?)"
            " ON CONFLICT (job_id) DO UPDATE SET version = excluded.version",
            list(versions.items()),
        )
        db.executemany(
            "INSERT INTO catalog (kind, object_id, version, position, object, created_at,"
            " updated_at, last_seen) VALUES (:kind, :object_id, :version, :position, :object,"
            " :created_at, :updated_at, :last_seen)"
            " ON CONFLICT (kind, object_id) DO UPDATE SET version = excluded.version,"
            " position = excluded.position, object = excluded.object,"
            " updated_at = excluded.updated_at, last_seen = excluded.last_seen",
            [{**row, "object": json.dumps(row["object"])} for row in catalog.values()],
        )
        deleted = [(job_id,) for job_id, view in views.items() if view is None]
        db.executemany("DELETE FROM jobs WHERE job_id = ?", deleted)
        db.executemany("DELETE FROM job_logs WHERE job_id = ?", deleted)
        db.execute(
            "INSERT INTO projection_position (name, position, stream_seq) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET position = excluded.position,"
            " stream_seq = excluded.stream_seq",
            (PROJECTION, position, stream_seq),
        )
    return position, stream_seq


def _parse(msg: Msg) -> Envelope | None:
    try:
        return parse_envelope(msg.subject, msg.data)
    except ValidationError as error:
        log.error("skipped a message on %s that is not an event: %s", msg.subject, error)
        return None


class Projector:
    def __init__(self, store: ReadStore, js: JetStreamContext, writer: ThreadPoolExecutor) -> None:
        self.store = store
        self.js = js
        self.writer = writer
        self.position = 0
        self.stream_seq = 0

    async def run(self) -> None:
        # Connections live on the writer thread only: opened, used and closed there.
        loop = asyncio.get_running_loop()
        db = await loop.run_in_executor(self.writer, self.store.connect)
        try:
            self.position, self.stream_seq = await loop.run_in_executor(
                self.writer, stored_position, db
            )
            db = await self._follow(db)
        finally:
            await asyncio.shield(loop.run_in_executor(self.writer, db.close))

    async def _follow(self, db: sqlite3.Connection) -> sqlite3.Connection:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Msg] = asyncio.Queue()
        sub = await self.js.subscribe(
            ALL_EVENTS,
            stream=EVENTS_STREAM,
            ordered_consumer=True,
            cb=queue.put,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.stream_seq + 1
            ),
        )
        try:
            while True:
                if (rebuilt := self.store.offered()) is not None:
                    db = await self._switch(db, rebuilt)
                try:  # a quiet stream still looks for a rebuilt store now and then
                    messages = [await asyncio.wait_for(queue.get(), REBUILT_CHECK)]
                except TimeoutError:
                    continue
                while not queue.empty() and len(messages) < MAX_BATCH:
                    messages.append(queue.get_nowait())
                while CONTINUES_HEADER in (messages[-1].headers or {}):
                    messages.append(await queue.get())  # the relay publishes the rest at once
                batch = [
                    (event, m.metadata.sequence.stream) for m in messages if (event := _parse(m))
                ]
                self.position, self.stream_seq = await loop.run_in_executor(
                    self.writer, apply_batch, db, batch
                )
        finally:
            await sub.unsubscribe()
        return db

    async def _switch(self, live: sqlite3.Connection, rebuilt: Path) -> sqlite3.Connection:
        """Catch a rebuilt read store up with this one, compare them, and make it the live one.

        The live one serves throughout; readers see the rebuilt one from the switch on.
        """
        loop = asyncio.get_running_loop()
        db = await loop.run_in_executor(self.writer, self.store.connect, rebuilt)
        position, _ = await loop.run_in_executor(self.writer, stored_position, db)
        if position < self.position:
            start = await first_sequence_after(self.js, position)
            batch: list[tuple[Envelope, int]] = []
            feed = all_events(self.js, start, True)
            async with contextlib.aclosing(feed):
                async for event in feed:
                    batch.append((event, 0))
                    caught_up = (event.position or 0) >= self.position
                    if caught_up or len(batch) == MAX_BATCH:
                        await loop.run_in_executor(self.writer, apply_batch, db, batch)
                        batch = []
                    if caught_up:
                        break
        self.position = max(self.position, position)
        await loop.run_in_executor(self.writer, mark_stream_seq, db, self.stream_seq)
        found = await loop.run_in_executor(
            self.writer, differences, ReadStore(self.store.current), ReadStore(rebuilt)
        )
        for difference in found:
            log.warning("the rebuilt read store differs: %s", difference)
        self.store.switch_to(rebuilt)
        await loop.run_in_executor(self.writer, live.close)
        log.warning("switched to the rebuilt read store %s (%d differences)", rebuilt, len(found))
        return db
