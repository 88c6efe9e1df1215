"""The bus: NATS JetStream streams, subjects, and sending a command to await its outcome."""

import logging
from typing import Any

from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from domain.commands import Command
from domain.envelope import CatalogEnvelope, Envelope, EventEnvelope, Outcome

COMMANDS_STREAM = "JOBS_COMMANDS"
EVENTS_STREAM = "JOBS_EVENTS"
TASKS_STREAM = "JOBS_TASKS"
POSITION_HEADER = "Jobledger-Position"
MSG_ID_HEADER = "Nats-Msg-Id"
# On an event that more events of the same command's change to the same job or object follow.
CONTINUES_HEADER = "Jobledger-Command-Continues"

STREAMS = (
    StreamConfig(
        name=COMMANDS_STREAM,
        subjects=["jobs.commands.>"],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        duplicate_window=120.0,
    ),
    StreamConfig(
        name=TASKS_STREAM,
        subjects=["jobs.tasks.>"],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        max_age=24 * 3600.0,
    ),
    StreamConfig(
        name=EVENTS_STREAM,
        subjects=["jobs.events.>", "catalog.events.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        duplicate_window=120.0,
    ),
)


def command_subject(command_name: str) -> str:
    return f"jobs.commands.{command_name}"


def event_subject(job_id: int | str, event_type: str) -> str:
    return f"jobs.events.{job_id}.{event_type}"


def catalog_subject(kind: str, object_id: int | str, event_type: str) -> str:
    return f"catalog.events.{kind}.{object_id}.{event_type}"


def subject_of(envelope: Envelope) -> str:
    if isinstance(envelope, EventEnvelope):
        return event_subject(envelope.job_id, envelope.type)
    return catalog_subject(envelope.kind, envelope.object_id, envelope.type)


# Every event of the stream, job's and catalog's: what the projection follows.
ALL_EVENTS = ">"


def parse_envelope(subject: str, data: bytes) -> Envelope:
    if subject.startswith("catalog."):
        return CatalogEnvelope.model_validate_json(data)
    return EventEnvelope.model_validate_json(data)


def task_subject(job_id: int) -> str:
    return f"jobs.tasks.{job_id}"


def task_consumer(job_id: int, attempt: int) -> str:
    """One consumer per attempt: a worker's reply subject names it, so late results are known."""
    return f"job-{job_id}-a{attempt}"


def outcome_subject(command_id: str) -> str:
    return f"jobs.outcomes.{command_id}"


def make_broker(url: str) -> NatsBroker:
    # faststream logs every batch at INFO; that belongs at DEBUG here.
    return NatsBroker(url, log_level=logging.DEBUG, connect_timeout=5)


def jetstream(broker: NatsBroker) -> JetStreamContext:
    js: JetStreamContext = broker.config.connection_state.stream
    return js


def connection(broker: NatsBroker) -> Client:
    nc: Client = broker.config.connection_state.connection
    return nc


async def ensure_streams(js: JetStreamContext) -> None:
    """Create each stream, or bring an existing one to the configuration above."""
    for config in STREAMS:
        try:
            await js.stream_info(str(config.name))
        except NotFoundError:
            await js.add_stream(config)
        else:
            await js.update_stream(config)


class CommandBus:
    """Publishes commands to JOBS_COMMANDS and awaits what the command handler made of them."""

    def __init__(self, broker: NatsBroker, timeout: float = 10.0) -> None:
        self.broker = broker
        self.timeout = timeout

    async def send(self, command: Command) -> Outcome:
        """Publish, then wait for the outcome; a duplicate of a recent command has one effect."""
        nc = connection(self.broker)
        outcome_sub = await nc.subscribe(outcome_subject(command.command_id), max_msgs=1)
        try:
            ack = await self.publish(command)
            if ack.duplicate:
                return Outcome(
                    command_id=command.command_id,
                    command=type(command).__name__,
                    accepted=True,
                    duplicate=True,
                    reason="a command with this id was already received; it takes effect once",
                )
            msg = await outcome_sub.next_msg(timeout=self.timeout)
        finally:
            await outcome_sub.unsubscribe()
        return Outcome.model_validate_json(msg.data)

    async def publish(self, command: Command) -> Any:
        """Publish without waiting for the outcome; returns the stream's acknowledgement."""
        return await self.broker.publish(
            command.model_dump_json().encode(),
            command_subject(type(command).__name__),
            headers={MSG_ID_HEADER: command.command_id},
            stream=COMMANDS_STREAM,
            timeout=self.timeout,
        )
