"""The reaper ends started attempts whose runner or workers fell silent, and only those."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from api.app import in_process_client
from api.bootstrap import running_stack
from api.catalog_io import SEED_CATALOG
from infra.settings import Settings
from tests.conftest import admin_token, create_job, started_async_job, wait_for


@pytest.fixture
async def impatient(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    quick = settings.model_copy(update={"stall_limit": 0.5, "reap_interval": 0.1})
    async with running_stack(quick) as stack:
        await stack.save_catalog(SEED_CATALOG)
        await stack.save_catalog(
            {
                "collections": [{"id": 30, "name": "One", "method": "full", "images": [7]}],
                "captures": [{"id": 7, "url": "https://example.org/7.jpg"}],
            }
        )
        async with in_process_client(stack, admin_token(stack)) as client:
            yield client


async def test_a_job_whose_workers_fell_silent_fails_with_a_reason(
    impatient: httpx.AsyncClient,
) -> None:
    created = await create_job(impatient, delay=0, source_image_collection_id=30)
    job = await wait_for(impatient, created["id"], within=5)
    assert job["status"] == "FAILURE"
    warning = next(line for line in job["logs"]["stdout"] if " WARNING " in line)
    assert warning.endswith(
        "Reaping stalled job: no progress for 0 min (threshold 0 min)."
        " previous_status=STARTED, dispatch_mode=async_api, stages: collect=100% SUCCESS,"
        " process=0% STARTED, results=0% STARTED"
    )
    events = (await impatient.get(f"/api/v2/jobs/{created['id']}/history/")).json()["results"]
    reaped = [e for e in events if e["actor"] == "reaper"]
    assert [e["type"] for e in reaped] == [
        "LogAppended",
        "LogAppended",
        "StatusChanged",
        "LogAppended",
        "LogAppended",
    ]
    assert job["logs"]["stderr"] == [
        f'Job #{job["id"]} "Trest" failed: stalled, no progress for 0 min'
    ]
    attempts = (await impatient.get(f"/api/v2/jobs/{created['id']}/attempts/")).json()
    assert attempts[0]["reason"] == "stalled, no progress for 0 min"


async def test_a_refused_command_does_not_keep_a_silent_job_alive(
    impatient: httpx.AsyncClient,
) -> None:
    started = await started_async_job(impatient, source_image_collection_id=30)
    await asyncio.sleep(0.2)  # the refusal is recorded after the time the reaper looks back to
    refused = await impatient.post(f"/api/v2/jobs/{started['id']}/run/")
    assert refused.json() == [f"Job {started['id']} is already queued or running (STARTED)"]

    job = await wait_for(impatient, started["id"], within=5)
    assert job["status"] == "FAILURE"


async def test_a_job_that_reports_is_left_alone(impatient: httpx.AsyncClient) -> None:
    created = await create_job(impatient, delay=60)  # a report every 2 ticks of 0.02 s
    job = await wait_for(impatient, created["id"])
    assert job["status"] == "SUCCESS"


async def test_a_created_job_is_never_reaped(impatient: httpx.AsyncClient) -> None:
    created = await create_job(impatient, start_now=False)
    await asyncio.sleep(1.0)
    job = (await impatient.get(f"/api/v2/jobs/{created['id']}/")).json()
    assert job["status"] == "CREATED"
