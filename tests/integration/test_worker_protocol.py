"""Async pipeline jobs: workers poll, fetch tasks and post results (CONTRACT.md section 12)."""

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api.app import in_process_client
from api.bootstrap import Stack, running_stack
from api.catalog_io import SEED_CATALOG
from domain.commands import NoteWorkerActivity
from domain.permissions import ProjectRole
from infra.settings import Settings
from tests.conftest import (
    admin_token,
    create_job,
    detection,
    history,
    settled,
    stage_params,
    started_async_job,
    success,
    take_tasks,
    wait_for,
)

IMAGES = [101, 102, 103, 104]
COLLECTION = 20


FOUR_NIGHTS = {
    "collections": [{"id": 20, "name": "Four nights", "method": "full", "images": IMAGES}],
    "captures": [{"id": i, "url": f"https://example.org/{i}.jpg"} for i in IMAGES],
}


@pytest.fixture
async def worker(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    await stack.save_catalog(FOUR_NIGHTS)
    stack.users.add("worker@example.org")
    stack.users.grant("worker@example.org", 16, ProjectRole.WORKER)
    async with in_process_client(stack, stack.users.new_token("worker@example.org")) as client:
        yield client


async def test_a_worker_takes_every_task_and_its_results_finish_the_job(
    stack: Stack, client: httpx.AsyncClient, worker: httpx.AsyncClient
) -> None:
    job = await started_async_job(client, source_image_collection_id=COLLECTION)
    assert stage_params(job, "collect") == {"total_images": 4, "status": "SUCCESS", "progress": 1.0}
    assert stage_params(job, "process")["remaining"] == 4

    poll = await worker.get(
        "/api/v2/jobs",
        params={
            "pipeline__slug__in": "panama_moths_2023",
            "ids_only": "1",
            "incomplete_only": "1",
            "dispatch_mode": "async_api",
        },
        follow_redirects=True,
    )
    assert poll.json()["results"] == [
        {"id": job["id"], "pipeline_slug": "panama_moths_2023", "user_permissions": []}
    ]

    first = (await worker.post(f"/api/v2/jobs/{job['id']}/tasks/", json={"batch_size": 3})).json()
    assert len(first["tasks"]) == 3
    rest = (await worker.post(f"/api/v2/jobs/{job['id']}/tasks/", json={"batch_size": "5"})).json()
    tasks = first["tasks"] + rest["tasks"]
    assert sorted(int(t["image_id"]) for t in tasks) == IMAGES
    assert all(t["id"] == t["image_id"] for t in tasks)
    assert all(t["reply_subject"].startswith("$JS.ACK.JOBS_TASKS.") for t in tasks)

    failed = {
        "reply_subject": tasks[3]["reply_subject"],
        "result": {"error": "out of memory", "image_id": tasks[3]["image_id"]},
    }
    posted = await worker.post(
        f"/api/v2/jobs/{job['id']}/result/",
        json={"results": [success(tasks[0]), success(tasks[1], detections=1), failed]},
    )
    assert posted.status_code == 200
    receipt = posted.json()
    assert (receipt["status"], receipt["job_id"], receipt["results_queued"]) == (
        "accepted",
        job["id"],
        3,
    )
    assert [t["status"] for t in receipt["tasks"]] == ["queued"] * 3

    middle = (await client.get(f"/api/v2/jobs/{job['id']}/")).json()
    assert middle["status"] == "STARTED"
    assert stage_params(middle, "process") == {
        "processed": 3,
        "remaining": 1,
        "failed": 1,
        "status": "STARTED",
        "progress": 0.75,
    }
    assert stage_params(middle, "results") == {
        "captures": 2,
        "detections": 3,
        "classifications": 3,
        "status": "STARTED",
        "progress": 0.75,
    }
    assert middle["logs"]["stderr"][0] == (
        f"Pipeline returned error for job {job['id']}, image {tasks[3]['image_id']}: out of memory"
    )

    # The same result again (a redelivery) counts nothing twice.
    await worker.post(f"/api/v2/jobs/{job['id']}/result/", json={"results": [success(tasks[0])]})
    last = await worker.post(
        f"/api/v2/jobs/{job['id']}/result/", json={"results": [success(tasks[2])]}
    )
    assert last.status_code == 200
    done = await wait_for(client, job["id"])
    assert done["status"] == "SUCCESS"
    assert done["progress"]["summary"] == {"status": "SUCCESS", "progress": 1.0}
    assert stage_params(done, "results")["captures"] == 3
    assert stage_params(done, "results")["detections"] == 5
    drained = await worker.post(f"/api/v2/jobs/{job['id']}/tasks/", json={"batch_size": 1})
    assert drained.json() == {"tasks": []}
    await settled(stack)


async def test_more_than_half_failed_is_a_failure(
    client: httpx.AsyncClient, worker: httpx.AsyncClient
) -> None:
    job = await started_async_job(client, source_image_collection_id=COLLECTION)
    tasks = (await worker.post(f"/api/v2/jobs/{job['id']}/tasks/", json={"batch_size": 4})).json()
    results = [
        {"reply_subject": t["reply_subject"], "result": {"error": "bad", "image_id": t["image_id"]}}
        for t in tasks["tasks"][:3]
    ] + [success(tasks["tasks"][3])]
    await worker.post(f"/api/v2/jobs/{job['id']}/result/", json={"results": results})
    done = await wait_for(client, job["id"])
    assert done["status"] == "FAILURE"
    assert stage_params(done, "process")["status"] == "FAILURE"


async def test_limit_cuts_the_images_and_is_shown(
    client: httpx.AsyncClient, worker: httpx.AsyncClient
) -> None:
    created = await create_job(client, delay=0, source_image_collection_id=20, limit=2)
    job = await wait_for(client, created["id"], {"STARTED"})
    while stage_params(job, "collect")["status"] != "SUCCESS":
        job = (await client.get(f"/api/v2/jobs/{created['id']}/")).json()
    assert stage_params(job, "collect") == {
        "total_images": 4,
        "limit": 2,
        "status": "SUCCESS",
        "progress": 1.0,
    }
    assert stage_params(job, "process")["remaining"] == 2


async def test_cancel_of_an_async_job_revokes_it_at_once_and_empties_its_queue(
    client: httpx.AsyncClient, worker: httpx.AsyncClient
) -> None:
    job = await started_async_job(client, source_image_collection_id=COLLECTION)
    cancelled = (await client.post(f"/api/v2/jobs/{job['id']}/cancel/")).json()
    assert cancelled["status"] == "REVOKED"
    tasks = await worker.post(f"/api/v2/jobs/{job['id']}/tasks/", json={"batch_size": 4})
    assert tasks.json() == {"tasks": []}


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"batch_size": ["This field is required."]}),
        ({"batch_size": None}, {"batch_size": ["A valid integer is required."]}),
        ({"batch_size": ""}, {"batch_size": ["A valid integer is required."]}),
        ({"batch_size": "abc"}, {"batch_size": ["A valid integer is required."]}),
        ({"batch_size": 5.5}, {"batch_size": ["A valid integer is required."]}),
        ({"batch_size": True}, {"batch_size": ["A valid integer is required."]}),
        ({"batch_size": 0}, {"batch_size": ["Ensure this value is greater than or equal to 1."]}),
    ],
)
async def test_a_bad_tasks_request_is_400_even_for_a_missing_job(
    worker: httpx.AsyncClient, body: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    response = await worker.post("/api/v2/jobs/999/tasks/", json=body)
    assert (response.status_code, response.json()) == (400, errors)


async def test_tasks_of_a_job_that_is_not_async_are_refused(
    client: httpx.AsyncClient, worker: httpx.AsyncClient
) -> None:
    job = await create_job(client, start_now=False)
    response = await worker.post(f"/api/v2/jobs/{job['id']}/tasks/", json={"batch_size": 1})
    assert (response.status_code, response.json()) == (
        400,
        ["Only async_api jobs have fetchable tasks"],
    )


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"results": [{"result": {"error": "x"}}]},
        {"results": [{"reply_subject": "$JS.ACK.x"}]},
        {"results": [{"reply_subject": "$JS.ACK.x", "result": {"pipeline": "p"}}]},
    ],
)
async def test_a_bad_result_is_400(
    client: httpx.AsyncClient, worker: httpx.AsyncClient, body: Any
) -> None:
    job = await create_job(client, start_now=False, delay=0)
    response = await worker.post(f"/api/v2/jobs/{job['id']}/result/", json=body)
    assert response.status_code == 400


