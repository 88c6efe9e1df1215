"""Audit: verify the read model by replay, the job as it was at any version or time, attempts.

The stacks here have no runner: a job moves only by the runner reports a test sends over the
bus, so what the live endpoint shows after each command is exactly that command's effect.
"""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from api import cli
from api.app import BAD_TIME
from api.bootstrap import Stack
from api.catalog_io import SEED_CATALOG
from domain.commands import (
    AppendLog,
    ClaimJob,
    ConfirmCancelled,
    FinishJob,
    ReportProgress,
    RunnerReport,
)
from domain.statuses import JobStatus
from infra.embedded_nats import free_port
from infra.settings import Settings
from projections.compare import TABLES
from projections.verification import Verification, verify
from tests.conftest import create_job, history, settled

JOB = 1
RUNNER = "test-runner"
DRAFT_PROJECT = 17
NOT_FOUND = {"detail": "Not found."}
Seen = list[tuple[int, datetime, dict[str, Any]]]


async def report(stack: Stack, command: RunnerReport) -> None:
    outcome = await stack.bus.send(command)
    assert outcome.accepted, outcome.reason


def of_attempt(attempt: int) -> dict[str, Any]:
    """The fields of a report from the test's runner on an attempt of the job."""
    return {"job_id": JOB, "attempt": attempt, "runner": RUNNER}


