"""Where a pipeline job's images go (CONTRACT.md sections 7, 8, 10 and 12): to a processing
service that jobledger calls (sync_api), or to workers that pull tasks (async_api), whose
liveness their calls record."""

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.bootstrap import Stack
from tests.conftest import (
    create_job,
    detection,
    served,
    settled,
    stage_params,
    started_async_job,
    success,
    take_tasks,
    wait_for,
)

IMAGES = [201, 202, 203, 204, 205]
DETECTIONS = {"201": 0, "202": 1, "203": 2, "204": 3, "205": 1}  # per image; 2 labels each


class ProcessingService:
    """A real HTTP processing service: answers /process as Antenna's services do."""

    def __init__(self, failing: frozenset[str] = frozenset(), hanging: bool = False) -> None:
        self.failing = failing  # a batch holding one of these images gets a 500
        self.answering = asyncio.Event()  # a hanging service answers once this is set
        if not hanging:
            self.answering.set()
        self.requests: list[dict[str, Any]] = []
        self.asked = asyncio.Event()
        self.app = FastAPI()
        self.app.post("/process")(self.process)

    async def process(self, request: Request) -> Any:
        body = await request.json()
        self.requests.append(body)
        self.asked.set()
        await self.answering.wait()
        images = [image["id"] for image in body["source_images"]]
        if self.failing & set(images):
            return JSONResponse({"detail": "model crashed"}, status_code=500)
        return {
            "pipeline": body["pipeline"],
            "algorithms": {},
            "total_time": 0.5,
            "source_images": body["source_images"],
            "detections": [
                detection(i, ("moth", "not moth")) for i in images for _ in range(DETECTIONS[i])
            ],
            "errors": None,
        }


def catalog(service_url: str | None, async_workers: bool) -> dict[str, Any]:
    return {
        "projects": [{"id": 40, "name": "Sync", "async_pipeline_workers": async_workers}],
        "collections": [{"id": 41, "name": "Five", "images": IMAGES, "project_id": 40}],
        "captures": [{"id": i, "url": f"https://example.org/{i}.jpg"} for i in IMAGES],
        "pipelines": [{"id": 42, "name": "Moths", "slug": "moths_2026", "batch_size": 2}],
        "services": [
            {"id": 43, "name": "GPU box", "endpoint_url": service_url, "pipelines": [42]}
            | {"projects": [40]}
        ],
    }


PIPELINE_JOB = {
    "delay": 0,
    "project_id": 40,
    "source_image_collection_id": 41,
    "pipeline_id": 42,
}


@pytest.fixture
async def service() -> AsyncIterator[tuple[ProcessingService, str]]:
    running = ProcessingService()
    async with served(running.app) as url:
        yield running, url


async def test_a_sync_job_sends_its_images_in_batches_to_the_processing_service(
    stack: Stack, client: httpx.AsyncClient, service: tuple[ProcessingService, str]
) -> None:
    running, url = service
    await stack.save_catalog(catalog(url, async_workers=False))
    created = await create_job(client, **PIPELINE_JOB)
    assert created["dispatch_mode"] == "sync_api"
    job = await wait_for(client, created["id"])
    assert job["status"] == "SUCCESS"
    assert sorted(len(r["source_images"]) for r in running.requests) == [1, 2, 2]
    sent = [image for r in running.requests for image in r["source_images"]]
    assert sorted(sent, key=lambda image: image["id"]) == [
        {"id": str(i), "url": f"https://example.org/{i}.jpg"} for i in IMAGES
    ]
    assert {r["pipeline"] for r in running.requests} == {"moths_2026"}
    assert stage_params(job, "process") == {
        "processed": 5,
        "remaining": 0,
        "failed": 0,
        "status": "SUCCESS",
        "progress": 1.0,
    }
    assert stage_params(job, "results") == {
        "captures": 5,
        "detections": 7,
        "classifications": 14,
        "status": "SUCCESS",
        "progress": 1.0,
    }