async def test_an_empty_result_list_is_accepted(
    client: httpx.AsyncClient, worker: httpx.AsyncClient
) -> None:
    job = await create_job(client, start_now=False, delay=0)
    response = await worker.post(f"/api/v2/jobs/{job['id']}/result/", json={"results": []})
    assert response.json() == {
        "status": "accepted",
        "job_id": job["id"],
        "results_queued": 0,
        "tasks": [],
    }


async def test_a_result_counts_for_its_tasks_image_whatever_it_names(
    client: httpx.AsyncClient, worker: httpx.AsyncClient
) -> None:
    job = await started_async_job(client, source_image_collection_id=COLLECTION)
    tasks = (await worker.post(f"/api/v2/jobs/{job['id']}/tasks/", json={"batch_size": 2})).json()
    first, second = tasks["tasks"]
    wrong_image = success(first)
    wrong_image["result"]["source_images"] = [{"id": "999", "url": "https://example.org/x"}]
    error_elsewhere = {
        "reply_subject": second["reply_subject"],
        "result": {"error": "bad", "image_id": "999"},
    }
    await worker.post(
        f"/api/v2/jobs/{job['id']}/result/", json={"results": [wrong_image, error_elsewhere]}
    )
    after = (await client.get(f"/api/v2/jobs/{job['id']}/")).json()
    assert stage_params(after, "process")["processed"] == 2
    assert stage_params(after, "process")["failed"] == 1
    assert after["logs"]["stderr"][0] == (
        f"Pipeline returned error for job {job['id']}, image {second['image_id']}: bad"
    )


