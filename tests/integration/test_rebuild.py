"""Rebuilding the read model while the live one serves: no request fails, nothing is lost."""

import asyncio
from pathlib import Path

import httpx
import pytest

from api.bootstrap import Stack
from infra.read_store import ReadStore
from projections.compare import differences
from projections.replay import replay
from tests.conftest import create_job, settled, wait_for


async def read_continuously(client: httpx.AsyncClient, job_id: int, failures: list[int]) -> None:
    while True:
        for path in (f"/api/v2/jobs/{job_id}/", "/api/v2/jobs/"):
            response = await client.get(path)
            if response.status_code != 200:
                failures.append(response.status_code)
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("from_stream", [False, True])
async def test_a_rebuild_under_writes_switches_over_and_equals_a_replay(
    stack: Stack, client: httpx.AsyncClient, tmp_path: Path, from_stream: bool
) -> None:
    done = await create_job(client, delay=2)
    await wait_for(client, done["id"])
    running = await create_job(client, delay=60)  # reports while the rebuild happens
    failures: list[int] = []
    reader = asyncio.create_task(read_continuously(client, running["id"], failures))
    live_before = stack.read_store.current

    rebuilt = stack.read_store.new_generation()
    if not from_stream:
        await asyncio.to_thread(replay, stack.event_store, ReadStore(rebuilt))
    stack.read_store.offer(rebuilt)
    while stack.read_store.current == live_before:  # noqa: ASYNC110 - a file is the signal
        await asyncio.sleep(0.01)

    await wait_for(client, running["id"])
    reader.cancel()
    await settled(stack)
    assert failures == []
    assert stack.read_store.current == rebuilt
    assert not live_before.exists()
    fresh = ReadStore(tmp_path / "fresh.sqlite3")
    replay(stack.event_store, fresh)
    assert differences(stack.read_store, fresh) == []
    job = (await client.get(f"/api/v2/jobs/{running['id']}/")).json()
    assert job["status"] == "SUCCESS"
