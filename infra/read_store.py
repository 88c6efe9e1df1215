"""The read store: SQLite tables that only the projection writes and the API reads.

One row per job (its view as JSON plus the columns that lists filter and sort on), one row
per log line, one per catalog object, and the projection's position, all changed in one
transaction per batch.
"""

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import uuid4

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id INTEGER PRIMARY KEY,
    version INTEGER NOT NULL,
    project_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    name TEXT NOT NULL,
    pipeline_id INTEGER,
    deployment_id INTEGER,
    source_image_collection_id INTEGER,
    source_image_single_id INTEGER,
    job_type_key TEXT NOT NULL,
    dispatch_mode TEXT NOT NULL,
    results_status TEXT,  -- of the stage with key "results"; NULL for a job without one
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    view TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at DESC);
CREATE INDEX IF NOT EXISTS jobs_by_pipeline ON jobs (pipeline_id);
CREATE TABLE IF NOT EXISTS job_logs (
    job_id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    logged_at TEXT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (job_id, version)
);
CREATE TABLE IF NOT EXISTS job_versions (
    job_id INTEGER PRIMARY KEY,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS catalog (
    kind TEXT NOT NULL,
    object_id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    position INTEGER NOT NULL,  -- of its last event: readers reload when the largest grows
    object TEXT NOT NULL,  -- its id and fields, as JSON
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_seen TEXT,  -- a processing service's last heartbeat
    PRIMARY KEY (kind, object_id)
);
CREATE INDEX IF NOT EXISTS catalog_by_position ON catalog (position);
CREATE TABLE IF NOT EXISTS projection_position (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    stream_seq INTEGER NOT NULL
);
"""


# Raise with every change to SCHEMA: a read store of another version is dropped and the
# projection rebuilds it from the first event.
SCHEMA_VERSION = 4


class ReadStore:
    """The read store's live file, and the rebuilt one that may wait to replace it.

    `<path>.current` names the live file (absent: `path` itself); `<path>.rebuilt` names a
    rebuilt file that the projection catches up and switches to. Readers open the live file
    anew for each request, so a switch never fails one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._prepare(self.current)

    @property
    def current(self) -> Path:
        pointer = self._marker("current")
        return self.path.with_name(pointer.read_text().strip()) if pointer.exists() else self.path

    def connect(self, file: Path | None = None) -> sqlite3.Connection:
        db = sqlite3.connect(file or self.current, timeout=30, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        db = self.connect()
        try:
            yield db
        finally:
            db.close()

    def new_generation(self) -> Path:
        """An empty file beside the live one, for a rebuild."""
        file = self.path.with_name(f"{self.path.stem}-{uuid4().hex[:8]}{self.path.suffix}")
        self._prepare(file)
        return file

    def offer(self, file: Path) -> None:
        """Make a rebuilt file the one the projection switches to once it has caught up."""
        self._write_marker("rebuilt", file.name)

    def offered(self) -> Path | None:
        marker = self._marker("rebuilt")
        return self.path.with_name(marker.read_text().strip()) if marker.exists() else None

    def switch_to(self, file: Path) -> None:
        """Readers see `file` from now on; the file they saw before is removed."""
        previous = self.current
        self._write_marker("current", file.name)
        self._marker("rebuilt").unlink(missing_ok=True)
        if previous != file:
            for leftover in (previous, Path(f"{previous}-wal"), Path(f"{previous}-shm")):
                leftover.unlink(missing_ok=True)

    def _marker(self, kind: str) -> Path:
        return self.path.with_name(f"{self.path.name}.{kind}")

    def _write_marker(self, kind: str, text: str) -> None:
        staged = self._marker(f"{kind}.tmp")
        staged.write_text(text)
        os.replace(staged, self._marker(kind))  # atomic: a reader sees the old or the new

    def _prepare(self, file: Path) -> None:
        db = self.connect(file)
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                db.executescript(
                    "DROP TABLE IF EXISTS jobs; DROP TABLE IF EXISTS job_logs;"
                    " DROP TABLE IF EXISTS job_versions; DROP TABLE IF EXISTS catalog;"
                    " DROP TABLE IF EXISTS projection_position;"
                )
            db.executescript(SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        finally:
            db.close()
