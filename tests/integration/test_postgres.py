"""The main job with the event store on PostgreSQL (the server of JOBLEDGER_TEST_POSTGRES_URL)."""

import os
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest

from api.app import in_process_client
from api.bootstrap import running_stack
from api.catalog_io import SEED_CATALOG
from infra.read_store import ReadStore
from infra.settings import Settings
from projections.compare import differences
from projections.replay import replay
from tests.conftest import admin_token, create_job, settled, wait_for

POSTGRES_URL = os.environ.get(
    "JOBLEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A schema of its own for one test, dropped afterwards."""
    schema = f"jobledger_test_{uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
    yield schema
    with psycopg.connect(POSTGRES_URL, autocommit=True) as db:
        db.execute(f"DROP SCHEMA {schema} CASCADE")


async def test_the_main_job_runs_on_a_postgresql_event_store(
    settings: Settings, postgres_schema: str, tmp_path: Path
) -> None:
    on_postgres = settings.model_copy(
        update={"event_store": f"{POSTGRES_URL}?schema={postgres_schema}"}
    )
    async with (
        running_stack(on_postgres) as stack,
        in_process_client(stack, admin_token(stack)) as client,
    ):
        await stack.save_catalog(SEED_CATALOG)
        created = await create_job(client, delay=4)
        job = await wait_for(client, created["id"])
        assert job["status"] == "SUCCESS"
        assert job["progress"]["summary"] == {"status": "SUCCESS", "progress": 1.0}
        await settled(stack)
        positions = [event.position for event in stack.event_store.job_history(created["id"])]
        assert None not in positions and positions == sorted(positions)
        rebuilt = ReadStore(tmp_path / "replayed.sqlite3")
        replay(stack.event_store, rebuilt)
        assert differences(stack.read_store, rebuilt) == []

    with psycopg.connect(POSTGRES_URL) as db:
        stored = db.execute(f"SELECT count(*) FROM {postgres_schema}.jobledger_events").fetchone()
    assert stored is not None and stored[0] > 10