async def test_a_sync_job_whose_service_fails_for_most_images_fails(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    failing = ProcessingService(failing=frozenset({"201", "202", "203", "204"}))
    async with served(failing.app) as url:
        await stack.save_catalog(catalog(url, async_workers=False))
        created = await create_job(client, **PIPELINE_JOB, shuffle=False)
        job = await wait_for(client, created["id"])
    assert job["status"] == "FAILURE"
    assert stage_params(job, "process") == {
        "processed": 5,
        "remaining": 0,
        "failed": 4,
        "status": "FAILURE",
        "progress": 1.0,
    }
    assert stage_params(job, "results")["detections"] == 1  # image 205 answered
    errors = job["logs"]["stderr"]
    assert errors[0] == (
        f'Job #{job["id"]} "Trest" failed: Failed to process more than 50% of images'
    )
    assert (
        f"Pipeline returned error for job {job['id']}, image 201: Processing service 'GPU box'"
        " failed: Server error '500 Internal Server Error'"
    ) in [line.split(" for url")[0] for line in errors]


async def test_a_sync_job_is_cancelled_at_once_while_its_service_takes_its_time(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    hanging = ProcessingService(hanging=True)
    async with served(hanging.app) as url:
        try:
            await stack.save_catalog(catalog(url, async_workers=False))
            created = await create_job(client, **PIPELINE_JOB)
            await asyncio.wait_for(hanging.asked.wait(), 5)
            cancelling = await client.post(f"/api/v2/jobs/{created['id']}/cancel/")
            assert cancelling.json()["status"] in {"CANCELING", "REVOKED"}  # the runner is quick
            job = await wait_for(client, created["id"], within=2)
        finally:
            hanging.answering.set()  # so that the server can stop
    assert job["status"] == "REVOKED"
    assert len(hanging.requests) == 1
    assert stage_params(job, "process")["processed"] == 0


async def test_a_sync_job_without_a_service_for_its_pipeline_fails_saying_so(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    entries = catalog(None, async_workers=False)  # the only service has workers, no endpoint
    await stack.save_catalog(entries)
    job = await wait_for(client, (await create_job(client, **PIPELINE_JOB))["id"])
    assert job["status"] == "FAILURE"
    assert job["logs"]["stderr"] == [
        f'Job #{job["id"]} "Trest" failed:'
        " No processing service serves pipeline 'moths_2026' for project 40"
    ]


async def test_the_dispatch_mode_is_fixed_when_the_job_is_created(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    await stack.save_catalog(catalog(None, async_workers=True))
    job = await create_job(client, start_now=False, **PIPELINE_JOB)
    assert job["dispatch_mode"] == "async_api"
    changed = await client.patch("/api/v2/projects/40/", json={"async_pipeline_workers": False})
    assert changed.json()["async_pipeline_workers"] is False
    assert (await client.get(f"/api/v2/jobs/{job['id']}/")).json()["dispatch_mode"] == "async_api"
    later = await create_job(client, start_now=False, **PIPELINE_JOB)
    assert later["dispatch_mode"] == "sync_api"
    no_pipeline = await create_job(client, start_now=False, **PIPELINE_JOB | {"pipeline_id": None})
    assert no_pipeline["dispatch_mode"] == "internal"


def waiting_lines(job: dict[str, Any]) -> list[str]:
    """The job's lines about workers, oldest first, without their time."""
    return [line.split("] ", 1)[1] for line in reversed(job["logs"]["stdout"]) if "workers" in line]


async def test_an_async_job_says_how_many_workers_were_seen_and_polls_count_as_seen(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    await stack.save_catalog(catalog(None, async_workers=True))
    first = await create_job(client, **PIPELINE_JOB)
    job = await wait_for(client, first["id"], {"STARTED"})
    while len(waiting_lines(job)) < 2:
        job = (await client.get(f"/api/v2/jobs/{first['id']}/")).json()
    assert waiting_lines(job) == [
        "INFO Waiting for workers to pick up tasks for pipeline 'moths_2026' (0/1 online recently)",
        "WARNING Zero workers have been seen for pipeline 'moths_2026' in the last hour",
    ]
    service = (await client.get("/api/v2/ml/processing_services/43/")).json()
    assert service["last_seen"] is None

    poll = {"pipeline__slug__in": "moths_2026", "ids_only": "1", "incomplete_only": "1"}
    assert (await client.get("/api/v2/jobs/", params=poll)).json()["count"] == 1
    await client.get("/api/v2/jobs/", params=poll)  # within 30 s of the first: not recorded
    deadline = time.monotonic() + 5  # a heartbeat is sent after the response
    while service["last_seen"] is None:
        assert time.monotonic() < deadline, "the poll was not recorded as a heartbeat"
        service = (await client.get("/api/v2/ml/processing_services/43/")).json()
    await settled(stack)
    seen = [e for e in stack.event_store.all_envelopes() if e.type == "ServiceSeen"]
    assert len(seen) == 1

    second = await create_job(client, **PIPELINE_JOB)
    job = await wait_for(client, second["id"], {"STARTED"})
    while not waiting_lines(job):
        job = (await client.get(f"/api/v2/jobs/{second['id']}/")).json()
    await settled(stack)
    job = (await client.get(f"/api/v2/jobs/{second['id']}/")).json()
    assert waiting_lines(job) == [
        "INFO Waiting for workers to pick up tasks for pipeline 'moths_2026' (1/1 online recently)",
    ]


async def test_an_image_without_a_url_fails_the_job_at_collect(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    entries = catalog(None, async_workers=True)
    entries["captures"][2] = {"id": 203}  # no URL
    await stack.save_catalog(entries)
    job = await wait_for(client, (await create_job(client, **PIPELINE_JOB, limit=None))["id"])
    assert job["status"] == "FAILURE"
    assert job["finished_at"] is not None
    assert stage_params(job, "collect") == {
        "total_images": 5,
        "status": "FAILURE",
        "progress": 0.0,
    }
    assert job["logs"]["stderr"] == [
        f'Job #{job["id"]} "Trest" failed: Images without a URL cannot be processed: 203'
    ]


async def test_results_after_the_first_seconds_log_the_jobs_throughput(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    await stack.save_catalog(catalog(None, async_workers=True))
    job = await started_async_job(client, **PIPELINE_JOB)
    await asyncio.sleep(3)  # the line starts after 3 s, as Antenna's
    tasks = await take_tasks(client, job["id"], 1)
    await client.post(f"/api/v2/jobs/{job['id']}/result/", json={"results": [success(tasks[0])]})
    lines = (await client.get(f"/api/v2/jobs/{job['id']}/")).json()["logs"]["stdout"]
    throughput = [line.split("] ", 1)[1] for line in lines if "throughput" in line]
    assert len(throughput) == 1
    assert re.fullmatch(
        rf"INFO Job {job['id']} throughput: elapsed=0m 0\ds, processed=1/5,"
        r" rate=\d+\.\d imgs/min, ETA=0m \d\ds",
        throughput[0],
    ), throughput
