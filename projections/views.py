"""Read queries over the read store: plain SQL, no writes."""

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from domain.statuses import FAILED, FINAL
from projections.job_view import JobView
from projections.projector import stored_position

# The columns a JobQuery may match or sort by: they go into the SQL by name.
COLUMNS = frozenset(
    {
        "name",
        "status",
        "project_id",
        "deployment_id",
        "source_image_collection_id",
        "source_image_single_id",
        "pipeline_id",
        "job_type_key",
        "dispatch_mode",
        "created_at",
        "updated_at",
        "started_at",
        "finished_at",
    }
)
# Any of the values of a JSON list given as one parameter.
ANY_OF = "(SELECT value FROM json_each(?))"


def _text_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(f"'{value}'" for value in sorted(values)) + ")"


FINAL_STATUSES = _text_list(FINAL)
FAILED_STATUSES = _text_list(FAILED)


@dataclass(frozen=True)
class SearchTerm:
    """A word of a search: found in a job's name, or the job's pipeline is one of these."""

    text: str
    pipeline_ids: frozenset[int]


@dataclass(frozen=True)
class JobQuery:
    """Which jobs a page of the list holds, in what order (CONTRACT.md sections 3 and 11)."""

    limit: int
    offset: int
    equal: tuple[tuple[str, int | str], ...] = ()  # (column, value) pairs a job must match
    pipeline_ids: frozenset[int] | None = None  # None: any pipeline or none
    incomplete_only: bool = False
    failed_updated_before: str | None = None  # leave out failed jobs not updated since then
    search: tuple[SearchTerm, ...] = ()  # every term must match
    order_by: tuple[str, ...] = ()  # columns, "-" first for descending; empty: newest first
    random_order: bool = False
    hidden_project_ids: frozenset[int] = frozenset()  # draft projects the caller may not see

    def __post_init__(self) -> None:
        named = {column for column, _ in self.equal} | {f.lstrip("-") for f in self.order_by}
        if unknown := named - COLUMNS:
            raise ValueError(f"not columns of the job list: {', '.join(sorted(unknown))}")


def job_view(db: sqlite3.Connection, job_id: int) -> JobView | None:
    row = db.execute("SELECT view FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return json.loads(row["view"]) if row else None


def job_page(db: sqlite3.Connection, query: JobQuery) -> tuple[int, list[JobView]]:
    """The page of jobs that `query` asks for, and how many jobs match it in all."""
    db.create_function("casefold", 1, str.casefold, deterministic=True)
    where, params = _where(query)
    count = db.execute(f"SELECT count(*) FROM jobs WHERE {where}", params).fetchone()[0]
    rows = db.execute(
        f"SELECT view FROM jobs WHERE {where} ORDER BY {_order(query)} LIMIT ? OFFSET ?",
        [*params, query.limit, query.offset],
    ).fetchall()
    return int(count), [json.loads(row["view"]) for row in rows]


def _where(query: JobQuery) -> tuple[str, list[Any]]:
    conditions = [f"{column} = ?" for column, _ in query.equal]
    params: list[Any] = [value for _, value in query.equal]
    if query.hidden_project_ids:
        conditions.append(f"project_id NOT IN {ANY_OF}")
        params.append(json.dumps(sorted(query.hidden_project_ids)))
    if query.pipeline_ids is not None:
        conditions.append(f"pipeline_id IN {ANY_OF}")
        params.append(json.dumps(sorted(query.pipeline_ids)))
    if query.incomplete_only:
        conditions.append(f"status NOT IN {FINAL_STATUSES}")
        conditions.append(f"(results_status IS NULL OR results_status NOT IN {FINAL_STATUSES})")
    if query.failed_updated_before is not None:
        conditions.append(f"NOT (status IN {FAILED_STATUSES} AND updated_at < ?)")
        params.append(query.failed_updated_before)
    for term in query.search:
        conditions.append(f"(instr(casefold(name), ?) > 0 OR pipeline_id IN {ANY_OF})")
        params += [term.text.casefold(), json.dumps(sorted(term.pipeline_ids))]
    return " AND ".join(conditions) or "1", params


def _order(query: JobQuery) -> str:
    if query.random_order:
        return "random()"
    terms = [
        f"{_sort_key(field.lstrip('-'))} {'DESC' if field.startswith('-') else 'ASC'} NULLS LAST"
        for field in query.order_by or ("-created_at",)
    ]
    return ", ".join([*terms, "job_id DESC"])


def _sort_key(column: str) -> str:
    # Names sort as people read them (and as PostgreSQL's locales do): "ada" before "Trest".
    return f"{column} COLLATE NOCASE" if column == "name" else column


def jobs_referring_to(db: sqlite3.Connection, column: str, object_id: int) -> list[JobView]:
    """The jobs whose `column` holds this catalog object's id, newest first."""
    assert column in COLUMNS
    rows = db.execute(
        f"SELECT view FROM jobs WHERE {column} = ? ORDER BY created_at DESC", (object_id,)
    )
    return [json.loads(row["view"]) for row in rows]


def pipeline_ids(db: sqlite3.Connection) -> list[int]:
    """The pipelines that jobs use."""
    rows = db.execute("SELECT DISTINCT pipeline_id FROM jobs WHERE pipeline_id IS NOT NULL")
    return [int(row["pipeline_id"]) for row in rows]


def job_version(db: sqlite3.Connection, job_id: int) -> int:
    """The version of the job's last event the projection has applied (0: none)."""
    row = db.execute("SELECT version FROM job_versions WHERE job_id = ?", (job_id,)).fetchone()
    return int(row["version"]) if row else 0


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