async def test_a_reply_subject_of_no_task_of_the_job_is_400_and_records_nothing(
    client: httpx.AsyncClient, worker: httpx.AsyncClient
) -> None:
    job = await started_async_job(client, source_image_collection_id=COLLECTION)
    for forged in (f"$JS.ACK.JOBS_TASKS.job-{job['id'] + 1}-a1.1.5.5.1.0", "not.a.subject"):
        response = await worker.post(
            f"/api/v2/jobs/{job['id']}/result/",
            json={
                "results": [{"reply_subject": forged, "result": {"error": "x", "image_id": "7"}}]
            },
        )
        assert (response.status_code, response.json()) == (
            400,
            {"results": [f"{forged} is not a task of job {job['id']}"]},
        )
    events = (await client.get(f"/api/v2/jobs/{job['id']}/history/")).json()["results"]
    assert {"ResultRecorded", "CommandRefused"}.isdisjoint(e["type"] for e in events)


async def test_a_result_for_a_task_no_longer_out_is_accepted_refused_and_recorded(
    client: httpx.AsyncClient, worker: httpx.AsyncClient
) -> None:
    """As Antenna, /result/ takes it (200); the job refuses it and the history says why."""
    job = await started_async_job(client, source_image_collection_id=COLLECTION)
    url = f"/api/v2/jobs/{job['id']}/result/"
    first, second = (
        await worker.post(f"/api/v2/jobs/{job['id']}/tasks/", json={"batch_size": 2})
    ).json()["tasks"]
    assert (await worker.post(url, json={"results": [success(first)]})).status_code == 200
    again = await worker.post(url, json={"results": [success(first)]})  # answered already
    await client.post(f"/api/v2/jobs/{job['id']}/cancel/")
    late = await worker.post(url, json={"results": [success(second)]})  # its queue emptied

    assert (again.status_code, late.status_code) == (200, 200)
    assert [t["status"] for t in late.json()["tasks"]] == ["queued"]
    refused = await client.get(
        f"/api/v2/jobs/{job['id']}/history/", params={"type": "CommandRefused"}
    )
    assert [e["data"]["reason"] for e in refused.json()["results"]] == [
        f"Result for image {first['image_id']} of job {job['id']}, whose task is no longer out:"
        " answered already, or its queue emptied",
        f"Result for attempt 1 of job {job['id']}, which is REVOKED in attempt 1",
    ]
    shown = (await client.get(f"/api/v2/jobs/{job['id']}/")).json()
    assert stage_params(shown, "results")["captures"] == 1


async def test_a_huge_batch_size_is_400(worker: httpx.AsyncClient) -> None:
    response = await worker.post("/api/v2/jobs/1/tasks/", json={"batch_size": 10**23})
    assert (response.status_code, response.json()) == (
        400,
        {"batch_size": ["Ensure this value is less than or equal to 2147483647."]},
    )


