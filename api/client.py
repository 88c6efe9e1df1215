"""A small Python client of jobledger over NATS: send commands, follow events.

async with JobsClient.connect("nats://127.0.0.1:4222") as jobs:
    outcome = await jobs.send(CreateJob(name="Trest", delay=10, project_id=16, start_now=True))
    async for event in jobs.events(job_id=outcome.job_id):
        print(event.version, event.type, event.data)
"""

import contextlib
from collections.abc import AsyncIterator

from domain.commands import Command
from domain.envelope import EventEnvelope, Outcome
from infra.bus import CommandBus, event_subject, jetstream, make_broker
from infra.event_feed import events, first_sequence_after


class JobsClient:
    def __init__(self, bus: CommandBus) -> None:
        self.bus = bus

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, nats_url: str, command_timeout: float = 10.0
    ) -> AsyncIterator["JobsClient"]:
        broker = make_broker(nats_url)
        await broker.connect()
        try:
            yield cls(CommandBus(broker, timeout=command_timeout))
        finally:
            await broker.stop()

    async def send(self, command: Command) -> Outcome:
        """Publish a command and wait for what the command handler made of it."""
        return await self.bus.send(command)

    async def events(
        self,
        job_id: int | None = None,
        after: int = 0,
        follow: bool = True,
    ) -> AsyncIterator[EventEnvelope]:
        """One job's events after version `after`, or all jobs' after position `after`."""
        js = jetstream(self.bus.broker)
        if job_id is not None:
            async for event in events(js, event_subject(job_id, ">"), 1, follow):
                if event.version > after:
                    yield event
            return
        start = await first_sequence_after(js, after)
        async for event in events(js, "jobs.events.>", start, follow):
            yield event
