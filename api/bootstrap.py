"""The composition root: builds the bus, the stores and the roles, starts and stops them."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum

from faststream.nats import NatsBroker

from api.catalog_io import Entries, read_catalog_file, save_catalog
from handlers.command_consumer import CommandConsumer
from handlers.command_handler import CommandHandler
from handlers.reaper import Reaper
from handlers.relay import EventRelay, check_streams_are_ours
from handlers.runner import Runner
from infra.bus import CommandBus, connection, ensure_streams, jetstream, make_broker
from infra.catalog import Catalog
from infra.embedded_nats import embedded_nats
from infra.event_store import EventStore, open_event_store
from infra.read_store import ReadStore
from infra.settings import Settings
from infra.task_queue import TaskQueue
from infra.users import Users
from projections.projector import Projector

log = logging.getLogger(__name__)


class Role(StrEnum):
    HANDLER = "handler"
    RELAY = "relay"
    PROJECTOR = "projector"
    RUNNER = "runner"
    REAPER = "reaper"


ALL_ROLES = frozenset(Role)
RESTART_DELAY = 1.0


@dataclass
class Stack:
    """What the entry points use: the bus, the stores, and the roles running in this process."""

    settings: Settings
    broker: NatsBroker
    bus: CommandBus
    event_store: EventStore
    read_store: ReadStore
    catalog: Catalog
    users: Users
    nats_url: str
    relay: EventRelay | None = None
    projector: Projector | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # Set when the HTTP server begins to stop: live streams end so that it need not cut them.
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    async def save_catalog(self, entries: Entries, actor: str = "operator") -> dict[str, int]:
        """Add or replace catalog objects (all of them checked first); see api.catalog_io."""
        return await save_catalog(self.bus, self.read_store, self.catalog.current(), entries, actor)


async def supervise(name: str, run: Callable[[], Awaitable[None]]) -> None:
    """Run a role for as long as the stack runs; restart it after an unexpected error."""
    while True:
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s stopped with an error; restarting in %.0f s", name, RESTART_DELAY)
        await asyncio.sleep(RESTART_DELAY)


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the tasks and wait until they end.

    Cancelling once is not enough: on Python 3.11 asyncio.wait_for, which nats-py uses,
    can swallow a cancellation that arrives as its inner wait completes.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)


async def close_connection(broker: NatsBroker) -> None:
    """Close without draining: whatever is not acknowledged is redelivered to the next process.

    Flushing first makes sure the last acknowledgements and hand-backs reach the server.
    """
    nc = connection(broker)
    with contextlib.suppress(Exception):
        await nc.flush(timeout=2)
    await nc.close()


@contextlib.asynccontextmanager
async def nats_url_for(settings: Settings) -> AsyncIterator[str]:
    if settings.nats_url:
        yield settings.nats_url
        return
    async with embedded_nats(settings.data_dir / "nats") as url:
        yield url


@contextlib.asynccontextmanager
async def running_stack(
    settings: Settings, roles: frozenset[Role] = ALL_ROLES
) -> AsyncIterator[Stack]:
    """Start NATS (embedded unless JOBLEDGER_NATS_URL is set) and the given roles."""
    async with contextlib.AsyncExitStack() as exits:
        url = await exits.enter_async_context(nats_url_for(settings))
        broker = make_broker(url)
        event_store = open_event_store(settings)
        writer = ThreadPoolExecutor(1, thread_name_prefix="event-store-writer")
        reader = ThreadPoolExecutor(1, thread_name_prefix="event-store-reader")
        views_writer = ThreadPoolExecutor(1, thread_name_prefix="read-store-writer")
        for executor in (writer, reader, views_writer):
            exits.callback(executor.shutdown, wait=True, cancel_futures=True)
        read_store = ReadStore(settings.read_store_path)
        stack = Stack(
            settings=settings,
            broker=broker,
            bus=CommandBus(broker, timeout=settings.command_timeout),
            event_store=event_store,
            read_store=read_store,
            catalog=Catalog(read_store),
            users=Users(settings.users_path),
            nats_url=url,
        )
        await broker.connect()
        exits.push_async_callback(close_connection, broker)
        js = jetstream(broker)
        await ensure_streams(js)
        await check_streams_are_ours(js, event_store)
        if Role.RELAY in roles:
            stack.relay = EventRelay(event_store, js, reader)
            stack.tasks.append(asyncio.create_task(supervise("relay", stack.relay.run)))
        if Role.HANDLER in roles:
            on_saved = stack.relay.wake if stack.relay else lambda: None
            consumer = CommandConsumer(
                js, connection(broker), CommandHandler(event_store), writer, on_saved
            )
            stack.tasks.append(asyncio.create_task(supervise("command handler", consumer.run)))
        if Role.PROJECTOR in roles:
            stack.projector = Projector(stack.read_store, js, views_writer)
            stack.tasks.append(asyncio.create_task(supervise("projector", stack.projector.run)))
        if Role.RUNNER in roles:
            runner = Runner(
                connection(broker),
                js,
                stack.bus,
                stack.catalog,
                TaskQueue(js, settings.task_ack_wait),
                settings.runner_concurrency,
                settings.delay_tick,
            )
            stack.tasks.append(asyncio.create_task(supervise("runner", runner.run)))
        if Role.REAPER in roles:
            reaper = Reaper(
                stack.read_store, stack.bus, settings.stall_limit, settings.reap_interval
            )
            stack.tasks.append(asyncio.create_task(supervise("reaper", reaper.run)))
        if {Role.HANDLER, Role.PROJECTOR} <= roles:
            await import_catalog_file(stack)
        try:
            yield stack
        finally:
            await stop(stack.tasks)


async def import_catalog_file(stack: Stack) -> None:
    """Earlier versions kept the catalog in a JSON file: its objects become events once."""
    path = stack.settings.data_dir / "catalog.json"
    if path.exists():
        await stack.save_catalog(read_catalog_file(path))
        path.rename(path.with_name("catalog.json.imported"))
