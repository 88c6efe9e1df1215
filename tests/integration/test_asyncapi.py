"""The AsyncAPI document describes every command and event subject, and docs/ keeps it."""

from pathlib import Path

import httpx
import yaml

from api.app import VERSION
from domain.commands import COMMANDS
from infra.asyncapi import bus_document

DOCS = Path(__file__).parent.parent.parent / "docs" / "asyncapi.yaml"


def test_docs_hold_the_document_the_code_generates() -> None:
    """Regenerate with `jobledger asyncapi > docs/asyncapi.yaml` after changing the bus."""
    assert yaml.safe_load(DOCS.read_text()) == yaml.safe_load(bus_document(VERSION).to_yaml())


async def test_the_document_is_served_with_every_subject(client: httpx.AsyncClient) -> None:
    document = (await client.get("/asyncapi.json")).json()
    channels = {channel["address"] for channel in document["channels"].values()}
    assert channels == {f"jobs.commands.{name}" for name in COMMANDS} | {
        "jobs.outcomes.{command_id}",
        "jobs.events.{job_id}.{event}",
        "catalog.events.{kind}.{object_id}.{event}",
        "jobs.tasks.{job_id}",
    }
    page = await client.get("/asyncapi")
    assert page.status_code == 200
    assert "jobledger bus" in page.text
