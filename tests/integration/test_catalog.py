"""The catalog: imported from JSON or YAML, nested in jobs, readable at the `details` URLs."""

from pathlib import Path

import httpx
import pytest

from api.bootstrap import Stack
from tests.conftest import create_job

CATALOG_YAML = """
projects:
  - {id: 3, name: Vermont Atlas}
deployments:
  - {id: 8, name: Trap 8}
collections:
  - {id: 9, name: Every night, method: full}
captures:
  - id: 11
    url: "https://example.org/11.jpg"
    width: 4096
    height: 2160
    timestamp: null
    event_id: 2
pipelines:
  - {id: 4, name: Quebec moths, slug: quebec_moths, version: 2, version_name: v2, description: ""}
"""


async def test_imported_objects_are_nested_in_jobs_and_served_at_their_details(
    stack: Stack, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    source = tmp_path / "catalog.yaml"
    source.write_text(CATALOG_YAML)
    assert stack.catalog.import_file(source) == {
        "projects": 1,
        "deployments": 1,
        "collections": 1,
        "captures": 1,
        "pipelines": 1,
    }
    job = await create_job(
        client,
        start_now=False,
        project_id=3,
        deployment_id=8,
        source_image_collection_id=9,
        source_image_single_id=11,
        pipeline_id=4,
    )
    assert job["source_image_single"] == {
        "id": 11,
        "details": "http://localhost:8000/api/v2/captures/11/",
        "url": "https://example.org/11.jpg",
        "width": 4096,
        "height": 2160,
        "timestamp": None,
        "event_id": 2,
        "user_permissions": [],
    }
    for field in (
        "project",
        "deployment",
        "source_image_collection",
        "source_image_single",
        "pipeline",
    ):
        served = await client.get(job[field]["details"])
        assert served.status_code == 200, field
        assert served.json() == job[field]


async def test_an_unknown_catalog_object_is_404(client: httpx.AsyncClient) -> None:
    for path in (
        "projects/99/",
        "deployments/99/",
        "captures/collections/99/",
        "captures/99/",
        "ml/pipelines/99/",
    ):
        response = await client.get(f"/api/v2/{path}")
        assert (response.status_code, response.json()) == (404, {"detail": "Not found."})


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- just a list", "expected a mapping of kinds to lists of objects"),
        ("planets: [{id: 1}]", "unknown catalog kind 'planets'"),
        ("projects: [{name: no id}]", "every projects entry needs an integer id"),
    ],
)
def test_a_bad_catalog_file_is_refused_and_changes_nothing(
    stack: Stack, tmp_path: Path, text: str, problem: str
) -> None:
    source = tmp_path / "bad.yaml"
    source.write_text(text)
    before = stack.catalog.path.read_text()
    with pytest.raises(ValueError, match=problem):
        stack.catalog.import_file(source)
    assert stack.catalog.path.read_text() == before
