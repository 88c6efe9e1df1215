"""Bad HTTP input gets a clear error that names the problem, and nothing changes."""

import json
from typing import Any

import httpx
import pytest

from api.bootstrap import Stack
from tests.conftest import SEED_JOB, create_job, wait_for


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({**SEED_JOB, "name": ""}, {"name": ["This field may not be blank."]}),
        (
            {k: v for k, v in SEED_JOB.items() if k != "delay"},
            {"delay": ["This field is required."]},
        ),
        (
            {**SEED_JOB, "delay": "ten"},
            {"delay": ["A valid integer is required."]},
        ),
        (
            {**SEED_JOB, "delay": -1},
            {"delay": ["Ensure this value is greater than or equal to 0."]},
        ),
        (
            {**SEED_JOB, "name": "n" * 256},
            {"name": ["Ensure this field has no more than 255 characters."]},
        ),
        ({**SEED_JOB, "shuffle": "perhaps"}, {"shuffle": ["Must be a valid boolean."]}),
        (
            {**SEED_JOB, "pipeline_id": 999},
            {"pipeline_id": ['Invalid pk "999" - object does not exist.']},
        ),
        (
            {**SEED_JOB, "project_id": 7},
            {"project_id": ['Invalid pk "7" - object does not exist.']},
        ),
        (
            {**SEED_JOB, "job_type_key": "bake"},
            {
                "job_type_key": [
                    "\"bake\" is not a valid choice. Allowed: 'ml', 'populate_captures_collection',"
                    " 'data_storage_sync', 'regroup_events', 'data_export', 'post_processing'"
                    " or 'unknown'."
                ]
            },
        ),
    ],
)
async def test_a_bad_create_is_400_naming_the_field_and_creates_nothing(
    client: httpx.AsyncClient, body: dict[str, object], errors: dict[str, list[str]]
) -> None:
    response = await client.post("/api/v2/jobs/", json=body)
    assert response.status_code == 400
    assert response.json() == errors
    assert (await client.get("/api/v2/jobs/")).json()["count"] == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v2/jobs/42/"),
        ("POST", "/api/v2/jobs/42/run/"),
        ("POST", "/api/v2/jobs/42/cancel/"),
        ("POST", "/api/v2/jobs/42/retry/"),
        ("GET", "/api/v2/jobs/42/history/"),
        ("GET", "/api/v2/jobs/99999999999999999999999/"),
        ("POST", "/api/v2/jobs/9223372036854775808/run/"),
        ("PATCH", "/api/v2/jobs/9223372036854775808/"),
        ("DELETE", "/api/v2/jobs/99999999999999999999999/"),
    ],
)
async def test_an_unknown_job_is_404(client: httpx.AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("logs_limit", ["0", "5001", "many"])
async def test_a_bad_logs_limit_is_400(client: httpx.AsyncClient, logs_limit: str) -> None:
    job = (await client.post("/api/v2/jobs/", json=SEED_JOB)).json()
    response = await client.get(f"/api/v2/jobs/{job['id']}/", params={"logs_limit": logs_limit})
    assert response.status_code == 400
    assert list(response.json()) == ["logs_limit"]


async def test_a_body_that_is_not_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v2/jobs/", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert list(response.json()) == ["detail"]
    assert response.json()["detail"].startswith("JSON parse error - ")


async def test_a_body_that_is_a_list_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v2/jobs/", json=[SEED_JOB])
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Invalid data. Expected a dictionary."]}


async def test_a_body_nested_too_deeply_is_400(client: httpx.AsyncClient) -> None:
    body = b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = await client.post(
        "/api/v2/jobs/", content=body, headers={"content-type": "application/json"}
    )
    assert (response.status_code, response.json()) == (
        400,
        {"detail": "JSON parse error - nested too deeply"},
    )
    assert (await client.get("/api/v2/jobs/")).json()["count"] == 0


async def test_a_blank_reference_in_json_is_null_as_drf_reads_it(client: httpx.AsyncClient) -> None:
    blank = {**SEED_JOB, "pipeline_id": "", "source_image_collection_id": ""}
    created = await client.post("/api/v2/jobs/", json=blank)
    assert (created.status_code, created.json()["pipeline"]) == (201, None)
    no_project = await client.post("/api/v2/jobs/", json={**SEED_JOB, "project_id": ""})
    assert (no_project.status_code, no_project.json()) == (
        400,
        {"project_id": ["This field may not be null."]},
    )


async def test_a_body_of_another_media_type_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v2/jobs/", content=b"<job/>", headers={"content-type": "application/xml"}
    )
    assert (response.status_code, response.json()) == (
        415,
        {"detail": 'Unsupported media type "application/xml" in request.'},
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v2/jobs/abc/"),
        ("GET", "/api/v2/jobs/1.0/"),
        ("GET", "/api/v2/jobs/-1/"),
        ("GET", f"/api/v2/jobs/{2**63}/"),
        ("DELETE", "/api/v2/jobs/abc/"),
        ("POST", "/api/v2/jobs/x/run/"),
        ("POST", "/api/v2/jobs/1.0/run/"),
    ],
)
async def test_a_job_id_that_is_not_a_number_is_404(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    await create_job(client, start_now=False)  # job 1: "1.0" is not its id
    response = await client.request(method, path)
    assert (response.status_code, response.json()) == (404, {"detail": "Not found."})


async def test_an_unknown_event_type_on_the_stream_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v2/events/", params={"type": "Bogus", "follow": 0})
    assert response.status_code == 400
    assert response.json()["type"][0].startswith("Bogus is not an event type; one of: ")


async def test_a_pipeline_set_after_creation_is_not_run_and_the_failure_says_so(
    client: httpx.AsyncClient,
) -> None:
    job = await create_job(client, start_now=False, delay=0, pipeline_id=None)
    assert job["dispatch_mode"] == "internal"
    await client.patch(f"/api/v2/jobs/{job['id']}/", json={"pipeline_id": 1})
    await client.post(f"/api/v2/jobs/{job['id']}/run/")
    ended = await wait_for(client, job["id"])
    assert (ended["status"], ended["logs"]["stderr"]) == (
        "FAILURE",
        [
            f'Job #{job["id"]} "Trest" failed: The pipeline was set after the job was created:'
            " create a new job to run it"
        ],
    )


@pytest.mark.parametrize("body", [{"json": {"pipeline_id": None}}, {"data": {"pipeline_id": ""}}])
async def test_a_pipeline_job_whose_pipeline_was_taken_away_fails_saying_so(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    job = await create_job(client, start_now=False, delay=0)
    assert job["dispatch_mode"] == "async_api"
    changed = await client.patch(f"/api/v2/jobs/{job['id']}/", **body)
    assert changed.json()["pipeline"] is None
    await client.post(f"/api/v2/jobs/{job['id']}/run/")
    ended = await wait_for(client, job["id"])
    assert (ended["status"], ended["logs"]["stderr"]) == (
        "FAILURE",
        [f'Job #{job["id"]} "Trest" failed: No pipeline specified to process images in ML job'],
    )
    assert [s["status"] for s in ended["progress"]["stages"]] == ["CREATED"] * 3


async def test_the_openapi_document_gives_the_error_answers_and_no_422(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    create = document["paths"]["/api/v2/jobs/"]["post"]["responses"]
    listing = document["paths"]["/api/v2/jobs/"]["get"]["responses"]
    assert sorted(create) == ["201", "400", "401", "403", "404", "415", "503"]
    assert sorted(listing) == ["200", "400", "401", "403", "404"]
    shapes = create["400"]["content"]["application/json"]["schema"]["anyOf"]
    assert [shape["type"] for shape in shapes] == ["object", "object", "array"]
    assert '"422"' not in json.dumps(document)


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PATCH", "/api/v2/projects/16/", b'{"description": "sur\\udfff"}', "description"),
        ("POST", "/api/v2/jobs/", b'{"name": "\\ud800", "delay": 1, "project_id": 16}', "name"),
        (
            "POST",
            "/api/v2/exports/",
            b'{"user": 1, "project": 16, "format": "csv", "filters": {"a": ["\\ud800"]}}',
            "filters",
        ),
        ("POST", "/api/v2/catalog/", b'{"projects": [{"id": 30, "name": "\\udfff"}]}', "projects"),
    ],
)
async def test_a_lone_surrogate_is_a_400_naming_the_field_and_changes_nothing(
    stack: Stack, client: httpx.AsyncClient, method: str, path: str, body: bytes, field: str
) -> None:
    stored = stack.event_store.recorder.max_notification_id()
    response = await client.request(
        method, path, content=body, headers={"content-type": "application/json"}
    )
    assert (response.status_code, response.json()) == (
        400,
        {field: ["A lone surrogate (\\ud800 to \\udfff) is not text."]},
    )
    assert stack.event_store.recorder.max_notification_id() == stored
