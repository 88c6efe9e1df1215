"""The event store: the eventsourcing library's Application, on SQLite or PostgreSQL."""

from typing import Any, ClassVar
from urllib.parse import unquote, urlparse

from eventsourcing.application import Application

from domain.job import Job, JobNumbers
from infra.settings import Settings


class EventStore(Application[Any]):
    """The only source of truth. Snapshots keep loading a long job cheap."""

    name = "jobledger"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {Job: 200, JobNumbers: 200}
    log_section_size = 1000


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
            "POSTGRES_SCHEMA": "public",
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


def open_event_store(settings: Settings) -> EventStore:
    return EventStore(env=event_store_env(settings))
