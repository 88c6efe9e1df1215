"""Read queries over the read store: plain SQL, no writes."""

import json
import sqlite3
from typing import Any

from projections.job_view import JobView
from projections.projector import stored_position


def job_view(db: sqlite3.Connection, job_id: int) -> JobView | None:
    row = db.execute("SELECT view FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return json.loads(row["view"]) if row else None


def job_page(db: sqlite3.Connection, limit: int, offset: int) -> tuple[int, list[JobView]]:
    """Jobs newest first, and how many there are in all."""
    count = db.execute("SELECT count(*) FROM jobs").fetchone()[0]
    rows = db.execute(
        "SELECT view FROM jobs ORDER BY created_at DESC, job_id DESC LIMIT ? OFFSET ?",
        (limit, offset),
    ).fetchall()
    return int(count), [json.loads(row["view"]) for row in rows]


def job_logs(db: sqlite3.Connection, job_id: int, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` log lines of a job, newest first."""
    rows = db.execute(
        "SELECT logged_at, level, message FROM job_logs WHERE job_id = ?"
        " ORDER BY version DESC LIMIT ?",
        (job_id, limit),
    ).fetchall()
    return [dict(row) for row in rows]


def projected_position(db: sqlite3.Connection) -> int:
    return stored_position(db)[0]
