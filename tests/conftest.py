"""Fixtures for integration tests: a real nats-server from the wheel and real SQLite files."""

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import psycopg
import pytest
import uvicorn
from starlette.types import ASGIApp

from api.app import in_process_client
from api.bootstrap import ALL_ROLES, Role, Stack, running_stack
from api.catalog_io import SEED_CATALOG
from domain.statuses import FINAL
from infra.bus import EVENTS_STREAM, jetstream
from infra.embedded_nats import free_port
from infra.settings import Settings

TICK = 0.02  # one second of a test job's delay, in tests


POSTGRES_URL = os.environ.get(
    "JOBLEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A schema name of its own for one test (the event store creates it), dropped afterwards."""
    schema = f"jobledger_test_{uuid4().hex[:12]}"
    yield schema
    with psycopg.connect(POSTGRES_URL, autocommit=True) as db:
        db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        nats_url=None,
        data_dir=tmp_path / "data",
        event_store=None,
        read_store=None,
        delay_tick=TICK,
    )


@pytest.fixture
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    async with running_stack(settings) as running:
        await running.save_catalog(SEED_CATALOG)
        yield running


ADMIN = "admin@example.org"


def admin_token(stack: Stack) -> str:
    stack.users.add(ADMIN, superuser=True)
    return stack.users.new_token(ADMIN)


@pytest.fixture
async def idle(settings: Settings) -> AsyncIterator[tuple[Stack, httpx.AsyncClient]]:
    """A stack without runners, and a superuser's client."""
    async with running_stack(settings, ALL_ROLES - {Role.RUNNER}) as stack:
        await stack.save_catalog(SEED_CATALOG)
        async with in_process_client(stack, admin_token(stack)) as client:
            yield stack, client


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A superuser's client."""
    async with in_process_client(stack, admin_token(stack)) as http:
        yield http


SEED_JOB = {
    "name": "Trest",
    "delay": 10,
    "limit": 100,
    "shuffle": True,
    "project_id": 16,
    "source_image_collection_id": 5,
    "pipeline_id": 1,
}


async def create_job(
    client: httpx.AsyncClient, start_now: bool = True, **changes: Any
) -> dict[str, Any]:
    params = {"start_now": "true"} if start_now else {}
    response = await client.post("/api/v2/jobs/", json={**SEED_JOB, **changes}, params=params)
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


async def wait_for(
    client: httpx.AsyncClient,
    job_id: int,
    statuses: set[str] | frozenset[str] = FINAL,
    within: float = 15,
) -> dict[str, Any]:
    """Poll the job until its status is one of `statuses`."""
    deadline = time.monotonic() + within
    while True:
        job: dict[str, Any] = (await client.get(f"/api/v2/jobs/{job_id}/")).json()
        if job["status"] in statuses:
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']}"
        await asyncio.sleep(TICK)


async def history(client: httpx.AsyncClient, job_id: int) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v2/jobs/{job_id}/history/")
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["results"]
    return events


@contextlib.asynccontextmanager
async def served(app: ASGIApp, port: int | None = None) -> AsyncIterator[str]:
    """`app` served by uvicorn on a loopback port (a free one unless given), for as long as
    the block runs; its URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn tells only by this flag
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


async def settled(stack: Stack) -> None:
    """Wait until the relay has published every stored event and the projection applied it."""
    assert stack.relay is not None and stack.projector is not None
    deadline = time.monotonic() + 10
    while stack.relay.position < (stack.event_store.recorder.max_notification_id() or 0):
        assert time.monotonic() < deadline, "the relay did not catch up"
        await asyncio.sleep(0.01)
    info = await jetstream(stack.broker).stream_info(EVENTS_STREAM)
    while stack.projector.stream_seq < info.state.last_seq:
        assert time.monotonic() < deadline, "the projection did not catch up"
        await asyncio.sleep(0.01)


# An async worker's side of the protocol (CONTRACT.md section 12).


def stage_params(job: dict[str, Any], key: str) -> dict[str, Any]:
    """A stage's params by key, with its status and progress."""
    stage = next(s for s in job["progress"]["stages"] if s["key"] == key)
    return {p["key"]: p["value"] for p in stage["params"]} | {
        "status": stage["status"],
        "progress": stage["progress"],
    }


async def started_async_job(client: httpx.AsyncClient, **changes: Any) -> dict[str, Any]:
    """An async_api job, STARTED, its images queued for workers."""
    created = await create_job(client, **{"delay": 0, "limit": None, **changes})
    assert created["dispatch_mode"] == "async_api"
    job = await wait_for(client, created["id"], {"STARTED"})
    while stage_params(job, "collect")["status"] != "SUCCESS":
        job = (await client.get(f"/api/v2/jobs/{job['id']}/")).json()
    return job


async def take_tasks(client: httpx.AsyncClient, job_id: int, count: int) -> list[dict[str, Any]]:
    response = await client.post(f"/api/v2/jobs/{job_id}/tasks/", json={"batch_size": count})
    assert response.status_code == 200, response.text
    tasks: list[dict[str, Any]] = response.json()["tasks"]
    return tasks


def detection(image_id: str, labels: tuple[str, ...] = ("moth",)) -> dict[str, Any]:
    """A detection in an image, with one classification per label."""
    return {
        "source_image_id": image_id,
        "bbox": {"x1": 0, "y1": 0, "x2": 10, "y2": 10},
        "algorithm": {"name": "detector", "key": "detector"},
        "timestamp": "2026-12-03T10:00:00",
        "classifications": [
            {
                "classification": label,
                "scores": [0.9],
                "algorithm": {"name": "classifier", "key": "classifier"},
                "timestamp": "2026-12-03T10:00:00",
            }
            for label in labels
        ],
    }


def success(task: dict[str, Any], detections: int = 2) -> dict[str, Any]:
    """A worker's result for the task's image, with that many detections."""
    return {
        "reply_subject": task["reply_subject"],
        "result": {
            "pipeline": "panama_moths_2023",
            "total_time": 1.5,
            "source_images": [{"id": task["image_id"], "url": task["image_url"]}],
            "detections": [detection(task["image_id"]) for _ in range(detections)],
        },
    }


def error(task: dict[str, Any]) -> dict[str, Any]:
    """A worker's error for the task's image."""
    return {
        "reply_subject": task["reply_subject"],
        "result": {"error": "out of memory", "image_id": task["image_id"]},
    }
