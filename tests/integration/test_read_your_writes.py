"""Every job response says which version it reflects; readers may wait for one."""

import asyncio

import httpx

from api.bootstrap import Stack
from domain.commands import CancelJob
from tests.conftest import create_job


async def test_responses_carry_the_version_and_the_projection_position(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/v2/jobs/", json={"name": "v", "delay": 0, "project_id": 16})
    assert response.status_code == 201
    assert response.headers["x-job-version"] == "1"
    position = int(response.headers["x-projection-position"])
    assert position >= 1

    detail = await client.get(f"/api/v2/jobs/{response.json()['id']}/")
    assert detail.headers["x-job-version"] == "1"
    assert int(detail.headers["x-projection-position"]) >= position


async def test_min_version_waits_until_the_view_has_it(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    job = await create_job(client, start_now=False)  # nothing moves it: version 1
    reader = asyncio.create_task(
        client.get(f"/api/v2/jobs/{job['id']}/", params={"min_version": 3})
    )
    await asyncio.sleep(0.05)
    assert not reader.done()
    await stack.bus.send(CancelJob(job_id=job["id"]))  # StatusChanged and its log line: 2, 3
    response = await reader
    assert response.headers["x-job-version"] == "3"
    assert response.json()["status"] == "REVOKED"


async def test_a_bad_min_version_is_400(client: httpx.AsyncClient) -> None:
    job = await create_job(client, start_now=False)
    response = await client.get(f"/api/v2/jobs/{job['id']}/", params={"min_version": "zero"})
    assert response.status_code == 400
    assert list(response.json()) == ["min_version"]
