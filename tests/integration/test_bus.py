"""Commands on the bus: duplicates have one effect, bad input is refused with a reason."""

import asyncio
import contextlib
import json
from pathlib import Path

import httpx
import nats
import pytest

from api.bootstrap import ALL_ROLES, Role, Stack, running_stack
from api.catalog_io import SEED_CATALOG
from domain.commands import (
    CancelJob,
    Command,
    CreateJob,
    NoteServicesSeen,
    RetryJob,
    RunJob,
    SaveCatalogObject,
    UpdateJob,
)
from handlers.relay import ForeignStreams
from infra.bus import COMMANDS_STREAM, MSG_ID_HEADER, command_subject, connection, jetstream
from infra.embedded_nats import embedded_nats
from infra.settings import Settings
from tests.conftest import history, settled


async def publish_raw(
    stack: Stack, name: str, payload: bytes, msg_id: str, outcome_id: str
) -> bytes:
    """Publish bytes as a command and return the outcome published for `outcome_id`."""
    outcomes = await connection(stack.broker).subscribe(f"jobs.outcomes.{outcome_id}")
    await jetstream(stack.broker).publish(
        command_subject(name), payload, stream=COMMANDS_STREAM, headers={MSG_ID_HEADER: msg_id}
    )
    outcome = await outcomes.next_msg(timeout=5)
    await outcomes.unsubscribe()
    return bytes(outcome.data)


async def deliver_again(stack: Stack, command: Command) -> bytes:
    """Deliver a command once more under another message id, past the server's dedupe."""
    payload = command.model_dump_json().encode()
    name = type(command).__name__
    return await publish_raw(stack, name, payload, "another-delivery", command.command_id)