async def test_workers_calls_are_logged_naming_the_token_by_its_first_characters(
    stack: Stack, client: httpx.AsyncClient, worker: httpx.AsyncClient
) -> None:
    job = await started_async_job(client, source_image_collection_id=COLLECTION)
    token = worker.headers["authorization"].removeprefix("Token ")
    tasks = (await worker.post(f"/api/v2/jobs/{job['id']}/tasks/", json={"batch_size": 2})).json()
    await worker.post(
        f"/api/v2/jobs/{job['id']}/result/", json={"results": [success(tasks["tasks"][0])]}
    )
    lines = (await client.get(f"/api/v2/jobs/{job['id']}/")).json()["logs"]["stdout"]
    caller = f"user=worker@example.org, token_id={token[:8]}…"
    assert any(
        line.endswith(f"Tasks fetched: requested=2, delivered=2, {caller}") for line in lines
    )
    assert any(
        "Queued pipeline result: task_id=" in line and line.endswith(caller) for line in lines
    )
    assert not any(token in line for line in lines)
    logged = [e for e in await history(client, job["id"]) if e["type"] == "LogAppended"]
    by_workers = {e["actor"] for e in logged if "token_id=" in e["data"]["message"]}
    assert by_workers == {"worker@example.org"}


async def test_the_last_result_is_logged_before_the_job_ends_and_late_lines_are_refused(
    stack: Stack, client: httpx.AsyncClient, worker: httpx.AsyncClient
) -> None:
    job = await started_async_job(client, source_image_collection_id=COLLECTION, limit=1)
    tasks = (await worker.post(f"/api/v2/jobs/{job['id']}/tasks/", json={"batch_size": 1})).json()
    await worker.post(
        f"/api/v2/jobs/{job['id']}/result/", json={"results": [success(tasks["tasks"][0])]}
    )
    done = await wait_for(client, job["id"])
    newest_first = [line.partition("] ")[2] for line in done["logs"]["stdout"]]
    assert newest_first[:2] == [
        f'INFO Finished job #{job["id"]} "Trest" (SUCCESS)',
        f"INFO Changing status of job {job['id']} to SUCCESS",
    ]
    assert any(line.startswith("INFO Queued pipeline result:") for line in newest_first)

    throughput = f"Job {job['id']} throughput: elapsed=0:00:01, processed=0/1"
    late = await stack.bus.send(
        NoteWorkerActivity(job_id=job["id"], message=throughput, while_running=1)
    )
    assert (late.accepted, late.reason) == (False, f"Job {job['id']} attempt 1 is not running")
    await settled(stack)


async def test_a_task_without_a_result_is_handed_out_again_under_a_new_reply_subject(
    settings: Settings,
) -> None:
    async with running_stack(settings.model_copy(update={"task_ack_wait": 1.0})) as stack:
        await stack.save_catalog(SEED_CATALOG)
        await stack.save_catalog(FOUR_NIGHTS)
        async with in_process_client(stack, admin_token(stack)) as client:
            job = await started_async_job(client, source_image_collection_id=COLLECTION, limit=1)
            [first] = await take_tasks(client, job["id"], 1)
            assert await take_tasks(client, job["id"], 1) == []  # not while it is out
            deadline = time.monotonic() + 10
            while not (again := await take_tasks(client, job["id"], 1)):
                assert time.monotonic() < deadline, "the task was not handed out again"
            assert again[0]["image_id"] == first["image_id"]
            assert again[0]["reply_subject"] != first["reply_subject"]
            posted = await client.post(
                f"/api/v2/jobs/{job['id']}/result/", json={"results": [success(again[0])]}
            )
            assert posted.status_code == 200
            done = await wait_for(client, job["id"])
            assert (done["status"], stage_params(done, "process")["processed"]) == ("SUCCESS", 1)
            await settled(stack)


async def test_detections_on_images_outside_the_job_are_not_counted(
    client: httpx.AsyncClient, worker: httpx.AsyncClient
) -> None:
    job = await started_async_job(client, source_image_collection_id=COLLECTION, limit=1)
    [task] = (await worker.post(f"/api/v2/jobs/{job['id']}/tasks/", json={"batch_size": 1})).json()[
        "tasks"
    ]
    result = success(task, detections=2)
    result["result"]["source_images"].append({"id": "999", "url": "https://example.org/999.jpg"})
    result["result"]["detections"] += [detection("999"), detection("999"), detection("999")]
    await worker.post(f"/api/v2/jobs/{job['id']}/result/", json={"results": [result]})
    done = await wait_for(client, job["id"])
    assert stage_params(done, "results") == {
        "captures": 1,
        "detections": 2,
        "classifications": 2,
        "status": "SUCCESS",
        "progress": 1.0,
    }
