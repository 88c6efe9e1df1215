"""Comparing two read stores row by row: jobs, log lines and catalog objects."""

import sqlite3

from infra.read_store import ReadStore


def _rows(
    db: sqlite3.Connection, query: str, key_size: int
) -> dict[tuple[object, ...], tuple[object, ...]]:
    return {tuple(row[:key_size]): tuple(row) for row in db.execute(query)}


# (query, how many leading columns identify a row)
TABLES = {
    "jobs": ("SELECT job_id, version, status, created_at, updated_at, view FROM jobs", 1),
    "job_logs": ("SELECT job_id, version, logged_at, level, message FROM job_logs", 2),
    "catalog": (
        "SELECT kind, object_id, version, object, created_at, updated_at, last_seen FROM catalog",
        2,
    ),
}


def differences(live: ReadStore, rebuilt: ReadStore) -> list[str]:
    """What differs between two read stores, job row by job row and log line by log line."""
    found: list[str] = []
    with live.reading() as a, rebuilt.reading() as b:
        for table, (query, key_size) in TABLES.items():
            left, right = _rows(a, query, key_size), _rows(b, query, key_size)
            for key in sorted(left.keys() | right.keys()):
                if left.get(key) != right.get(key):
                    found.append(
                        f"{table} {key}: live {left.get(key)} != replayed {right.get(key)}"
                    )
    return found
