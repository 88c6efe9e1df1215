"""The CLI's audit export, its verification, and the diff of a job between two versions.

The stack has no runner: the job moves only by the runner reports the test sends.
"""

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from api import cli
from api.bootstrap import Stack
from domain.commands import AppendLog, ClaimJob, ConfirmCancelled, FinishJob, ReportProgress
from domain.statuses import JobStatus
from infra.settings import Settings
from tests.conftest import create_job, history, settled

JOB = 1
RUNNER = "test-runner"
BROKEN_CHAIN = "its hash does not follow from the lines before it (changed, removed or reordered)"


def as_exported(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History items as an export holds them: the envelope without position or attempt."""
    return [{k: v for k, v in e.items() if k not in ("position", "attempt")} for e in events]


async def cancelled_then_retried(stack: Stack, client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Job 1: attempt 1 is cancelled while it runs, attempt 2 logs and succeeds; its history."""
    await create_job(client, start_now=False)
    assert (await client.post(f"/api/v2/jobs/{JOB}/run/")).status_code == 200
    first = {"job_id": JOB, "attempt": 1, "runner": RUNNER}
    await stack.bus.send(ClaimJob(**first))
    await stack.bus.send(
        ReportProgress(**first, stage="delay", status=JobStatus.STARTED, progress=0.5)
    )
    assert (await client.post(f"/api/v2/jobs/{JOB}/cancel/")).json()["status"] == "CANCELING"
    await stack.bus.send(ConfirmCancelled(**first))
    assert (await client.post(f"/api/v2/jobs/{JOB}/retry/")).status_code == 200
    second = {**first, "attempt": 2}
    for command in (
        ClaimJob(**second),
        ReportProgress(**second, stage="delay", status=JobStatus.SUCCESS, progress=1.0),
        AppendLog(**second, level="INFO", message="All done"),
        FinishJob(**second, status=JobStatus.SUCCESS),
    ):
        outcome = await stack.bus.send(command)
        assert outcome.accepted, outcome.reason
    await settled(stack)
    return as_exported(await history(client, JOB))


def chain(events: list[dict[str, Any]]) -> list[str]:
    """The hashes the export must carry, computed here from the spec."""
    hashes, previous = [], "0" * 64
    for event in events:
        text = json.dumps(event, sort_keys=True, separators=(",", ":"))
        previous = hashlib.sha256((previous + text).encode()).hexdigest()
        hashes.append(previous)
    return hashes


def jobledger(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(
        cli.app, list(args), env={"JOBLEDGER_DATA_DIR": str(settings.data_dir)}
    )


@pytest.mark.parametrize(("suffix", "first"), [("jsonl", 1), ("csv", 2)])
async def test_an_export_proves_itself_and_names_the_line_that_was_tampered_with(
    idle: tuple[Stack, httpx.AsyncClient],
    settings: Settings,
    tmp_path: Path,
    suffix: str,
    first: int,
) -> None:
    stack, client = idle
    events = await cancelled_then_retried(stack, client)
    hashes = chain(events)
    assert len(events) == 26
    path = tmp_path / f"job-1.{suffix}"
    exported = jobledger(settings, "export-history", "1", "--format", suffix, "--output", str(path))
    head = f"26 events, chain head {hashes[-1]}"
    assert (exported.exit_code, exported.stdout, exported.stderr) == (0, "", f"{head}\n")
    lines = path.read_text().splitlines(keepends=True)
    assert len(lines) == first + 25
    if suffix == "jsonl":
        assert [json.loads(line) for line in lines] == [
            {**event, "hash": hash_} for event, hash_ in zip(events, hashes, strict=True)
        ]
    else:
        assert [line.rstrip("\n").rsplit(",", 1)[1] for line in lines[1:]] == hashes

    def verify(changed: list[str], *options: str) -> tuple[int, str]:
        copy = tmp_path / f"copy.{suffix}"
        copy.write_text("".join(changed))
        result = jobledger(settings, "verify-export", str(copy), *options)
        return result.exit_code, result.output

    assert verify(lines) == (0, f"OK: {head}\n")
    assert verify(lines, "--expect-hash", hashes[-1]) == (0, f"OK: {head}\n")

    third = first + 2
    removed = [*lines[: third - 1], *lines[third:]]
    assert verify(removed) == (1, f"BROKEN: line {third}: {BROKEN_CHAIN}\n")

    fourth = first + 3
    ident = events[3]["id"]
    other = ident[:-1] + ("1" if ident.endswith("0") else "0")
    changed = [*lines[: fourth - 1], lines[fourth - 1].replace(ident, other), *lines[fourth:]]
    assert changed != lines
    assert verify(changed) == (1, f"BROKEN: line {fourth}: {BROKEN_CHAIN}\n")

    truncated = lines[:-1]
    assert verify(truncated) == (0, f"OK: 25 events, chain head {hashes[-2]}\n")
    assert verify(truncated, "--expect-hash", hashes[-1]) == (
        1,
        f"BROKEN: the chain ends at {hashes[-2]}, not at the expected {hashes[-1]}:"
        " lines were removed from the end, or the chain was rewritten\n",
    )


async def test_a_project_export_chains_its_jobs_in_id_order_to_standard_output(
    idle: tuple[Stack, httpx.AsyncClient], settings: Settings
) -> None:
    stack, client = idle
    first = await cancelled_then_retried(stack, client)
    await create_job(client, start_now=False, name="Second")
    await stack.save_catalog({"projects": [{"id": 18, "name": "Elsewhere"}]})
    await create_job(client, start_now=False, name="Elsewhere", project_id=18)
    await settled(stack)
    events = [*first, *as_exported(await history(client, 2))]
    hashes = chain(events)

    exported = jobledger(settings, "export-history", "--project", "16")
    assert exported.exit_code == 0, exported.output
    assert exported.stdout.splitlines() == [
        json.dumps({**event, "hash": hash_}, sort_keys=True, separators=(",", ":"))
        for event, hash_ in zip(events, hashes, strict=True)
    ]
    assert exported.stderr == f"27 events, chain head {hashes[-1]}\n"

    nothing = jobledger(settings, "export-history", "--project", "99")
    assert (nothing.exit_code, nothing.stderr) == (1, "No job in project 99.\n")
    unknown = jobledger(settings, "export-history", "99")
    assert (unknown.exit_code, unknown.stderr) == (1, "Job 99 has no events.\n")
    both = jobledger(settings, "export-history", "1", "--project", "16")
    assert both.exit_code == 2


async def test_diff_from_version_1_to_the_last_shows_status_progress_and_log_changes(
    idle: tuple[Stack, httpx.AsyncClient], settings: Settings
) -> None:
    stack, client = idle
    events = await cancelled_then_retried(stack, client)

    def moment(event: dict[str, Any]) -> str:
        """As the API shows times: in TIME_ZONE (UTC here), without an offset."""
        at = datetime.fromisoformat(event["occurred_at"])
        return at.astimezone(UTC).replace(tzinfo=None).isoformat()

    statuses = [event for event in events if event["type"] == "StatusChanged"]
    started, finished = statuses[-2], statuses[-1]
    assert (started["data"]["status"], finished["data"]["status"]) == ("STARTED", "SUCCESS")
    row = [event for event in events if event["type"] not in {"LogAppended", "CommandRefused"}]
    logs = [event for event in events if event["type"] == "LogAppended"]
    assert len(logs) == 12
    result = jobledger(settings, "diff", "1", "1", str(events[-1]["version"]))
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        'progress.summary.status: "CREATED" → "SUCCESS"',
        "progress.summary.progress: 0.0 → 1.0",
        'progress.stages[0].status: "CREATED" → "SUCCESS"',
        "progress.stages[0].progress: 0.0 → 1.0",
        "progress.stages[0].params[0].value: 10 → 0",
        'status: "CREATED" → "SUCCESS"',
        "attempt: 1 → 2",
        f'updated_at: "{moment(events[0])}" → "{moment(row[-1])}"',
        f'started_at: null → "{moment(started)}"',
        f'finished_at: null → "{moment(finished)}"',
        f"version: 1 → {row[-1]['version']}",
        *(f"log + {moment(log)} {log['data']['level']} {log['data']['message']}" for log in logs),
    ]

    same = jobledger(settings, "diff", "1", "2", finished["occurred_at"])
    backwards = jobledger(settings, "diff", "1", str(finished["version"]), "1")
    assert (same.exit_code, backwards.exit_code) == (0, 0)
    assert 'status: "SUCCESS" → "CREATED"' in backwards.stdout.splitlines()
    past = jobledger(settings, "diff", "1", "1", "99")
    assert (past.exit_code, past.stderr) == (
        1,
        f"Job 1 has no version 99; its last is {len(events)}.\n",
    )
    before = jobledger(settings, "diff", "1", "2000-01-01T00:00:00", "1")
    assert (before.exit_code, before.stderr) == (
        1,
        "Job 1 has no view at 2000-01-01T00:00:00: it did not exist yet, or was deleted.\n",
    )
