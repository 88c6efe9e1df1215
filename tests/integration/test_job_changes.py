"""Create from forms, update with PUT and PATCH, delete: commands like the others."""

import httpx

from api.bootstrap import Stack
from tests.conftest import SEED_JOB, create_job, history, settled


async def test_create_accepts_form_and_multipart_bodies(client: httpx.AsyncClient) -> None:
    form = {
        "name": "From a form",
        "delay": "0",
        "project_id": "16",
        "pipeline_id": "1",
        "source_image_collection_id": "",
        "shuffle": "false",
    }
    urlencoded = await client.post("/api/v2/jobs/", data=form)
    multipart = await client.post("/api/v2/jobs/", files={k: (None, v) for k, v in form.items()})

    for response in (urlencoded, multipart):
        assert response.status_code == 201, response.text
        job = response.json()
        assert (job["name"], job["delay"], job["shuffle"]) == ("From a form", 0, False)
        assert job["pipeline"]["id"] == 1
        assert job["source_image_collection"] is None
        assert job["status"] == "CREATED"


async def test_start_now_is_read_from_the_query_only(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v2/jobs/", json={**SEED_JOB, "start_now": True})
    assert response.json()["status"] == "CREATED"


async def test_read_only_fields_in_a_create_are_ignored(client: httpx.AsyncClient) -> None:
    body = {**SEED_JOB, "status": "SUCCESS", "progress": {"summary": {}}, "id": 999}
    job = await create_job(client, start_now=False, **body)
    assert job["status"] == "CREATED"
    assert job["id"] == 1


async def test_patch_changes_the_given_fields_only(client: httpx.AsyncClient) -> None:
    job = await create_job(client, start_now=False)
    response = await client.patch(
        f"/api/v2/jobs/{job['id']}/", json={"name": "Renamed", "delay": 3}
    )
    assert response.status_code == 200
    changed = response.json()
    assert (changed["name"], changed["delay"], changed["limit"]) == ("Renamed", 3, 100)
    # Stages are not rebuilt: the delay param keeps the delay at creation (as the seed's 30 vs 10).
    assert changed["progress"]["stages"][0]["params"][0]["value"] == 10
    events = await history(client, job["id"])
    assert events[-1]["type"] == "JobUpdated"
    assert events[-1]["data"] == {"changes": {"name": "Renamed", "delay": 3}}


async def test_put_replaces_the_writable_fields(client: httpx.AsyncClient) -> None:
    job = await create_job(client, start_now=False)
    response = await client.put(
        f"/api/v2/jobs/{job['id']}/",
        json={"name": "Replaced", "delay": 10, "project_id": 16, "job_type_key": "data_export"},
    )
    assert response.status_code == 200
    replaced = response.json()
    assert replaced["name"] == "Replaced"
    # Omitted fields take their defaults, as a full PUT does.
    assert (replaced["limit"], replaced["pipeline"], replaced["source_image_collection"]) == (
        100,
        None,
        None,
    )
    assert replaced["job_type"] == {"name": "Data Export", "key": "data_export"}
    assert replaced["dispatch_mode"] == job["dispatch_mode"]


async def test_put_without_required_fields_is_400(client: httpx.AsyncClient) -> None:
    job = await create_job(client, start_now=False)
    response = await client.put(f"/api/v2/jobs/{job['id']}/", json={"name": "Only a name"})
    assert response.status_code == 400
    assert response.json() == {
        "delay": ["This field is required."],
        "project_id": ["This field is required."],
    }


async def test_patch_with_a_bad_value_is_400_and_changes_nothing(client: httpx.AsyncClient) -> None:
    job = await create_job(client, start_now=False)
    response = await client.patch(f"/api/v2/jobs/{job['id']}/", json={"pipeline_id": 404})
    assert response.status_code == 400
    assert response.json() == {"pipeline_id": ['Invalid pk "404" - object does not exist.']}
    assert [e["type"] for e in await history(client, job["id"])] == ["JobCreated"]


async def test_delete_drops_the_view_and_keeps_the_history(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    job = await create_job(client, start_now=False)
    response = await client.delete(f"/api/v2/jobs/{job['id']}/")
    assert response.status_code == 204
    assert response.content == b""

    assert (await client.get(f"/api/v2/jobs/{job['id']}/")).status_code == 404
    assert (await client.get("/api/v2/jobs/")).json()["count"] == 0
    assert [e["type"] for e in await history(client, job["id"])] == ["JobCreated", "JobDeleted"]
    assert (await client.post(f"/api/v2/jobs/{job['id']}/run/")).status_code == 404
    assert (await client.delete(f"/api/v2/jobs/{job['id']}/")).status_code == 404
    await settled(stack)
    with stack.read_store.reading() as db:
        assert db.execute("SELECT count(*) FROM job_logs").fetchone()[0] == 0
