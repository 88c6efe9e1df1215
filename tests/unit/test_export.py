"""The audit export's hash chain, its check against every kind of tampering, and view diffs."""

import csv
import hashlib
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from domain.commands import (
    AppendLog,
    CancelJob,
    ClaimJob,
    ConfirmCancelled,
    CreateJob,
    FinishJob,
    ReportProgress,
    RetryJob,
    RunJob,
    UpdateJob,
)
from domain.envelope import EventEnvelope, envelope_of
from domain.job import Job
from domain.statuses import JobStatus
from infra.event_store import MAX_EVENT_BYTES
from projections.audit_export import (
    CSV_COLUMNS,
    ChainHead,
    ExportCheck,
    ExportFormat,
    check_export,
    format_of,
    jobs_of_project,
    write_export,
)
from projections.view_diff import changed_fields, changed_logs, point_of

JOB_ID = 3
RUNNER = "runner-a"
BROKEN_CHAIN = "its hash does not follow from the lines before it (changed, removed or reordered)"
BROKEN_LAYOUT = "not written as the export writes it (changed)"


def envelopes(job: Job) -> list[EventEnvelope]:
    return [envelope_of(event, None) for event in job.collect_events()]


def cancelled_then_retried() -> list[EventEnvelope]:
    """Attempt 1 is cancelled while it runs; attempt 2 succeeds."""
    job = Job.create(JOB_ID, CreateJob(name="Trest", project_id=16, delay=10))
    job.run(RunJob(job_id=JOB_ID))
    job.claim(ClaimJob(job_id=JOB_ID, attempt=1, runner=RUNNER))
    job.cancel(CancelJob(job_id=JOB_ID))
    job.confirm_cancelled(ConfirmCancelled(job_id=JOB_ID, attempt=1, runner=RUNNER))
    job.retry(RetryJob(job_id=JOB_ID))
    job.claim(ClaimJob(job_id=JOB_ID, attempt=2, runner=RUNNER))
    job.report_progress(
        ReportProgress(
            job_id=JOB_ID,
            attempt=2,
            runner=RUNNER,
            stage="delay",
            status=JobStatus.SUCCESS,
            progress=1.0,
        )
    )
    job.finish(FinishJob(job_id=JOB_ID, attempt=2, runner=RUNNER, status=JobStatus.SUCCESS))
    return envelopes(job)


def export(events: list[EventEnvelope], export_format: ExportFormat) -> tuple[str, ChainHead]:
    out = io.StringIO()
    head = write_export(events, export_format, out)
    return out.getvalue(), head


def expected_hashes(events: list[EventEnvelope]) -> list[str]:
    """The chain computed here from the spec: sha256(previous + canonical JSON), from 64 zeros."""
    hashes, previous = [], "0" * 64
    for event in events:
        record = event.model_dump(mode="json", exclude={"position"})
        text = json.dumps(record, sort_keys=True, separators=(",", ":"))
        previous = hashlib.sha256((previous + text).encode()).hexdigest()
        hashes.append(previous)
    return hashes


def test_each_jsonl_line_is_its_event_and_the_hash_chained_from_64_zeros() -> None:
    events = cancelled_then_retried()
    text, head = export(events, ExportFormat.JSONL)
    lines = text.splitlines()
    hashes = expected_hashes(events)
    assert len(lines) == len(events) == 24
    assert head == ChainHead(24, hashes[-1])
    for line, event, hash_ in zip(lines, events, hashes, strict=True):
        record = json.loads(line)
        assert record.pop("hash") == hash_
        assert record == event.model_dump(mode="json", exclude={"position"})
        assert set(record) == set(EventEnvelope.model_fields) - {"position"}
    assert str(head) == f"24 events, chain head {hashes[-1]}"


def test_csv_carries_the_same_events_and_the_same_hashes() -> None:
    events = cancelled_then_retried()
    text, head = export(events, ExportFormat.CSV)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == (
        "job_id,version,occurred_at,type,causation_id,correlation_id,actor,id,"
        "schema_version,data,hash"
    )
    assert head == export(events, ExportFormat.JSONL)[1]
    assert [row["hash"] for row in rows] == expected_hashes(events)
    for row, event in zip(rows, events, strict=True):
        record = event.model_dump(mode="json", exclude={"position"})
        assert row == {
            **{column: str(record.get(column)) for column in CSV_COLUMNS},
            "data": json.dumps(event.data, sort_keys=True, separators=(",", ":")),
            "hash": row["hash"],
        }


@pytest.mark.parametrize("export_format", list(ExportFormat))
def test_an_untouched_export_checks_out(export_format: ExportFormat) -> None:
    text, head = export(cancelled_then_retried(), export_format)
    assert check_export(text, export_format) == ExportCheck(head, None)


@pytest.mark.parametrize("export_format", list(ExportFormat))
def test_an_export_with_a_log_line_as_long_as_an_event_may_be_checks_out(
    export_format: ExportFormat,
) -> None:
    job = Job.create(JOB_ID, CreateJob(name="Trest", project_id=16, delay=10, start_now=True))
    job.claim(ClaimJob(job_id=JOB_ID, attempt=1, runner=RUNNER))
    long = "x" * (MAX_EVENT_BYTES - 1024)
    job.append_log(AppendLog(job_id=JOB_ID, attempt=1, runner=RUNNER, message=long))
    text, head = export(envelopes(job), export_format)
    assert check_export(text, export_format) == ExportCheck(head, None)