async def test_the_same_command_twice_has_one_effect(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    created = await stack.bus.send(CreateJob(name="twice", project_id=16))
    run = RunJob(job_id=created.job_id or 0)

    first = await stack.bus.send(run)
    second = await stack.bus.send(run)  # within the server's duplicate window

    assert (first.accepted, first.duplicate) == (True, False)
    assert (second.accepted, second.duplicate) == (True, True)
    events = await history(client, run.job_id)
    queued = [
        e for e in events if e["type"] == "StatusChanged" and e["data"]["status"] == "PENDING"
    ]
    assert len(queued) == 1


async def test_a_redelivered_command_is_recognised_by_its_id(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    """A command that reaches the handler again (say after a crash) has no second effect."""
    created = await stack.bus.send(CreateJob(name="again", project_id=16))
    cancel = CancelJob(job_id=created.job_id or 0)
    first = await stack.bus.send(cancel)
    again = await deliver_again(stack, cancel)

    assert first.accepted and not first.duplicate
    assert b'"duplicate":true' in again
    assert b'"accepted":true' in again
    events = await history(client, cancel.job_id)
    assert [e["data"]["status"] for e in events if e["type"] == "StatusChanged"] == ["REVOKED"]


@pytest.mark.parametrize("kind", [CancelJob, RetryJob])
async def test_a_command_delivered_again_after_a_restart_has_no_second_effect(
    settings: Settings, kind: type[CancelJob] | type[RetryJob]
) -> None:
    """The handler that gets it again has loaded the job from the store, not kept it."""
    async with running_stack(settings, ALL_ROLES - {Role.RUNNER}) as stack:
        await stack.save_catalog(SEED_CATALOG)
        created = await stack.bus.send(CreateJob(name="again", project_id=16))
        job_id = created.job_id or 0
        if kind is RetryJob:
            await stack.bus.send(CancelJob(job_id=job_id))
        command = kind(job_id=job_id)
        assert (await stack.bus.send(command)).accepted

    async with running_stack(settings, ALL_ROLES - {Role.RUNNER}) as restarted:
        again = json.loads(await deliver_again(restarted, command))
        assert (again["accepted"], again["duplicate"]) == (True, True)
        await settled(restarted)
        types = [e.type for e in restarted.event_store.job_history(job_id)]
        assert types.count("JobRetried") == (1 if kind is RetryJob else 0)
        assert types.count("StatusChanged") == (2 if kind is RetryJob else 1)


async def test_a_catalog_create_delivered_twice_creates_one_object(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    create = SaveCatalogObject(kind="deployments", fields={"name": "Trap", "project_id": 16})
    first = await stack.bus.send(create)
    again = json.loads(await deliver_again(stack, create))

    assert first.accepted and first.object_id == 1
    assert (again["accepted"], again["duplicate"], again["object_id"]) == (True, True, 1)
    await settled(stack)
    assert (await client.get("/api/v2/deployments/")).json()["count"] == 1


async def test_a_create_delivered_twice_creates_one_job(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    create = CreateJob(name="once", project_id=16)
    first = await stack.bus.send(create)
    again = await deliver_again(stack, create)

    assert f'"job_id":{first.job_id}'.encode() in again
    assert b'"duplicate":true' in again
    await settled(stack)
    page = (await client.get("/api/v2/jobs/")).json()
    assert page["count"] == 1


@pytest.mark.parametrize(
    ("subject", "payload", "reason"),
    [
        ("CreateJob", b'{"name": "x"', "body: Invalid JSON"),
        (
            "CreateJob",
            b'{"name": "x", "project_id": "sixteen"}',
            "project_id: Input should be a valid integer",
        ),
        ("CreateJob", b'{"project_id": 16}', "name: Field required"),
        ("RunJob", b'{"job_id": 1, "colour": "red"}', "colour: Extra inputs are not permitted"),
        ("LaunchJob", b"{}", "Unknown command 'LaunchJob'"),
        (
            "RunJob",
            b'{"job_id": 1, "command_id": "a b"}',
            "command_id: Value error, must be one NATS subject token: no blanks, '.', '*' or '>'",
        ),
    ],
)
async def test_a_malformed_command_is_refused_with_a_reason_and_changes_nothing(
    stack: Stack, client: httpx.AsyncClient, subject: str, payload: bytes, reason: str
) -> None:
    stored = stack.event_store.recorder.max_notification_id()  # the catalog's events
    refusal = await publish_raw(stack, subject, payload, "bad-1", "bad-1")

    assert b'"accepted":false' in refusal
    assert reason.encode() in refusal
    assert (await client.get("/api/v2/jobs/")).json()["count"] == 0
    assert stack.event_store.recorder.max_notification_id() == stored


async def test_a_command_with_nowhere_to_answer_changes_nothing_and_holds_nothing_up(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    created = await stack.bus.send(CreateJob(name="stays", project_id=16))
    js = jetstream(stack.broker)
    await js.publish(
        command_subject("RunJob"),
        json.dumps({"job_id": created.job_id, "command_id": "a.b"}).encode(),
        stream=COMMANDS_STREAM,
        headers={MSG_ID_HEADER: "not a token"},
    )
    after = await stack.bus.send(CancelJob(job_id=created.job_id or 0))

    assert after.accepted
    events = await history(client, created.job_id or 0)
    assert [e["data"]["status"] for e in events if e["type"] == "StatusChanged"] == ["REVOKED"]
    consumer = await js.consumer_info(COMMANDS_STREAM, "command-handler")
    assert (consumer.num_ack_pending, consumer.num_pending) == (0, 0)


async def test_a_command_without_an_id_is_known_by_its_message_id(stack: Stack) -> None:
    payload = b'{"name": "no id", "project_id": 16}'
    outcome = json.loads(await publish_raw(stack, "CreateJob", payload, "by-header", "by-header"))
    assert (outcome["command_id"], outcome["accepted"], outcome["job_id"]) == ("by-header", True, 1)


async def test_a_heartbeat_of_an_unknown_service_is_refused(stack: Stack) -> None:
    outcome = await stack.bus.send(NoteServicesSeen(service_ids=[999]))
    reason = "No processing service 999: none is marked seen"
    assert (outcome.accepted, outcome.reason) == (False, reason)


async def test_a_command_for_an_unknown_job_is_refused(stack: Stack) -> None:
    outcome = await stack.bus.send(RunJob(job_id=999))
    assert (outcome.accepted, outcome.reason) == (False, "Job 999 does not exist")


async def test_a_job_naming_what_does_not_exist_is_refused_and_nothing_is_created(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    deployment = await stack.bus.send(
        SaveCatalogObject(kind="deployments", fields={"name": "Trap", "project_id": 999})
    )
    assert (deployment.accepted, deployment.object_id) == (False, None)
    outcome = await stack.bus.send(CreateJob(name="nowhere", project_id=999))
    reason = 'project_id: Invalid pk "999" - object does not exist.'
    assert (outcome.accepted, outcome.job_id, outcome.reason) == (False, None, reason)
    assert (await client.get("/api/v2/jobs/")).json()["count"] == 0


async def test_a_change_pointing_into_another_project_is_refused_on_the_bus(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    await stack.save_catalog({"projects": [{"id": 17, "name": "Elsewhere"}]})
    await stack.save_catalog({"collections": [{"id": 9, "name": "Theirs", "project_id": 17}]})
    created = await stack.bus.send(CreateJob(name="mine", project_id=16))
    job_id = created.job_id or 0

    moved = await stack.bus.send(
        UpdateJob(job_id=job_id, changes={"source_image_collection_id": 9})
    )

    reason = "source_image_collection_id: Collection 9 belongs to project 17, not 16."
    assert (moved.accepted, moved.reason) == (False, reason)
    assert [e["type"] for e in await history(client, job_id)][-1] == "CommandRefused"


async def test_a_pipeline_slug_is_held_by_one_pipeline_until_it_gives_it_up(stack: Stack) -> None:
    def pipeline(object_id: int, slug: str) -> SaveCatalogObject:
        fields = {"name": f"Pipeline {object_id}", "slug": slug}
        return SaveCatalogObject(kind="pipelines", object_id=object_id, fields=fields)

    taken = await stack.bus.send(pipeline(2, "panama_moths_2023"))
    assert (taken.accepted, taken.reason) == (
        False,
        "slug: pipeline with this slug already exists.",
    )
    assert (await stack.bus.send(pipeline(1, "panama_moths_2024"))).accepted  # gives it up
    assert (await stack.bus.send(pipeline(2, "panama_moths_2023"))).accepted
    assert not (await stack.bus.send(pipeline(1, "panama_moths_2023"))).accepted


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if text.encode() in cmdline.read_bytes():
                found.append(cmdline.parent.name)
    return found


async def test_the_embedded_server_stops_with_its_owner(tmp_path: Path) -> None:
    store = tmp_path / "nats"
    async with embedded_nats(store) as url:
        connected = await nats.connect(url)
        await connected.close()
        assert len(_processes_mentioning(str(store))) == 1
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    assert _processes_mentioning(str(store)) == []


async def test_a_store_will_not_start_on_streams_another_store_filled(
    settings: Settings, tmp_path: Path
) -> None:
    async with embedded_nats(tmp_path / "shared-nats") as url:
        first = settings.model_copy(update={"nats_url": url})
        async with running_stack(first) as stack:
            await stack.save_catalog(SEED_CATALOG)
            assert (await stack.bus.send(CreateJob(name="first", project_id=16))).accepted
            await settled(stack)
        other = first.model_copy(update={"data_dir": tmp_path / "another-data-dir"})
        with pytest.raises(ForeignStreams, match="its streams belong to another jobledger store"):
            async with running_stack(other):
                pass
        async with running_stack(first) as again:  # its own store still starts on them
            assert again.relay is not None
