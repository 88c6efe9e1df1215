"""The event store: the eventsourcing library's Application, on SQLite or PostgreSQL."""

from collections.abc import Iterator
from typing import Any, ClassVar, NamedTuple
from urllib.parse import parse_qs, unquote, urlparse

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.sql import SQL, Identifier

from domain.catalog import CatalogNumbers, CatalogObject
from domain.envelope import Envelope, EventEnvelope, catalog_envelope_of, envelope_of
from domain.job import Job, JobNumbers, job_uuid
from infra.settings import Settings

JOB_EVENT_TOPIC_PREFIX = f"{Job.__module__}:{Job.__qualname__}."
CATALOG_EVENT_TOPIC_PREFIX = f"{CatalogObject.__module__}:{CatalogObject.__qualname__}."


# The largest event the bus is sure to carry: NATS takes 1 MiB a message by default, and an
# event's envelope and headers are a few hundred bytes more than its stored state.
MAX_EVENT_BYTES = 1024 * 1024 - 64 * 1024


class EventTooLarge(ValueError):
    """An event the relay could not publish: the command that made it must be refused."""


class PublishableEvents(Mapper[Any]):
    """Stores events as the library does, but none too large to publish (snapshots, which
    are never published, may be of any size)."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        stored = super().to_stored_event(domain_event)
        if len(stored.state) > MAX_EVENT_BYTES and not isinstance(domain_event, Snapshot):
            raise EventTooLarge(
                f"The change is too large to publish: its {type(domain_event).__name__} event"
                f" would be {len(stored.state):,} bytes, more than {MAX_EVENT_BYTES:,}"
            )
        return stored


class LogSection(NamedTuple):
    """Events read from the notification log: `last` is the last position read, and `more`
    says the read stopped at its limit, so that more may follow."""

    envelopes: list[Envelope]
    last: int
    more: bool


class EventStore(Application[Any]):
    """The only source of truth. Snapshots keep loading a long job cheap."""

    name = "jobledger"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {
        Job: 200,
        JobNumbers: 200,
        CatalogObject: 200,  # a processing service records each heartbeat
        CatalogNumbers: 200,
    }
    log_section_size = 1000

    def construct_mapper(self) -> Mapper[Any]:
        return self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=PublishableEvents
        )

    def envelopes(self, after: int, limit: int) -> LogSection:
        """Job and catalog events after position `after` (at most `limit` notifications read),
        in order. Id sequences and receipts are internal: skipped."""
        notifications = self.notification_log.select(after + 1, limit)
        envelopes: list[Envelope] = []
        for n in notifications:
            if n.topic.startswith(JOB_EVENT_TOPIC_PREFIX):
                envelopes.append(envelope_of(self.mapper.to_domain_event(n), n.id))
            elif n.topic.startswith(CATALOG_EVENT_TOPIC_PREFIX):
                envelopes.append(catalog_envelope_of(self.mapper.to_domain_event(n), n.id))
        last = notifications[-1].id if notifications else after
        return LogSection(envelopes, last, more=len(notifications) == limit)

    def all_envelopes(self) -> Iterator[Envelope]:
        """Every job and catalog event from the first, in order."""
        position = 0
        while True:
            section = self.envelopes(position, self.log_section_size)
            yield from section.envelopes
            if not section.more:
                return
            position = section.last

    def job_history(self, job_id: int) -> list[EventEnvelope]:
        """One job's events, in order, each with its position in the global order."""
        positions = self.positions(job_id)
        return [
            envelope_of(event, positions.get(event.originator_version))
            for event in self.events.get(job_uuid(job_id))
        ]

    def positions(self, job_id: int) -> dict[int, int]:
        """Version → notification id of a job's events (the library has no call for it)."""
        recorder = self.recorder
        originator = job_uuid(job_id)
        if isinstance(recorder, SQLiteApplicationRecorder):
            query = (
                f"SELECT rowid AS position, originator_version AS version"
                f" FROM {recorder.events_table_name} WHERE originator_id = ?"
            )
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(query, (originator.hex,))
                return {row["version"]: row["position"] for row in cursor.fetchall()}
        if isinstance(recorder, PostgresApplicationRecorder):
            statement = SQL(
                "SELECT notification_id AS position, originator_version AS version"
                " FROM {schema}.{table} WHERE originator_id = %s"
            ).format(
                schema=Identifier(recorder.datastore.schema),
                table=Identifier(recorder.events_table_name),
            )
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(statement, (originator,))
                return {row["version"]: row["position"] for row in cursor.fetchall()}
        return {}


def event_store_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing library's environment for the configured store."""
    if settings.event_store and settings.event_store.startswith(("postgresql://", "postgres://")):
        url = urlparse(settings.event_store)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or "postgres"),
            # The recorder insists on a password even where the server trusts local connections.
            "POSTGRES_PASSWORD": unquote(url.password or "unused"),
            "POSTGRES_ENABLE_DB_FUNCTIONS": "y",
            "POSTGRES_SCHEMA": parse_qs(url.query).get("schema", ["public"])[0],
        }
    if settings.event_store:
        raise ValueError(
            "JOBLEDGER_EVENT_STORE must be a postgresql:// URL or unset,"
            f" not {settings.event_store!r}"
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(settings.event_store_path),
    }


def ensure_postgres_schema(env: dict[str, str]) -> None:
    """Create the configured schema if it is missing: the recorder creates only its tables."""
    schema = env["POSTGRES_SCHEMA"]
    with psycopg.connect(
        host=env["POSTGRES_HOST"],
        port=env["POSTGRES_PORT"],
        dbname=env["POSTGRES_DBNAME"],
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"],
        autocommit=True,
    ) as db:
        found = db.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        if found is None:
            db.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(schema)))


def open_event_store(settings: Settings) -> EventStore:
    env = event_store_env(settings)
    if env["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
        ensure_postgres_schema(env)
    return EventStore(env=env)
