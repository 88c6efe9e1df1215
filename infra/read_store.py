"""The read store: SQLite tables that only the projection writes and the API reads.

One row per job (its view as JSON plus the columns that lists filter and sort on), one row
per log line, and the projection's position, all changed in one transaction per batch.
"""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id INTEGER PRIMARY KEY,
    version INTEGER NOT NULL,
    project_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    name TEXT NOT NULL,
    pipeline_id INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    view TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at DESC);
CREATE TABLE IF NOT EXISTS job_logs (
    job_id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    logged_at TEXT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (job_id, version)
);
CREATE TABLE IF NOT EXISTS projection_position (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    stream_seq INTEGER NOT NULL
);
"""


class ReadStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as db:
            db.executescript(SCHEMA)

    def connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
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
