"""A command's change reaches readers whole: the relay marks it, the projection waits for it."""

import asyncio
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import nats
import pytest
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from api.app import in_process_client
from api.bootstrap import ALL_ROLES, Role, Stack, running_stack, stop
from api.catalog_io import SEED_CATALOG
from domain.envelope import EventEnvelope
from handlers.relay import EventRelay
from infra.bus import CONTINUES_HEADER, EVENTS_STREAM, POSITION_HEADER, ensure_streams, jetstream
from infra.embedded_nats import embedded_nats
from infra.read_store import ReadStore
from infra.settings import Settings
from projections.compare import differences
from projections.projector import Projector
from projections.views import job_logs, job_view
from tests.conftest import POSTGRES_URL, admin_token, create_job, settled, wait_for


async def published(js: JetStreamContext) -> list[Msg]:
    """Every message of JOBS_EVENTS, in order."""
    last = int((await js.stream_info(EVENTS_STREAM)).state.last_seq)
    return [await js.get_msg(EVENTS_STREAM, seq=seq) for seq in range(1, last + 1)]


def marks(messages: list[Msg]) -> list[tuple[str, str, bool]]:
    """Each job event's type, what it says, and whether it says more of its command follows."""
    found = []
    for msg in messages:
        if not msg.subject.startswith("jobs."):
            continue
        event = EventEnvelope.model_validate_json(msg.data)
        said = event.data.get("message") or event.data.get("status") or ""
        found.append((event.type, said, CONTINUES_HEADER in (msg.headers or {})))
    return found


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def small_window_stack(
    request: pytest.FixtureRequest, settings: Settings
) -> AsyncIterator[tuple[Stack, EventRelay]]:
    """A stack whose relay reads the event store two notifications at a time, fewer than
    most commands' events, on either store (PostgreSQL's notification ids may have gaps:
    the relay counts what it reads)."""
    if request.param == "postgres":
        schema = request.getfixturevalue("postgres_schema")
        settings = settings.model_copy(update={"event_store": f"{POSTGRES_URL}?schema={schema}"})
    async with running_stack(settings, ALL_ROLES - {Role.RELAY}) as stack:
        reader = ThreadPoolExecutor(1)
        relay = EventRelay(stack.event_store, jetstream(stack.broker), reader, 0.01, window=2)
        relaying = asyncio.create_task(relay.run())
        stack.relay = relay
        await stack.save_catalog(SEED_CATALOG)
        yield stack, relay
        await stop([relaying])
        reader.shutdown()


async def test_the_relay_marks_every_event_of_a_command_but_its_last_whatever_its_window(
    small_window_stack: tuple[Stack, EventRelay],
) -> None:
    stack, _ = small_window_stack
    async with in_process_client(stack, admin_token(stack)) as client:
        created = await create_job(client, delay=2)
        n = created["id"]
        await wait_for(client, n)
    await settled(stack)

    assert marks(await published(jetstream(stack.broker))) == [
        ("JobCreated", "", True),  # created with start_now: queued by the same command
        ("StatusChanged", "PENDING", True),
        ("LogAppended", f"Changing status of job {n} to PENDING", False),
        ("JobClaimed", "", True),
        ("LogAppended", f'Running job #{n} "Trest" (PENDING)', True),
        ("StatusChanged", "STARTED", True),
        ("LogAppended", f"Changing status of job {n} to STARTED", False),
        ("LogAppended", f"Delaying job {n} for the 1 out of 2 seconds", False),
        ("StageProgressed", "", False),
        ("StageProgressed", "", False),
        ("StatusChanged", "SUCCESS", True),
        ("LogAppended", f"Changing status of job {n} to SUCCESS", True),
        ("LogAppended", f'Finished job #{n} "Trest" (SUCCESS)', False),
    ]


async def wait_until(projector: Projector, position: int) -> None:
    deadline = time.monotonic() + 5
    while projector.position < position:
        assert time.monotonic() < deadline, f"the projection is at {projector.position}"
        await asyncio.sleep(0.01)


async def test_the_projection_applies_a_command_once_all_its_events_are_in(
    stack: Stack, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    created = await create_job(client, delay=2)
    n = created["id"]
    await wait_for(client, n)
    await settled(stack)
    messages = await published(jetstream(stack.broker))
    succeeded = next(
        i
        for i, msg in enumerate(messages)
        if msg.subject == f"jobs.events.{n}.StatusChanged" and b'"SUCCESS"' in msg.data
    )

    async with embedded_nats(tmp_path / "nats") as url:
        nc = await nats.connect(url)
        js = nc.jetstream()
        await ensure_streams(js)
        views = ReadStore(tmp_path / "views.sqlite3")
        projector = Projector(views, js, ThreadPoolExecutor(1))
        projecting = asyncio.create_task(projector.run())

        async def copy(part: list[Msg]) -> None:
            for msg in part:
                await js.publish(msg.subject, msg.data, stream=EVENTS_STREAM, headers=msg.headers)

        def position_of(msg: Msg) -> int:
            return int((msg.headers or {})[POSITION_HEADER])

        await copy(messages[:succeeded])
        await wait_until(projector, position_of(messages[succeeded - 1]))
        await copy(messages[succeeded : succeeded + 2])  # the command's third event held back
        await asyncio.sleep(0.3)
        with views.reading() as db:
            view = job_view(db, n)
            assert view is not None and view["status"] == "STARTED"
            assert [line["message"] for line in job_logs(db, n, 1)] == [
                f"Delaying job {n} for the 1 out of 2 seconds"
            ]
        assert projector.position == position_of(messages[succeeded - 1])

        await copy(messages[succeeded + 2 :])
        await wait_until(projector, position_of(messages[-1]))
        assert differences(stack.read_store, views) == []
        await stop([projecting])
        await nc.close()
