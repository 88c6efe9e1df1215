"""The main job end to end: through the bus, the store, the relay and the projection."""

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.bootstrap import running_stack
from api.schemas import Job
from infra.read_store import ReadStore
from infra.settings import Settings
from projections.compare import differences
from projections.replay import replay
from tests.conftest import admin_token, create_job, history, settled, wait_for

SEED = json.loads((Path(__file__).parent.parent / "seed" / "job-124.json").read_text())
LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] (INFO|WARNING|ERROR|CRITICAL) (.*)$")


def messages(job: dict[str, Any]) -> list[str]:
    """The job's log messages, oldest first, without their time stamps."""
    found = []
    for line in reversed(job["logs"]["stdout"]):
        match = LOG_LINE.match(line)
        assert match, line
        found.append(match.group(2))
    return found


def shape(value: Any) -> Any:
    """Keys in their order and JSON types, recursively: what 'the same shape' means."""
    if isinstance(value, dict):
        return [(key, shape(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [shape(item) for item in value[:1]]
    return type(value).__name__


async def test_the_seed_job_runs_to_success_with_the_seeds_stages_and_logs(
    client: httpx.AsyncClient,
) -> None:
    created = await create_job(client)
    assert created["status"] in {"PENDING", "STARTED"}  # the runner may already have it
    job = await wait_for(client, created["id"])
    n = job["id"]

    assert job["status"] == "SUCCESS"
    assert job["progress"]["summary"] == {"status": "SUCCESS", "progress": 1.0}
    assert job["progress"]["stages"] == [
        {
            "key": "delay",
            "name": "Delay",
            "status": "SUCCESS",
            "progress": 1.0,
            "params": [
                {"key": "delay", "name": "Delay", "category": "default", "value": 10},
                {"key": "mood", "name": "Mood", "category": "default", "value": "🥳"},
            ],
        }
    ]
    assert messages(job) == [
        f"Changing status of job {n} to PENDING",
        f'Running job #{n} "Trest" (PENDING)',
        f"Changing status of job {n} to STARTED",
        *(f"Delaying job {n} for the {i} out of 10 seconds" for i in (1, 3, 5, 7, 9)),
        f"Changing status of job {n} to SUCCESS",
        f'Finished job #{n} "Trest" (SUCCESS)',
    ]
    assert job["progress"]["logs"] == job["logs"]["stdout"]
    assert job["logs"]["stderr"] == []
    elapsed = float(job["duration"])
    assert 0 < elapsed < 10
    assert job["duration"] == str(elapsed)


async def test_the_job_view_has_the_seeds_keys_and_types(client: httpx.AsyncClient) -> None:
    created = await create_job(client)
    mine = await wait_for(client, created["id"])
    assert mine["user_permissions"] == ["update", "delete", "run", "run_single_image"]
    # The seed was read anonymously, so without permissions.
    job = (await client.get(f"/api/v2/jobs/{created['id']}/", headers={"Authorization": ""})).json()
    assert job["user_permissions"] == []
    assert shape(job) == shape(SEED)
    assert list(job) == list(SEED)
    for key in ("name", "delay", "limit", "shuffle", "dispatch_mode", "job_type", "result"):
        assert job[key] == SEED[key]
    for nested in ("project", "source_image_collection", "pipeline"):
        expected = {k: v for k, v in SEED[nested].items() if k != "details"}
        assert {k: v for k, v in job[nested].items() if k != "details"} == expected
    assert job["pipeline"]["details"] == "http://127.0.0.1:8000/api/v2/ml/pipelines/1/"


async def test_cancel_while_running_revokes_and_stops_progress(client: httpx.AsyncClient) -> None:
    created = await create_job(client, delay=500)
    job_id = created["id"]
    running = await wait_for(client, job_id, {"STARTED"})
    while running["progress"]["summary"]["progress"] == 0:
        running = (await client.get(f"/api/v2/jobs/{job_id}/")).json()

    cancelling = await client.post(f"/api/v2/jobs/{job_id}/cancel/")
    assert cancelling.status_code == 200
    assert cancelling.json()["status"] in {"CANCELING", "REVOKED"}
    revoked = await wait_for(client, job_id, {"REVOKED"}, within=1.5)
    assert revoked["finished_at"] is not None

    events = await history(client, job_id)
    types = [event["type"] for event in events]
    canceled_at = types.index("CancelRequested")
    assert "StageProgressed" not in types[canceled_at:]
    statuses = [e["data"]["status"] for e in events if e["type"] == "StatusChanged"]
    assert statuses == ["PENDING", "STARTED", "CANCELING", "REVOKED"]
    assert revoked["progress"]["summary"]["progress"] < 1.0


async def test_retry_runs_a_second_attempt_and_keeps_the_first_in_history(
    client: httpx.AsyncClient,
) -> None:
    created = await create_job(client, delay=4)
    job_id = created["id"]
    await wait_for(client, job_id)

    retried = await client.post(f"/api/v2/jobs/{job_id}/retry/")
    assert retried.status_code == 200
    assert retried.json()["status"] in {"PENDING", "STARTED"}  # the runner may already have it
    done = await wait_for(client, job_id)
    assert done["status"] == "SUCCESS"

    events = await history(client, job_id)
    finished = [
        (e["data"]["attempt"], e["data"]["status"])
        for e in events
        if e["type"] == "StatusChanged" and e["data"]["status"] == "SUCCESS"
    ]
    assert finished == [(1, "SUCCESS"), (2, "SUCCESS")]
    assert [e["data"]["attempt"] for e in events if e["type"] == "JobRetried"] == [2]


async def test_cancel_of_a_finished_job_changes_nothing_and_is_recorded(
    client: httpx.AsyncClient,
) -> None:
    created = await create_job(client, delay=2)
    done = await wait_for(client, created["id"])

    response = await client.post(f"/api/v2/jobs/{created['id']}/cancel/")
    assert response.status_code == 200
    assert response.json() == done

    last = (await history(client, created["id"]))[-1]
    assert last["type"] == "CommandRefused"
    assert last["data"] == {
        "command": "CancelJob",
        "reason": f"Job {created['id']} has already ended (SUCCESS); nothing to cancel",
    }


@pytest.mark.parametrize(
    ("job_type_key", "pipeline_id", "reason"),
    [
        ("ml", None, "No pipeline specified to process images in ML job"),
        (
            "data_export",
            None,
            "Data Export jobs have no runner here: only ML pipeline and test (delay) jobs run",
        ),
        (
            "post_processing",
            1,
            "Post Processing jobs have no runner here: only ML pipeline and test (delay) jobs run",
        ),
    ],
)
async def test_a_job_with_nothing_to_run_fails_saying_why(
    client: httpx.AsyncClient, job_type_key: str, pipeline_id: int | None, reason: str
) -> None:
    job = await create_job(client, delay=0, pipeline_id=pipeline_id, job_type_key=job_type_key)
    ended = await wait_for(client, job["id"])
    assert (ended["status"], ended["progress"]["stages"]) == ("FAILURE", [])
    assert ended["logs"]["stderr"] == [f'Job #{job["id"]} "Trest" failed: {reason}']


async def test_running_a_running_job_is_refused_with_a_reason(client: httpx.AsyncClient) -> None:
    created = await create_job(client, delay=500)
    response = await client.post(f"/api/v2/jobs/{created['id']}/run/")
    assert response.status_code == 400
    assert response.json() == [f"Job {created['id']} is already queued or running (PENDING)"] or (
        response.json() == [f"Job {created['id']} is already queued or running (STARTED)"]
    )
    await client.post(f"/api/v2/jobs/{created['id']}/cancel/")


async def test_run_and_retry_with_no_async_answer_with_the_end_of_the_run(
    client: httpx.AsyncClient,
) -> None:
    job = await create_job(client, start_now=False)
    ran = await client.post(f"/api/v2/jobs/{job['id']}/run/?no_async")
    assert (ran.status_code, ran.json()["status"]) == (200, "SUCCESS")
    retried = await client.post(f"/api/v2/jobs/{job['id']}/retry/", params={"no_async": "1"})
    assert (retried.status_code, retried.json()["status"]) == (200, "SUCCESS")
    assert retried.json()["progress"]["summary"] == {"status": "SUCCESS", "progress": 1.0}
    queued = await client.post(f"/api/v2/jobs/{job['id']}/retry/", params={"no_async": "false"})
    assert queued.json()["status"] in ("PENDING", "STARTED")


async def test_a_restart_in_the_middle_of_a_job_finishes_it_and_replay_matches(
    settings: Settings, tmp_path: Path
) -> None:
    from api.app import in_process_client
    from api.catalog_io import SEED_CATALOG

    async with running_stack(settings) as first:
        await first.save_catalog(SEED_CATALOG)
        async with in_process_client(first, admin_token(first)) as client:
            created = await create_job(client, delay=40)
            job = await wait_for(client, created["id"], {"STARTED"})
            while job["progress"]["summary"]["progress"] < 0.2:
                job = (await client.get(f"/api/v2/jobs/{created['id']}/")).json()

    async with (
        running_stack(settings) as second,
        in_process_client(second, admin_token(second)) as client,
    ):
        done = await wait_for(client, created["id"])
        assert done["status"] == "SUCCESS"
        assert done["progress"]["summary"] == {"status": "SUCCESS", "progress": 1.0}
        lines = messages(done)
        delays = [line for line in lines if line.startswith("Delaying")]
        assert delays == [
            f"Delaying job {created['id']} for the {i} out of 40 seconds" for i in range(1, 40, 2)
        ]
        assert sum(line.startswith("Resuming job") for line in lines) == 1
        await settled(second)
        rebuilt = ReadStore(tmp_path / "replayed.sqlite3")
        replay(second.event_store, rebuilt)
        assert differences(second.read_store, rebuilt) == []


async def test_command_responses_show_the_job_right_after_the_command(settings: Settings) -> None:
    """Without a runner nothing moves on its own, so each response is exactly the command's."""
    from api.app import in_process_client
    from api.bootstrap import ALL_ROLES, Role
    from api.catalog_io import SEED_CATALOG

    async with running_stack(settings, ALL_ROLES - {Role.RUNNER}) as idle:
        await idle.save_catalog(SEED_CATALOG)
        async with in_process_client(idle, admin_token(idle)) as client:
            created = await create_job(client, start_now=False)
            assert created["status"] == "CREATED"
            assert created["progress"]["summary"] == {"status": "CREATED", "progress": 0.0}
            job_id = created["id"]

            queued = (await client.post(f"/api/v2/jobs/{job_id}/run/")).json()
            assert queued["status"] == "PENDING"
            assert queued["started_at"] is None

            revoked = (await client.post(f"/api/v2/jobs/{job_id}/cancel/")).json()
            assert revoked["status"] == "REVOKED"
            assert revoked["finished_at"] is not None

            retried = await client.post(f"/api/v2/jobs/{job_id}/retry/")
            assert retried.status_code == 200
            body = retried.json()
            assert body["status"] == "PENDING"
            assert body["finished_at"] is None
            assert body["progress"]["summary"] == {"status": "PENDING", "progress": 0.0}
            assert [(s["key"], s["status"], s["progress"]) for s in body["progress"]["stages"]] == [
                ("delay", "CREATED", 0.0)
            ]
            assert messages(body)[-1] == f"Changing status of job {job_id} to PENDING"
            assert messages(body)[-2] == f'Re-running job #{job_id} "Trest" (attempt 2)'


def normalised(job: dict[str, Any]) -> dict[str, Any]:
    """The job with what may differ blanked: ids, times, the URLs' host, the stage Delay."""
    text = json.dumps(job)
    text = re.sub(r'"(created_at|updated_at|started_at|finished_at)": "[^"]*"', r'"\1": "T"', text)
    text = re.sub(r'"duration": "[^"]*"', '"duration": "D"', text)
    text = re.sub(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]", "[T]", text)
    text = re.sub(r"https?://[^/]+/api/", "HOST/api/", text)
    text = re.sub(r"job #?\d+", "job N", text)
    text = re.sub(r"jobs/\d+/", "jobs/N/", text)
    result: dict[str, Any] = json.loads(text)
    result["id"] = "N"
    result["progress"]["stages"][0]["params"][0]["value"] = "DELAY"
    return result


async def test_the_seed_job_through_the_api_equals_the_seed(client: httpx.AsyncClient) -> None:
    created = await create_job(client)
    await wait_for(client, created["id"])
    anonymous = {"Authorization": ""}  # the seed page was read anonymously
    job = await client.get(
        f"/api/v2/jobs/{created['id']}/", params={"format": "api"}, headers=anonymous
    )
    assert normalised(job.json()) == normalised(SEED)


async def test_the_openapi_document_describes_the_job_that_is_served(
    client: httpx.AsyncClient,
) -> None:
    created = await create_job(client)
    job = (await client.get(f"/api/v2/jobs/{created['id']}/")).json()
    Job.model_validate(job)  # the documented model holds what is served, no more, no less
    document = (await client.get("/openapi.json")).json()
    detail = document["paths"]["/api/v2/jobs/{job_id}/"]["get"]["responses"]["200"]
    assert detail["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Job"}
    assert set(document["components"]["schemas"]["Job"]["properties"]) == set(SEED)
