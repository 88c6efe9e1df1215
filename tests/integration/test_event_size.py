"""A change too large for the bus is refused whole, and everything after it goes on."""

import httpx

from api.bootstrap import Stack
from domain.commands import AppendLog, ClaimJob, CreateJob, SaveCatalogObject
from infra.event_store import MAX_EVENT_BYTES
from tests.conftest import create_job, settled, wait_for

HUGE = "x" * (MAX_EVENT_BYTES + 1)


async def test_a_catalog_change_too_large_to_publish_is_refused_over_the_bus(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    stored = stack.event_store.recorder.max_notification_id()
    outcome = await stack.bus.send(
        SaveCatalogObject(kind="projects", object_id=16, fields={"description": HUGE}, partial=True)
    )
    assert not outcome.accepted
    assert outcome.reason is not None
    assert outcome.reason.startswith(
        "The change is too large to publish: its CatalogObjectChanged event would be "
    )
    assert outcome.reason.endswith(f" bytes, more than {MAX_EVENT_BYTES:,}")
    assert stack.event_store.recorder.max_notification_id() == stored

    job = await create_job(client, delay=1)  # the relay and the projection go on
    assert (await wait_for(client, job["id"]))["status"] == "SUCCESS"
    project = (await client.get("/api/v2/projects/16/")).json()
    assert project["description"] == ""


async def test_a_catalog_change_too_large_to_publish_is_a_400_over_http(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    response = await client.patch("/api/v2/projects/16/", json={"description": HUGE})
    assert response.status_code == 400
    [reason] = response.json()
    assert reason.startswith("The change is too large to publish: ")


async def test_a_job_command_too_large_is_refused_and_recorded_and_the_batch_goes_on(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    stack, _ = idle
    created = await stack.bus.send(CreateJob(name="big logs", project_id=16, start_now=True))
    job_id = created.job_id or 0
    claim = ClaimJob(job_id=job_id, attempt=1, runner="r")
    assert (await stack.bus.send(claim)).accepted
    huge = AppendLog(job_id=job_id, attempt=1, runner="r", message=HUGE)
    small = AppendLog(job_id=job_id, attempt=1, runner="r", message="fits")
    await stack.bus.publish(huge)  # the handler may take both in one batch: the same either way
    outcome = await stack.bus.send(small)

    assert outcome.accepted
    await settled(stack)
    events = [
        e
        for e in stack.event_store.job_history(job_id)
        if e.causation_id in (huge.command_id, small.command_id)
    ]
    assert [(e.type, e.causation_id) for e in events] == [
        ("CommandRefused", huge.command_id),
        ("LogAppended", small.command_id),
    ]
    assert (
        events[0]
        .data["reason"]
        .startswith("The change is too large to publish: its LogAppended event would be ")
    )