@pytest.mark.parametrize(
    ("export_format", "first"), [(ExportFormat.JSONL, 1), (ExportFormat.CSV, 2)]
)
def test_removed_reordered_and_changed_lines_break_the_chain_where_they_are(
    export_format: ExportFormat, first: int
) -> None:
    """`first` is the line of the first event: CSV has a header."""
    events = cancelled_then_retried()
    text, _ = export(events, export_format)
    lines = text.splitlines(keepends=True)
    hashes = expected_hashes(events)

    def check(changed: list[str]) -> ExportCheck:
        return check_export("".join(changed), export_format)

    fifth = first + 4  # the line of the fifth event
    removed = [*lines[: fifth - 1], *lines[fifth:]]
    assert check(removed) == ExportCheck(ChainHead(4, hashes[3]), f"line {fifth}: {BROKEN_CHAIN}")

    swapped = [*lines[: fifth - 1], lines[fifth], lines[fifth - 1], *lines[fifth + 1 :]]
    assert check(swapped) == ExportCheck(ChainHead(4, hashes[3]), f"line {fifth}: {BROKEN_CHAIN}")

    renamed = [lines[first - 1].replace("Trest", "Tresu"), *lines[first:]]
    assert check([*lines[: first - 1], *renamed]).broken == f"line {first}: {BROKEN_CHAIN}"

    last = len(lines)
    spaced = [*lines[:-1], lines[-1].replace(",", ", ", 1)]
    assert check(spaced) == ExportCheck(ChainHead(23, hashes[-2]), f"line {last}: {BROKEN_LAYOUT}")

    garbled = [*lines[:-1], lines[-1][:-10] + "\n"]  # cut into the hash at the end
    assert check(garbled).broken == f"line {last}: " + (
        "not an exported event" if export_format is ExportFormat.JSONL else BROKEN_CHAIN
    )

    # Only the head kept elsewhere tells a missing tail: the shorter chain is sound.
    assert check(lines[:-1]) == ExportCheck(ChainHead(23, hashes[-2]), None)


def test_a_csv_without_its_header_is_broken_at_line_1() -> None:
    text, _ = export(cancelled_then_retried(), ExportFormat.CSV)
    check = check_export(text.split("\n", 1)[1], ExportFormat.CSV)
    assert check.broken is not None and check.broken.startswith("line 1: not the header ")


def test_empty_exports_hold_no_events() -> None:
    genesis = ChainHead(0, "0" * 64)
    for export_format in ExportFormat:
        text, head = export([], export_format)
        assert head == genesis
        assert check_export(text, export_format) == ExportCheck(genesis, None)


def test_the_format_comes_from_the_extension_else_the_content() -> None:
    assert format_of(Path("a.jsonl"), "job_id,") is ExportFormat.JSONL
    assert format_of(Path("a.CSV"), "{") is ExportFormat.CSV
    assert format_of(Path("a.txt"), '{"actor"') is ExportFormat.JSONL
    assert format_of(Path("a"), "job_id,version") is ExportFormat.CSV


def test_a_project_has_the_jobs_that_were_ever_in_it() -> None:
    stays = Job.create(1, CreateJob(name="Stays", project_id=16, delay=1))
    moved_in = Job.create(2, CreateJob(name="Moved in", project_id=17, delay=1))
    moved_in.update(UpdateJob(job_id=2, changes={"project_id": 16}))
    elsewhere = Job.create(4, CreateJob(name="Elsewhere", project_id=17, delay=1))
    moved_out = Job.create(5, CreateJob(name="Moved out", project_id=16, delay=1))
    moved_out.update(UpdateJob(job_id=5, changes={"project_id": 17}))
    events = [event for job in (moved_out, elsewhere, moved_in, stays) for event in envelopes(job)]
    assert jobs_of_project(events, 16) == [1, 2, 5]
    assert jobs_of_project(events, 17) == [2, 4, 5]
    assert jobs_of_project(events, 18) == []


def test_changed_fields_walk_nested_dicts_and_lists() -> None:
    old = {"status": "CREATED", "progress": {"stages": [{"p": 0.0}], "errors": []}, "gone": 1}
    new = {"status": "SUCCESS", "progress": {"stages": [{"p": 1.0}], "errors": ["x"]}, "n": None}
    assert list(changed_fields(old, new)) == [
        'status: "CREATED" → "SUCCESS"',
        "progress.stages[0].p: 0.0 → 1.0",
        'progress.errors[0]: (absent) → "x"',
        "gone: 1 → (absent)",
        "n: (absent) → null",
    ]
    assert list(changed_fields(old, old)) == []


def test_changed_logs_show_lines_added_and_gone_oldest_first() -> None:
    def row(second: int, message: str) -> dict[str, str]:
        return {"logged_at": f"2025-01-01T00:00:0{second}", "level": "INFO", "message": message}

    earlier = [row(2, "b"), row(1, "a")]  # newest first, as view_as_of gives them
    later = [row(4, "d"), row(3, "c"), *earlier]
    assert list(changed_logs(earlier, later)) == [
        "log + 2025-01-01T00:00:03 INFO c",
        "log + 2025-01-01T00:00:04 INFO d",
    ]
    assert list(changed_logs(later, earlier)) == [
        "log - 2025-01-01T00:00:03 INFO c",
        "log - 2025-01-01T00:00:04 INFO d",
    ]


def test_a_point_is_a_version_or_a_time_in_the_zone_when_it_has_no_offset() -> None:
    zone = ZoneInfo("Europe/Paris")
    assert point_of("7", zone) == (7, None)
    assert point_of("2025-03-01T10:00:00", zone) == (None, datetime(2025, 3, 1, 10, tzinfo=zone))
    assert point_of("2025-03-01T10:00:00Z", zone) == (None, datetime(2025, 3, 1, 10, tzinfo=UTC))
    with pytest.raises(ValueError):
        point_of("yesterday", zone)
