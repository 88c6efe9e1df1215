"""The exact request sequences of Antenna's UI and of its async worker (CONTRACT.md sections
11, 12 and 14), each driven from start to end against the running stack."""

import time
from typing import Any

import httpx

from api.app import in_process_client
from api.bootstrap import Stack
from domain.permissions import ProjectRole
from tests.conftest import success, wait_for

IMAGES = [501, 502, 503]
CATALOG: dict[str, list[dict[str, Any]]] = {
    "deployments": [{"id": 50, "name": "Aarhus trap", "project_id": 16}],
    "collections": [{"id": 51, "name": "Three nights", "images": IMAGES, "project_id": 16}],
    "captures": [{"id": i, "url": f"https://example.org/{i}.jpg"} for i in IMAGES],
    "services": [{"id": 52, "name": "Workers", "pipelines": [1], "projects": [16]}],
}


def buttons(job: dict[str, Any]) -> set[str]:
    """The actions the UI offers for a job (section 14)."""
    may_run, status = "run" in job["user_permissions"], job["status"]
    offered = set()
    if may_run and status == "CREATED":
        offered.add("queue")
    if may_run and status in ("STARTED", "PENDING"):
        offered.add("cancel")
    if may_run and status not in ("CREATED", "STARTED", "PENDING", "CANCELING", "RETRY"):
        offered.add("retry")
    if "delete" in job["user_permissions"]:
        offered.add("delete")
    return offered


async def test_the_uis_session_lists_creates_cancels_retries_and_deletes_a_job(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    await stack.save_catalog(CATALOG)
    listing = {"project_id": "16", "ordering": "-created_at", "limit": "10", "offset": "0"}
    page = (await client.get("/api/v2/jobs/", params=listing)).json()
    assert (page["count"], page["user_permissions"]) == (0, ["create"])  # "New job" shown

    body = {
        "name": "Night of the 3rd",
        "delay": 500,
        "project_id": "16",
        "pipeline_id": "1",
        "source_image_collection_id": "51",
        "deployment_id": "50",
    }
    created = await client.post("/api/v2/jobs/?start_now", json=body)
    assert created.status_code == 201
    job_id = created.json()["id"]
    job = await wait_for(client, job_id, {"STARTED"})
    assert buttons(job) == {"cancel", "delete"}
    assert job["job_type"]["key"] == "ml" and job["progress"]["stages"][0]["key"] == "delay"
    trap = (await client.get(job["deployment"]["details"])).json()
    assert [(j["id"], j["status"]) for j in trap["jobs"]] == [(job_id, "STARTED")]

    cancelled = await client.post(f"/api/v2/jobs/{job_id}/cancel/")
    assert cancelled.json()["status"] in ("CANCELING", "REVOKED")
    job = await wait_for(client, job_id)
    assert (job["status"], buttons(job)) == ("REVOKED", {"retry", "delete"})

    retried = await client.post(f"/api/v2/jobs/{job_id}/retry/")
    assert retried.json()["status"] in ("PENDING", "STARTED")
    assert retried.json()["progress"]["summary"]["progress"] == 0.0
    await client.post(f"/api/v2/jobs/{job_id}/cancel/")
    await wait_for(client, job_id)

    page = (await client.get("/api/v2/jobs/", params=listing)).json()
    assert [(j["id"], j["status"]) for j in page["results"]] == [(job_id, "REVOKED")]
    assert (await client.delete(f"/api/v2/jobs/{job_id}/")).status_code == 204
    assert (await client.get(f"/api/v2/jobs/{job_id}/")).status_code == 404
    assert (await client.get("/api/v2/jobs/", params=listing)).json()["count"] == 0


async def test_the_workers_loop_polls_fetches_posts_results_until_the_job_is_drained(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    await stack.save_catalog(CATALOG)
    stack.users.add("worker@example.org")
    stack.users.grant("worker@example.org", 16, ProjectRole.WORKER)
    token = stack.users.new_token("worker@example.org")
    body = {
        "name": "Async",
        "delay": 0,
        "limit": None,
        "project_id": 16,
        "pipeline_id": 1,
        "source_image_collection_id": 51,
    }
    created = await client.post("/api/v2/jobs/?start_now", json=body)
    job_id = created.json()["id"]
    await wait_for(client, job_id, {"STARTED"})

    poll = "/api/v2/jobs?pipeline__slug__in=panama_moths_2023&ids_only=1&incomplete_only=1"
    poll += "&dispatch_mode=async_api"
    async with in_process_client(stack, token) as worker:
        redirected = await worker.get(poll)
        assert redirected.status_code == 301
        found = (await worker.get(redirected.headers["location"])).json()
        assert (found["count"], found["results"]) == (
            1,
            [{"id": job_id, "pipeline_slug": "panama_moths_2023", "user_permissions": []}],
        )
        processed = 0
        while True:
            fetched = await worker.post(f"/api/v2/jobs/{job_id}/tasks/", json={"batch_size": 2})
            tasks = fetched.json()["tasks"]
            if not tasks:
                break  # drained: back to polling
            posted = await worker.post(
                f"/api/v2/jobs/{job_id}/result/",
                json={"results": [success(task) for task in tasks]},
            )
            assert posted.json()["results_queued"] == len(tasks)
            processed += len(tasks)
        assert processed == len(IMAGES)
        again = (await worker.get(redirected.headers["location"])).json()
        assert (again["count"], again["results"]) == (0, [])
    job = await wait_for(client, job_id)
    assert job["status"] == "SUCCESS"
    results = next(s for s in job["progress"]["stages"] if s["key"] == "results")
    assert {p["key"]: p["value"] for p in results["params"]} == {
        "captures": 3,
        "detections": 6,
        "classifications": 6,
    }
    # The worker's calls were heartbeats (sent after each response).
    deadline = time.monotonic() + 5
    while (await client.get("/api/v2/ml/processing_services/52/")).json()["last_seen"] is None:
        assert time.monotonic() < deadline, "no heartbeat recorded"
