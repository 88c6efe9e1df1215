"""The main job with the event store on PostgreSQL (the server of JOBLEDGER_TEST_POSTGRES_URL)."""

import sys
from pathlib import Path

import psycopg
import pytest

from api import cli
from api.app import in_process_client
from api.bootstrap import running_stack
from api.catalog_io import SEED_CATALOG
from infra.embedded_nats import free_port
from infra.read_store import ReadStore
from infra.settings import Settings
from projections.compare import differences
from projections.replay import replay
from tests.conftest import POSTGRES_URL, admin_token, create_job, settled, wait_for

pytestmark = pytest.mark.postgres


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


def test_an_event_store_that_cannot_be_reached_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setenv("JOBLEDGER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("JOBLEDGER_EVENT_STORE", f"postgresql://postgres@127.0.0.1:{port}/test")
    monkeypatch.setattr(sys, "argv", ["jobledger", "verify"])
    with pytest.raises(SystemExit) as exit:
        cli.main()
    assert (exit.value.code, capsys.readouterr().err) == (
        1,
        "Cannot use the event store of JOBLEDGER_EVENT_STORE: connection failed: connection"
        f' to server at "127.0.0.1", port {port} failed: Connection refused\n',
    )
