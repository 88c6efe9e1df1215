"""What changed in a job's view between two versions or times, field by field."""

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from projections.job_view import JobView
from projections.time_travel import LogRow

ABSENT = object()  # a field or list item one side does not have

Point = tuple[int | None, datetime | None]


def point_of(value: str, time_zone: ZoneInfo) -> Point:
    """A version (an integer) or a moment (ISO 8601; without an offset, in `time_zone`), as
    `view_as_of` takes them. A ValueError when it is neither."""
    try:
        return int(value), None
    except ValueError:
        moment = datetime.fromisoformat(value)
    return None, moment if moment.tzinfo else moment.replace(tzinfo=time_zone)


def shown(value: Any) -> str:
    return "(absent)" if value is ABSENT else json.dumps(value, ensure_ascii=False)


def changed_fields(old: Any, new: Any, path: str = "") -> Iterator[str]:
    """`path: old → new` for every leaf that differs, through nested dicts and lists."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(key for key in new if key not in old)]:
            inner = f"{path}.{key}" if path else str(key)
            yield from changed_fields(old.get(key, ABSENT), new.get(key, ABSENT), inner)
    elif isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            yield from changed_fields(
                old[index] if index < len(old) else ABSENT,
                new[index] if index < len(new) else ABSENT,
                f"{path}[{index}]",
            )
    elif old != new:
        yield f"{path}: {shown(old)} → {shown(new)}"


def changed_logs(old: list[LogRow], new: list[LogRow]) -> Iterator[str]:
    """The log lines only one side has, oldest first: `+` the later side's, `-` the earlier's."""
    for sign, these, others in (("-", old, new), ("+", new, old)):
        for row in reversed(these):
            if row not in others:
                yield f"log {sign} {row['logged_at']} {row['level']} {row['message']}"


TIMES = ("created_at", "updated_at", "started_at", "finished_at")


def local(value: str | None, time_zone: ZoneInfo) -> str | None:
    """A stored time as the API shows it: ISO 8601 in `time_zone`, without an offset (as
    Antenna serves times); a time without an offset is taken to be in that zone already."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(time_zone).replace(tzinfo=None)
    return moment.isoformat()


def in_zone(
    view: tuple[JobView, list[LogRow]], time_zone: ZoneInfo
) -> tuple[JobView, list[LogRow]]:
    """The view and its log lines with their times as the API shows them."""
    job, logs = view
    shown = {**job, **{field: local(job[field], time_zone) for field in TIMES}}
    lines = [{**row, "logged_at": local(row["logged_at"], time_zone)} for row in logs]
    return shown, lines


def view_changes(old: tuple[JobView, list[LogRow]], new: tuple[JobView, list[LogRow]]) -> list[str]:
    """Every changed field of the view, then every log line added (or gone)."""
    return [*changed_fields(old[0], new[0]), *changed_logs(old[1], new[1])]