async def detail(client: httpx.AsyncClient, job_id: int = JOB, **params: Any) -> Any:
    response = await client.get(f"/api/v2/jobs/{job_id}/", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def record_a_job(stack: Stack, client: httpx.AsyncClient) -> Seen:
    """Create, run, claim, progress, log, progress, finish: after each command, the job's last
    version, a moment right after the command, and what the live endpoint showed then."""
    seen: Seen = []

    async def look() -> None:
        await settled(stack)
        version = (await history(client, JOB))[-1]["version"]
        seen.append((version, datetime.now(UTC), await detail(client)))

    await create_job(client, start_now=False)
    await look()
    assert (await client.post(f"/api/v2/jobs/{JOB}/run/")).status_code == 200
    await look()
    runner = of_attempt(1)
    for command in (
        ClaimJob(**runner),
        ReportProgress(**runner, stage="delay", status=JobStatus.STARTED, progress=0.5),
        AppendLog(**runner, level="WARNING", message="Half way"),
        ReportProgress(**runner, stage="delay", status=JobStatus.SUCCESS, progress=1.0),
        FinishJob(**runner, status=JobStatus.SUCCESS),
    ):
        await report(stack, command)
        await look()
    return seen


def local(value: str) -> str:
    """A time of the history as the job JSON shows it (TIME_ZONE is UTC in the tests)."""
    return datetime.fromisoformat(value).astimezone(UTC).replace(tzinfo=None).isoformat()


def seconds_between(started: str, finished: str) -> str:
    elapsed = datetime.fromisoformat(finished) - datetime.fromisoformat(started)
    return str(elapsed.total_seconds())


# Time travel.


async def test_as_of_each_command_is_the_job_as_the_live_endpoint_showed_it_then(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    stack, client = idle
    seen = await record_a_job(stack, client)
    assert [version for version, _, _ in seen] == [1, 3, 7, 8, 9, 10, 13]
    assert [job["status"] for _, _, job in seen] == [
        "CREATED",
        "PENDING",
        "STARTED",
        "STARTED",
        "STARTED",
        "STARTED",
        "SUCCESS",
    ]
    for version, moment, live in seen:
        assert await detail(client, as_of_version=version) == live
        assert await detail(client, as_of=moment.isoformat()) == live
        # Without an offset a time is in TIME_ZONE, as the job's own times are shown.
        assert await detail(client, as_of=moment.replace(tzinfo=None).isoformat()) == live
    finished = seen[-1][2]
    assert await detail(client, as_of_version=13) == await detail(client) == finished
    limited = await detail(client, as_of_version=13, logs_limit=2)
    assert limited == await detail(client, logs_limit=2)
    assert len(limited["logs"]["stdout"]) == 2


async def test_version_1_is_the_job_as_created(idle: tuple[Stack, httpx.AsyncClient]) -> None:
    stack, client = idle
    await record_a_job(stack, client)
    created = (await history(client, JOB))[0]
    first = await detail(client, as_of_version=1)
    assert first["status"] == "CREATED"
    assert first["progress"] == {**created["data"]["progress"], "logs": []}
    assert first["progress"]["summary"] == {"status": "CREATED", "progress": 0.0}
    assert (first["started_at"], first["finished_at"], first["duration"]) == (None, None, None)
    assert first["created_at"] == first["updated_at"] == local(created["occurred_at"])
    assert first["logs"] == {"stdout": [], "stderr": []}


async def test_every_version_has_the_status_and_log_lines_of_the_events_up_to_it(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    stack, client = idle
    await record_a_job(stack, client)
    events = await history(client, JOB)
    for event in events:
        earlier = events[: event["version"]]
        statuses = [e["data"]["status"] for e in earlier if e["type"] == "StatusChanged"]
        logs = [
            f"{e['data']['level']} {e['data']['message']}"
            for e in reversed(earlier)
            if e["type"] == "LogAppended"
        ]
        response = await client.get(
            f"/api/v2/jobs/{JOB}/", params={"as_of_version": event["version"]}
        )
        assert response.headers["x-job-version"] == str(event["version"])  # as live: all events
        job = response.json()
        assert job["status"] == (statuses[-1] if statuses else "CREATED")
        assert [line.split("] ", 1)[1] for line in job["logs"]["stdout"]] == logs


async def test_bad_as_of_values_are_400_naming_the_parameter_and_unknown_times_404(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    _, client = idle
    await create_job(client, start_now=False)
    last = (await history(client, JOB))[-1]["version"]
    url = f"/api/v2/jobs/{JOB}/"
    cases: list[tuple[dict[str, Any], int, Any]] = [
        (
            {"as_of_version": 0},
            400,
            {"as_of_version": ["Ensure this value is greater than or equal to 1."]},
        ),
        ({"as_of_version": "two"}, 400, {"as_of_version": ["A valid integer is required."]}),
        (
            {"as_of_version": last + 1},
            400,
            {"as_of_version": [f"Job {JOB} has no version {last + 1}; its last is {last}."]},
        ),
        ({"as_of": "yesterday"}, 400, {"as_of": [BAD_TIME]}),
        ({"as_of": "2000-01-01T00:00:00Z"}, 404, NOT_FOUND),
    ]
    for params, status, body in cases:
        response = await client.get(url, params=params)
        assert (response.status_code, response.json()) == (status, body), params
    unknown = await client.get("/api/v2/jobs/99/", params={"as_of_version": 1})
    assert (unknown.status_code, unknown.json()) == (404, NOT_FOUND)


async def test_as_of_shows_only_what_the_caller_may_see_then_and_now(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """A job moved out of a draft project: anonymous callers see it now, but not as it was."""
    stack, client = idle
    await stack.save_catalog({"projects": [{"id": DRAFT_PROJECT, "name": "Draft", "draft": True}]})
    await create_job(client, start_now=False, project_id=DRAFT_PROJECT)
    anonymous = {"Authorization": ""}
    url = f"/api/v2/jobs/{JOB}/"
    hidden = await client.get(url, params={"as_of_version": 1}, headers=anonymous)
    assert (hidden.status_code, hidden.json()) == (404, NOT_FOUND)

    assert (await client.patch(url, json={"project_id": 16})).status_code == 200
    assert (
        await client.get(url, params={"as_of_version": 2}, headers=anonymous)
    ).status_code == 200
    before = await client.get(url, params={"as_of_version": 1}, headers=anonymous)
    assert (before.status_code, before.json()) == (404, NOT_FOUND)
    assert (await detail(client, as_of_version=1))["project"]["id"] == DRAFT_PROJECT


# Attempts.


async def test_attempts_of_a_job_that_succeeds_is_cancelled_in_attempt_2_and_fails_in_3(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    stack, client = idle
    await create_job(client)
    first = of_attempt(1)
    await report(stack, ClaimJob(**first))
    await report(
        stack, ReportProgress(**first, stage="delay", status=JobStatus.SUCCESS, progress=1.0)
    )
    await report(stack, FinishJob(**first, status=JobStatus.SUCCESS))
    assert (await client.post(f"/api/v2/jobs/{JOB}/retry/")).status_code == 200
    second = of_attempt(2)
    await report(stack, ClaimJob(**second))
    assert (await client.post(f"/api/v2/jobs/{JOB}/cancel/")).json()["status"] == "CANCELING"
    await report(stack, ConfirmCancelled(**second))
    assert (await client.post(f"/api/v2/jobs/{JOB}/retry/")).status_code == 200
    third = of_attempt(3)
    await report(stack, ClaimJob(**third))
    await report(stack, FinishJob(**third, status=JobStatus.FAILURE, reason="Out of memory"))
    await settled(stack)

    changes = [
        (e["data"]["attempt"], e["data"]["status"], e["occurred_at"])
        for e in await history(client, JOB)
        if e["type"] == "StatusChanged"
    ]
    at = {(attempt, status): moment for attempt, status, moment in changes}
    assert list(at) == [
        (1, "PENDING"),
        (1, "STARTED"),
        (1, "SUCCESS"),
        (2, "PENDING"),
        (2, "STARTED"),
        (2, "CANCELING"),
        (2, "REVOKED"),
        (3, "PENDING"),
        (3, "STARTED"),
        (3, "FAILURE"),
    ]

    def attempt(number: int, status: str, reason: str | None) -> dict[str, Any]:
        started, finished = at[number, "STARTED"], at[number, status]
        return {
            "attempt": number,
            "status": status,
            "started_at": local(started),
            "finished_at": local(finished),
            "duration": seconds_between(started, finished),
            "reason": reason,
        }

    response = await client.get(f"/api/v2/jobs/{JOB}/attempts/")
    assert response.status_code == 200
    attempts = response.json()
    assert attempts == [
        attempt(1, "SUCCESS", None),
        attempt(2, "REVOKED", "cancelled"),
        attempt(3, "FAILURE", "Out of memory"),
    ]
    job = await detail(client)
    last = attempts[-1]
    assert (last["started_at"], last["finished_at"], last["duration"]) == (
        job["started_at"],
        job["finished_at"],
        job["duration"],
    )
    unknown = await client.get("/api/v2/jobs/99/attempts/")
    assert (unknown.status_code, unknown.json()) == (404, NOT_FOUND)


async def test_a_job_not_yet_run_has_one_attempt(idle: tuple[Stack, httpx.AsyncClient]) -> None:
    _, client = idle
    await create_job(client, start_now=False)
    response = await client.get(f"/api/v2/jobs/{JOB}/attempts/")
    assert response.json() == [
        {
            "attempt": 1,
            "status": "CREATED",
            "started_at": None,
            "finished_at": None,
            "duration": None,
            "reason": None,
        }
    ]


# Verify.


async def test_verify_finds_nothing_in_an_untouched_read_model_and_what_was_planted(
    idle: tuple[Stack, httpx.AsyncClient], settings: Settings
) -> None:
    stack, client = idle
    await record_a_job(stack, client)
    await create_job(client, start_now=False, name="Second")
    await settled(stack)
    events = [*await history(client, 1), *await history(client, 2)]
    log_lines = sum(event["type"] == "LogAppended" for event in events)
    assert log_lines == 6
    env = {"JOBLEDGER_DATA_DIR": str(settings.data_dir)}

    assert verify(stack.event_store, stack.read_store) == Verification([], 2, 6, 3)
    result = CliRunner().invoke(cli.app, ["verify"], env=env)
    assert (result.exit_code, result.output) == (
        0,
        "The live read model equals a replay of every event"
        " (2 jobs, 6 log lines and 3 catalog objects compared).\n",
    )

    jobs_query, logs_query = TABLES["jobs"][0], TABLES["job_logs"][0]
    with stack.read_store.reading() as db:
        original = tuple(db.execute(f"{jobs_query} WHERE job_id = 1").fetchone())
        log_line = tuple(db.execute(f"{logs_query} WHERE job_id = 1 AND version = 9").fetchone())
        with db:
            db.execute(
                "UPDATE jobs SET view = json_set(view, '$.name', 'Planted') WHERE job_id = 1"
            )
            db.execute("DELETE FROM job_logs WHERE job_id = 1 AND version = 9")
        planted = tuple(db.execute(f"{jobs_query} WHERE job_id = 1").fetchone())
    assert json.loads(str(planted[-1]))["name"] == "Planted"
    expected = [
        f"jobs (1,): live {planted} != replayed {original}",
        f"job_logs (1, 9): live None != replayed {log_line}",
    ]

    assert verify(stack.event_store, stack.read_store) == Verification(expected, 2, 6, 3)
    result = CliRunner().invoke(cli.app, ["verify"], env=env)
    assert (result.exit_code, result.output) == (
        1,
        "".join(f"{line}\n" for line in expected) + "2 differences from a replay of every event\n",
    )


def test_the_cli_shows_a_job_as_it_was_at_a_version_or_a_time(tmp_path: Path) -> None:
    """Each command starts an embedded stack without a runner: the job stays PENDING."""
    # A catalog file as earlier versions kept it: the first command imports it.
    (tmp_path / "catalog.json").write_text(json.dumps(SEED_CATALOG))
    port = free_port()
    env = {"JOBLEDGER_DATA_DIR": str(tmp_path), "JOBLEDGER_API_PORT": str(port)}
    runner = CliRunner()

    def jobledger(*args: str) -> Any:
        result = runner.invoke(cli.app, list(args), env=env)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    created = jobledger("create", "Trest", "--project", "16", "--delay", "10", "--start-now")
    assert created["status"] == "PENDING"
    # The URLs `serve` would give with these settings.
    assert created["details"] == f"http://127.0.0.1:{port}/api/v2/jobs/1/"
    assert jobledger("show", "1", "--as-of", "1")["status"] == "CREATED"
    assert jobledger("show", "1", "--as-of", datetime.now(UTC).isoformat()) == created
    before = runner.invoke(cli.app, ["show", "1", "--as-of", "2000-01-01T00:00:00"], env=env)
    assert before.exit_code == 1
    assert before.output == '404 {"detail":"Not found."}\n'
