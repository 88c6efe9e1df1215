"""Live subscriptions over HTTP (Server-Sent Events) that resume where a client stopped."""

import json
from typing import Any

import httpx

from api.app import build_app
from api.bootstrap import Stack
from tests.conftest import admin_token, create_job, history, served, settled, wait_for


def parse(text: str) -> list[dict[str, Any]]:
    """The SSE messages of a body: id, event and the envelope."""
    messages = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        messages.append(
            {"id": int(fields["id"]), "event": fields["event"], "data": json.loads(fields["data"])}
        )
    return messages


async def test_a_job_stream_replays_its_events_in_order(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    job = await create_job(client, delay=4)
    await wait_for(client, job["id"])
    await settled(stack)
    response = await client.get(f"/api/v2/jobs/{job['id']}/events/", params={"follow": "false"})
    assert response.headers["content-type"].startswith("text/event-stream")
    messages = parse(response.text)
    stored = await history(client, job["id"])
    assert [m["id"] for m in messages] == [e["version"] for e in stored]
    assert [m["event"] for m in messages] == [e["type"] for e in stored]


async def test_a_client_resumes_after_its_last_event_id(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    job = await create_job(client, delay=4)
    await wait_for(client, job["id"])
    await settled(stack)
    path = f"/api/v2/jobs/{job['id']}/events/"
    first = parse((await client.get(path, params={"follow": "false"})).text)
    resumed = parse(
        (await client.get(path, params={"follow": "false"}, headers={"Last-Event-ID": "5"})).text
    )
    assert [m["id"] for m in resumed] == [m["id"] for m in first if m["id"] > 5]


async def test_the_all_jobs_stream_filters_and_resumes_by_position(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    one = await create_job(client, start_now=False)
    two = await create_job(client, start_now=False, name="Second")
    await client.post(f"/api/v2/jobs/{two['id']}/cancel/")
    await settled(stack)

    everything = parse((await client.get("/api/v2/events/", params={"follow": "0"})).text)
    assert {m["data"]["job_id"] for m in everything} == {one["id"], two["id"]}
    positions = [m["id"] for m in everything]
    assert positions == sorted(positions)

    after = parse(
        (
            await client.get(
                "/api/v2/events/", params={"follow": "0", "from_position": positions[0]}
            )
        ).text
    )
    assert [m["id"] for m in after] == positions[1:]

    revoked = parse(
        (await client.get("/api/v2/events/", params={"follow": "0", "status": "REVOKED"})).text
    )
    assert [(m["data"]["job_id"], m["event"]) for m in revoked] == [(two["id"], "StatusChanged")]


async def test_a_live_stream_dropped_and_resumed_misses_nothing_and_repeats_nothing(
    stack: Stack,
) -> None:
    headers = {"Authorization": f"Token {admin_token(stack)}"}
    async with (
        served(build_app(stack)) as url,
        httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as http,
    ):
        job = await create_job(http, delay=20)
        path = f"/api/v2/jobs/{job['id']}/events/"
        seen: list[int] = []
        async with http.stream("GET", path) as live:
            async for line in live.aiter_lines():
                if line.startswith("id: "):
                    seen.append(int(line[4:]))
                if len(seen) == 6:
                    break  # the connection drops here
        async with http.stream("GET", path, headers={"Last-Event-ID": str(seen[-1])}) as again:
            async for line in again.aiter_lines():
                if line.startswith("id: "):
                    seen.append(int(line[4:]))
                if line.startswith("data: ") and '"Finished job' in line:
                    break
        stored = await history(http, job["id"])
    assert seen == [event["version"] for event in stored]
