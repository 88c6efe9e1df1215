"""A job's history: every event, filtered by type, attempt, version and time, in pages."""

from datetime import datetime

import httpx

from tests.conftest import create_job, wait_for


async def test_history_filters_and_pages(client: httpx.AsyncClient) -> None:
    job = await create_job(client, delay=2)
    await wait_for(client, job["id"])
    await client.post(f"/api/v2/jobs/{job['id']}/retry/")
    await wait_for(client, job["id"])
    path = f"/api/v2/jobs/{job['id']}/history/"
    everything = (await client.get(path)).json()
    events = everything["results"]
    assert everything["count"] == len(events)
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))
    positions = [e["position"] for e in events]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    retried_at = next(i for i, e in enumerate(events) if e["type"] == "JobRetried")
    assert {e["attempt"] for e in events[:retried_at]} == {1}
    assert {e["attempt"] for e in events[retried_at:]} == {2}

    statuses = (await client.get(path, params={"type": "StatusChanged", "attempt": 2})).json()
    assert [(e["data"]["attempt"], e["data"]["status"]) for e in statuses["results"]] == [
        (2, "PENDING"),
        (2, "STARTED"),
        (2, "SUCCESS"),
    ]

    middle = (await client.get(path, params={"from_version": 3, "to_version": 5})).json()
    assert [e["version"] for e in middle["results"]] == [3, 4, 5]

    moment = events[5]["occurred_at"]
    since = (await client.get(path, params={"since": moment})).json()["results"]
    assert all(
        datetime.fromisoformat(e["occurred_at"]) >= datetime.fromisoformat(moment) for e in since
    )
    assert since[0]["version"] <= 6

    page = (await client.get(path, params={"limit": 4, "offset": 4})).json()
    assert [e["version"] for e in page["results"]] == [5, 6, 7, 8]
    assert page["next"].endswith("limit=4&offset=8")
    assert page["previous"].endswith("history/?limit=4")  # the first page, as DRF links it


async def test_a_bad_history_filter_is_400(client: httpx.AsyncClient) -> None:
    job = await create_job(client, start_now=False)
    path = f"/api/v2/jobs/{job['id']}/history/"
    bad_time = await client.get(path, params={"since": "yesterday"})
    assert (bad_time.status_code, list(bad_time.json())) == (400, ["since"])
    bad_attempt = await client.get(path, params={"attempt": "first"})
    assert (bad_attempt.status_code, list(bad_attempt.json())) == (400, ["attempt"])


async def test_an_unknown_event_type_is_400(client: httpx.AsyncClient) -> None:
    job = await create_job(client, start_now=False)
    response = await client.get(f"/api/v2/jobs/{job['id']}/history/", params={"type": "Bogus"})
    assert response.status_code == 400
    assert response.json()["type"][0].startswith("Bogus is not an event type; one of: ")
