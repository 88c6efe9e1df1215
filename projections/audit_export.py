"""Audit exports: a job's events one a line, sealed by a SHA-256 chain, and their check.

Each line carries `hash = sha256(previous hash + canonical JSON of the event)`, the first
previous hash being 64 zeros, so the last hash (the chain's head) seals every line before it.
JSON Lines and CSV carry the same events and therefore the same hashes.
"""

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from domain.envelope import Envelope, EventEnvelope, project_set_by

GENESIS = "0" * 64
CSV_COLUMNS = (
    "job_id",
    "version",
    "occurred_at",
    "type",
    "causation_id",
    "correlation_id",
    "actor",
    "id",
    "schema_version",
    "data",
    "hash",
)
INTEGER_COLUMNS = frozenset({"job_id", "version", "schema_version"})

Record = dict[str, Any]


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


@dataclass(frozen=True)
class ChainHead:
    """How many events the chain holds and its last hash (64 zeros when it holds none)."""

    count: int
    last_hash: str

    def __str__(self) -> str:
        return f"{self.count} events, chain head {self.last_hash}"


@dataclass(frozen=True)
class ExportCheck:
    """The head of the chain up to the first broken line, and why that line breaks it."""

    head: ChainHead
    broken: str | None


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def chain_hash(previous: str, record: Record) -> str:
    return hashlib.sha256((previous + canonical(record)).encode()).hexdigest()


def record_of(event: EventEnvelope) -> Record:
    """The event as exported: the envelope without its global position (the store's own)."""
    return event.model_dump(mode="json", exclude={"position"})


def csv_text(row: Iterable[Any]) -> str:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow(row)
    return text.getvalue()


CSV_HEADER = csv_text(CSV_COLUMNS)


def line_of(record: Record, hash_: str, export_format: ExportFormat) -> str:
    """One line of an export, with its newline."""
    if export_format is ExportFormat.JSONL:
        return canonical({**record, "hash": hash_}) + "\n"
    fields = {**record, "data": canonical(record["data"]), "hash": hash_}
    return csv_text(fields[column] for column in CSV_COLUMNS)


def write_export(
    events: Iterable[EventEnvelope], export_format: ExportFormat, out: TextIO
) -> ChainHead:
    """Write the export's lines (the CSV header first) and return the chain's head."""
    if export_format is ExportFormat.CSV:
        out.write(CSV_HEADER)
    last, count = GENESIS, 0
    for event in events:
        record = record_of(event)
        last, count = chain_hash(last, record), count + 1
        out.write(line_of(record, last, export_format))
    return ChainHead(count, last)


def format_of(path: Path, text: str) -> ExportFormat:
    """The format a file's extension names, else the one its content looks like."""
    if path.suffix.lower() in {".jsonl", ".ndjson"}:
        return ExportFormat.JSONL
    if path.suffix.lower() == ".csv":
        return ExportFormat.CSV
    return ExportFormat.JSONL if text.startswith("{") else ExportFormat.CSV


# Each event line as read: its number in the file, its text, and its fields with the hash (None
# when they cannot be read).
ReadLine = tuple[int, str, Record | None]


def read_jsonl(lines: list[str]) -> Iterator[ReadLine]:
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        yield number, line, record if isinstance(record, dict) else None


# The csv module reads fields of 128 KiB at most; an event's data may be almost 1 MiB, and
# twice that with its quotes doubled.
CSV_FIELD_LIMIT = 4 * 1024 * 1024


def read_csv(lines: list[str]) -> Iterator[ReadLine]:
    rows = lines[1:]
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    reader = csv.reader(rows)
    previous = 0
    for row in reader:
        # A quoted field may span lines: the row's text is every line the reader took for it.
        text = "".join(rows[previous : reader.line_num])
        yield previous + 2, text, record_of_row(row)  # its first line; the header is line 1
        previous = reader.line_num


def record_of_row(row: list[str]) -> Record | None:
    if len(row) != len(CSV_COLUMNS):
        return None
    record: Record = dict(zip(CSV_COLUMNS, row, strict=True))
    try:
        for column in INTEGER_COLUMNS:
            record[column] = int(record[column])
        record["data"] = json.loads(record["data"])
    except ValueError:
        return None
    return record


def check_export(text: str, export_format: ExportFormat) -> ExportCheck:
    """Recompute the chain over an export's lines, up to the first line that breaks it."""
    lines = list(io.StringIO(text))
    if export_format is ExportFormat.CSV:
        if lines and lines[0] != CSV_HEADER:
            return ExportCheck(ChainHead(0, GENESIS), f"line 1: not the header {CSV_HEADER!r}")
        read = read_csv(lines)
    else:
        read = read_jsonl(lines)
    last, count = GENESIS, 0
    for number, line, record in read:
        if record is None or not isinstance(record.get("hash"), str):
            return ExportCheck(ChainHead(count, last), f"line {number}: not an exported event")
        hash_ = record.pop("hash")
        if line != line_of(record, hash_, export_format):
            broken = f"line {number}: not written as the export writes it (changed)"
            return ExportCheck(ChainHead(count, last), broken)
        if hash_ != chain_hash(last, record):
            broken = (
                f"line {number}: its hash does not follow from the lines before it"
                " (changed, removed or reordered)"
            )
            return ExportCheck(ChainHead(count, last), broken)
        last, count = hash_, count + 1
    return ExportCheck(ChainHead(count, last), None)


def jobs_of_project(events: Iterable[Envelope], project_id: int) -> list[int]:
    """The ids, in order, of the jobs that were in the project at any point of their history."""
    return sorted(
        {
            event.job_id
            for event in events
            if isinstance(event, EventEnvelope) and project_set_by(event) == project_id
        }
    )
