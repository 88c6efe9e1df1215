"""Compatibility with Antenna's clients: contract rules that the other test files leave open.

Each test pins one rule of CONTRACT.md (its section in the docstring), with the
exact status codes and bodies an Antenna client (the UI, the ami-data-companion worker) sees.
Section 16 says where jobledger deliberately differs from Antenna.
"""

import contextlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import nats.errors
import pytest
from nats.js import JetStreamContext

from api.app import in_process_client
from api.bootstrap import Stack
from domain.commands import Command, RecordResult
from domain.envelope import Outcome
from domain.permissions import ProjectRole
from infra.bus import TASKS_STREAM
from infra.task_queue import TaskQueue
from tests.conftest import (
    ADMIN,
    SEED_JOB,
    create_job,
    error,
    history,
    settled,
    stage_params,
    started_async_job,
    success,
    take_tasks,
    wait_for,
)

NOT_ALLOWED = {"detail": "You do not have permission to perform this action."}
NO_CREDENTIALS = {"detail": "Authentication credentials were not provided."}
NOT_FOUND = {"detail": "Not found."}
QUEUE_DOWN = "Task queue temporarily unavailable"
BASE_URL = "http://127.0.0.1:8000"
LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] (INFO|WARNING|ERROR|CRITICAL) (.*)$")

FOUR_NIGHTS = 30  # a collection of four captures, for async jobs that wait for workers
IMAGES = [301, 302, 303, 304]
TRAP = 31  # a deployment of project 16
CATALOG: dict[str, list[dict[str, Any]]] = {
    "collections": [{"id": FOUR_NIGHTS, "name": "Four nights", "method": "full", "images": IMAGES}],
    "captures": [{"id": i, "url": f"https://example.org/{i}.jpg"} for i in IMAGES],
    "deployments": [{"id": TRAP, "name": "Aarhus trap", "project_id": 16}],
}
# An async_api job (a pipeline, no delay) of the four captures, none cut off by a limit.
ASYNC_JOB = {"delay": 0, "source_image_collection_id": FOUR_NIGHTS, "limit": None}


@pytest.fixture
async def catalog(stack: Stack) -> Stack:
    await stack.save_catalog(CATALOG)
    return stack


@pytest.fixture
async def idle_catalog(idle: tuple[Stack, httpx.AsyncClient]) -> tuple[Stack, httpx.AsyncClient]:
    await idle[0].save_catalog(CATALOG)
    return idle


def as_role(
    stack: Stack, role: ProjectRole
) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
    """A client of a user who holds `role` on project 16."""
    email = f"{role}@example.org"
    stack.users.add(email)
    stack.users.grant(email, 16, role)
    return in_process_client(stack, stack.users.new_token(email))


def stages(job: dict[str, Any]) -> list[tuple[str, str, float]]:
    return [(s["key"], s["status"], s["progress"]) for s in job["progress"]["stages"]]


def messages(lines: list[str]) -> list[str]:
    """Log lines (newest first, as served) without their time stamps: "LEVEL message"."""
    found = []
    for line in lines:
        match = LOG_LINE.match(line)
        assert match, line
        found.append(f"{match.group(1)} {match.group(2)}")
    return found


# 7.6


async def test_an_async_job_of_an_empty_collection_succeeds_at_once_with_every_stage_done(
    client: httpx.AsyncClient,
) -> None:
    """Section 7 (async, step 6): with nothing to queue, the job finishes SUCCESS at once."""
    created = await create_job(client, delay=0)  # the seed's collection 5 holds no captures
    assert created["dispatch_mode"] == "async_api"
    done = await wait_for(client, created["id"])
    assert done["status"] == "SUCCESS"
    assert stages(done) == [
        ("collect", "SUCCESS", 1.0),
        ("process", "SUCCESS", 1.0),
        ("results", "SUCCESS", 1.0),
    ]
    assert done["progress"]["summary"] == {"status": "SUCCESS", "progress": 1.0}
    assert done["finished_at"] is not None


# 14, 1


@pytest.mark.parametrize("delay", [0, "0"])
async def test_the_uis_exact_create_with_a_bare_start_now_flag_queues_the_job(
    idle: tuple[Stack, httpx.AsyncClient], delay: int | str
) -> None:
    """Sections 14 and 1: `?start_now` without a value, ids as strings, no job_type_key."""
    _, client = idle
    body = {
        "delay": delay,
        "name": "From the UI",
        "project_id": "16",
        "pipeline_id": "1",
        "source_image_collection_id": "5",
    }
    response = await client.post("/api/v2/jobs/?start_now", json=body)
    assert response.status_code == 201, response.text
    job = response.json()
    assert isinstance(job["id"], int)
    assert job["status"] == "PENDING"  # no runner here, so nothing moves it further
    assert (job["pipeline"]["id"], job["source_image_collection"]["id"]) == (1, 5)
    assert (job["delay"], job["job_type"]["key"], job["dispatch_mode"]) == (0, "ml", "async_api")


@pytest.mark.parametrize(
    ("start_now", "status"),
    [
        ("false", "CREATED"),
        ("0", "CREATED"),
        ("FALSE", "CREATED"),
        ("False", "CREATED"),
        (" false ", "CREATED"),
        ("", "PENDING"),
        ("true", "PENDING"),
        ("1", "PENDING"),
        ("yes", "PENDING"),
        ("no", "PENDING"),  # anything but false or 0 is true
        ("off", "PENDING"),
        ("foo", "PENDING"),
    ],
)
async def test_start_now_is_false_only_for_false_or_0_in_any_case(
    idle: tuple[Stack, httpx.AsyncClient], start_now: str, status: str
) -> None:
    """Section 1: query booleans are lenient and never 400."""
    _, client = idle
    response = await client.post("/api/v2/jobs/", json=SEED_JOB, params={"start_now": start_now})
    assert (response.status_code, response.json()["status"]) == (201, status)


# 3, 4


async def test_list_items_have_no_result_and_empty_logs_while_the_detail_has_both(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Sections 3 and 4: the list shape is the detail shape without `result`, and its `logs`
    are the empty legacy column even for a job with log lines."""
    _, client = idle
    job = await create_job(client)  # queued: it has a log line
    detail = (await client.get(f"/api/v2/jobs/{job['id']}/")).json()
    assert messages(detail["logs"]["stdout"]) == [
        f"INFO Changing status of job {job['id']} to PENDING"
    ]
    assert detail["result"] is None

    [item] = (await client.get("/api/v2/jobs/")).json()["results"]
    assert "result" not in item
    assert item["logs"] == {"stdout": [], "stderr": []}
    assert list(item) == [key for key in detail if key != "result"]


# 16


@pytest.mark.parametrize("start_now", [False, True])
async def test_retry_of_a_job_that_has_not_ended_is_400_and_only_recorded_as_refused(
    idle: tuple[Stack, httpx.AsyncClient], start_now: bool
) -> None:
    """Section 16: retry is allowed from a final status only; otherwise 400, list of strings."""
    _, client = idle
    job = await create_job(client, start_now=start_now)
    status = "PENDING" if start_now else "CREATED"
    assert job["status"] == status
    before = await history(client, job["id"])

    response = await client.post(f"/api/v2/jobs/{job['id']}/retry/")
    reason = f"Only a job that has ended can be retried; job {job['id']} is {status}"
    assert (response.status_code, response.json()) == (400, [reason])

    after = await history(client, job["id"])
    assert after[: len(before)] == before
    assert [(e["type"], e["data"]) for e in after[len(before) :]] == [
        ("CommandRefused", {"command": "RetryJob", "reason": reason})
    ]
    assert (await client.get(f"/api/v2/jobs/{job['id']}/")).json()["status"] == status


# 2


async def test_a_viewer_may_not_cancel_retry_or_change_a_job(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 2: authenticated without the permission → 403 with DRF's body."""
    stack, client = idle
    job = await create_job(client)
    async with as_role(stack, ProjectRole.VIEWER) as viewer:
        for action in ("cancel", "retry"):
            response = await viewer.post(f"/api/v2/jobs/{job['id']}/{action}/")
            assert (response.status_code, response.json()) == (403, NOT_ALLOWED), action
        changed = await viewer.patch(f"/api/v2/jobs/{job['id']}/", json={"name": "Mine"})
        assert (changed.status_code, changed.json()) == (403, NOT_ALLOWED)
    after = (await client.get(f"/api/v2/jobs/{job['id']}/")).json()
    assert (after["status"], after["name"]) == ("PENDING", "Trest")


async def test_an_anonymous_patch_or_delete_is_401_with_drfs_body(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 2: anonymous writes → 401 `Authentication credentials were not provided.`"""
    stack, client = idle
    job = await create_job(client, start_now=False)
    async with in_process_client(stack) as anonymous:
        changed = await anonymous.patch(f"/api/v2/jobs/{job['id']}/", json={"name": "Mine"})
        assert (changed.status_code, changed.json()) == (401, NO_CREDENTIALS)
        deleted = await anonymous.delete(f"/api/v2/jobs/{job['id']}/")
        assert (deleted.status_code, deleted.json()) == (401, NO_CREDENTIALS)
    assert (await client.get(f"/api/v2/jobs/{job['id']}/")).json()["name"] == "Trest"


async def test_tasks_and_result_are_401_for_anonymous_and_403_for_a_member(
    idle_catalog: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 2 and 16: the worker endpoints need the worker permission on the project,
    which a member (who may create and run jobs) does not hold."""
    stack, client = idle_catalog
    job = await create_job(client, start_now=False, **ASYNC_JOB)
    calls = [
        (f"/api/v2/jobs/{job['id']}/tasks/", {"batch_size": 1}),
        (f"/api/v2/jobs/{job['id']}/result/", {"results": []}),
    ]
    async with in_process_client(stack) as anonymous, as_role(stack, ProjectRole.MEMBER) as member:
        for path, body in calls:
            refused = await anonymous.post(path, json=body)
            assert (refused.status_code, refused.json()) == (401, NO_CREDENTIALS), path
            forbidden = await member.post(path, json=body)
            assert (forbidden.status_code, forbidden.json()) == (403, NOT_ALLOWED), path


async def test_tasks_and_result_of_a_missing_job_are_404_result_before_reading_its_body(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 2: `tasks` checks its body first (tested elsewhere), then the job; `result`
    looks the job up first, so even a bad body gets 404."""
    _, client = idle
    tasks = await client.post("/api/v2/jobs/999/tasks/", json={"batch_size": 1})
    assert (tasks.status_code, tasks.json()) == (404, NOT_FOUND)
    for bad in ([], {"results": "none"}, {"results": [{"reply_subject": "x"}]}):
        result = await client.post("/api/v2/jobs/999/result/", json=bad)
        assert (result.status_code, result.json()) == (404, NOT_FOUND), bad


# 12


@pytest.mark.parametrize(
    "failure",
    [nats.errors.ConnectionClosedError(), nats.errors.NoServersError(), OSError("unreachable")],
    ids=["connection closed", "no servers", "socket error"],
)
async def test_tasks_are_503_when_the_queue_is_down(
    catalog: Stack,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
) -> None:
    """Section 12: not an empty list, so that workers back off."""
    job = await started_async_job(client, **ASYNC_JOB)

    async def down(*_: Any, **__: Any) -> list[Any]:
        raise failure

    monkeypatch.setattr(TaskQueue, "take", down)
    response = await client.post(f"/api/v2/jobs/{job['id']}/tasks/", json={"batch_size": 2})
    assert (response.status_code, response.json()) == (503, {"error": QUEUE_DOWN})


@pytest.mark.parametrize(
    ("step", "failure"),
    [
        ("record", nats.errors.TimeoutError()),
        ("record", nats.errors.ConnectionClosedError()),
        ("lookup", nats.errors.TimeoutError()),
    ],
    ids=["recording times out", "connection closed while recording", "task lookup times out"],
)
async def test_a_result_is_503_naming_the_job_when_the_broker_fails(
    catalog: Stack,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
    failure: Exception,
) -> None:
    """Section 12: broker failure → 503 `{"status": "error", "job_id", "detail"}`."""
    job = await started_async_job(client, **ASYNC_JOB)
    [task] = await take_tasks(client, job["id"], 1)
    if step == "record":
        send: Callable[[Command], Awaitable[Outcome]] = catalog.bus.send

        async def failing_send(command: Command) -> Outcome:
            if isinstance(command, RecordResult):
                raise failure
            return await send(command)

        monkeypatch.setattr(catalog.bus, "send", failing_send)
    else:
        get_msg = JetStreamContext.get_msg

        async def failing_get_msg(js: JetStreamContext, stream_name: str, **kwargs: Any) -> Any:
            if stream_name == TASKS_STREAM:  # the relay reads the events stream meanwhile
                raise failure
            return await get_msg(js, stream_name, **kwargs)

        monkeypatch.setattr(JetStreamContext, "get_msg", failing_get_msg)
    response = await client.post(
        f"/api/v2/jobs/{job['id']}/result/", json={"results": [success(task)]}
    )
    assert (response.status_code, response.json()) == (
        503,
        {"status": "error", "job_id": job["id"], "detail": QUEUE_DOWN},
    )


async def test_tasks_of_a_started_job_whose_pipeline_was_removed_are_400(
    catalog: Stack, client: httpx.AsyncClient
) -> None:
    """Section 12: the job is async_api (fixed at creation) and active, but has no pipeline."""
    job = await started_async_job(client, **ASYNC_JOB)
    changed = await client.patch(f"/api/v2/jobs/{job['id']}/", json={"pipeline_id": None})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["pipeline"], changed.json()["dispatch_mode"]) == (None, "async_api")
    assert changed.json()["status"] == "STARTED"
    response = await client.post(f"/api/v2/jobs/{job['id']}/tasks/", json={"batch_size": 1})
    assert (response.status_code, response.json()) == (
        400,
        ["This job does not have a pipeline configured"],
    )


# 8


async def test_stderr_holds_only_the_errors_among_the_entries_stdout_shows(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    """Section 8: `stderr` is the ERROR lines *within* the newest `logs_limit` entries."""
    created = await create_job(client, delay=0, pipeline_id=None, source_image_collection_id=None)
    job_id = created["id"]
    assert (await wait_for(client, job_id))["status"] == "FAILURE"
    await settled(stack)
    failed = f'Job #{job_id} "Trest" failed: No pipeline specified to process images in ML job'

    async def logs(limit: int) -> dict[str, list[str]]:
        response = await client.get(f"/api/v2/jobs/{job_id}/", params={"logs_limit": limit})
        assert response.status_code == 200, response.text
        served: dict[str, list[str]] = response.json()["logs"]
        return served

    newest = await logs(1)
    assert (messages(newest["stdout"]), newest["stderr"]) == (
        [f'INFO Finished job #{job_id} "Trest" (FAILURE)'],
        [],
    )
    two = await logs(2)
    assert (len(two["stdout"]), two["stderr"]) == (2, [])
    three = await logs(3)
    assert messages(three["stdout"]) == [
        f'INFO Finished job #{job_id} "Trest" (FAILURE)',
        f"INFO Changing status of job {job_id} to FAILURE",
        f"ERROR {failed}",
    ]
    assert three["stderr"] == [failed]
    everything = await logs(5000)
    assert (len(everything["stdout"]), everything["stderr"]) == (6, [failed])


@pytest.mark.parametrize(
    ("logs_limit", "message"),
    [
        ("5001", "Ensure this value is less than or equal to 5000."),
        ("0", "Ensure this value is greater than or equal to 1."),
    ],
)
async def test_a_logs_limit_outside_1_to_5000_is_400_saying_the_bound(
    idle: tuple[Stack, httpx.AsyncClient], logs_limit: str, message: str
) -> None:
    """Section 8 and 11: the error body names the parameter, in DRF's words."""
    _, client = idle
    job = await create_job(client, start_now=False)
    response = await client.get(f"/api/v2/jobs/{job['id']}/", params={"logs_limit": logs_limit})
    assert (response.status_code, response.json()) == (400, {"logs_limit": [message]})


# 8, 12


async def test_tasks_of_a_created_job_are_an_empty_list_and_an_info_line_naming_the_caller(
    idle_catalog: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 12: status not STARTED/RETRY → 200 `{"tasks": []}` plus an INFO log line that
    names the token by its first 8 characters only."""
    stack, client = idle_catalog
    job = await create_job(client, start_now=False, **ASYNC_JOB)
    assert job["dispatch_mode"] == "async_api"
    token = client.headers["authorization"].removeprefix("Token ")
    response = await client.post(f"/api/v2/jobs/{job['id']}/tasks/", json={"batch_size": 4})
    assert (response.status_code, response.json()) == (200, {"tasks": []})
    await settled(stack)
    lines = (await client.get(f"/api/v2/jobs/{job['id']}/")).json()["logs"]["stdout"]
    assert messages(lines) == [
        "INFO Tasks requested for non-active job (status=CREATED); returning empty."
        f" user={ADMIN}, token_id={token[:8]}…"
    ]
    assert not any(token in line for line in lines)


async def test_a_fetch_that_delivers_no_task_adds_no_tasks_fetched_line(
    catalog: Stack, client: httpx.AsyncClient
) -> None:
    """Section 8: `Tasks fetched` is INFO only when tasks were delivered (DEBUG, so not kept,
    otherwise)."""
    job = await started_async_job(client, **ASYNC_JOB)
    assert len(await take_tasks(client, job["id"], 4)) == 4
    assert await take_tasks(client, job["id"], 4) == []  # all four are with a worker
    await settled(catalog)
    lines = messages((await client.get(f"/api/v2/jobs/{job['id']}/")).json()["logs"]["stdout"])
    token = client.headers["authorization"].removeprefix("Token ")
    assert [line for line in lines if line.startswith("INFO Tasks fetched:")] == [
        f"INFO Tasks fetched: requested=4, delivered=4, user={ADMIN}, token_id={token[:8]}…"
    ]


# 3


@pytest.mark.parametrize("limit", [None, "0"])
async def test_a_page_holds_10_jobs_by_default_and_links_the_next_10(
    idle: tuple[Stack, httpx.AsyncClient], limit: str | None
) -> None:
    """Section 3: default limit 10; a non-positive limit falls back to it."""
    _, client = idle
    for _ in range(11):
        await create_job(client, start_now=False)
    query = {} if limit is None else {"limit": limit}
    page = (await client.get("/api/v2/jobs/", params=query)).json()
    assert (page["count"], len(page["results"]), page["previous"]) == (11, 10, None)
    assert page["next"].endswith("limit=10&offset=10")
    assert page["next"] == f"{BASE_URL}/api/v2/jobs/?limit=10&offset=10"
    rest = (await client.get(page["next"])).json()
    assert [job["id"] for job in rest["results"]] == [1]


# 5


async def test_a_nested_deployment_has_exactly_id_name_details_and_user_permissions(
    idle_catalog: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 5: every nested object but data_export carries `details` and `user_permissions`."""
    _, client = idle_catalog
    job = await create_job(client, start_now=False, deployment_id=TRAP)
    expected = {
        "id": TRAP,
        "name": "Aarhus trap",
        "details": f"{BASE_URL}/api/v2/deployments/{TRAP}/",
        "user_permissions": [],
    }
    assert job["deployment"] == expected
    assert (await client.get(f"/api/v2/jobs/{job['id']}/")).json()["deployment"] == expected
    [item] = (await client.get("/api/v2/jobs/")).json()["results"]
    assert item["deployment"] == expected


# 4


async def test_a_job_created_without_shuffle_shuffles_and_is_an_ml_pipeline_job(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 4: `shuffle` defaults to true, `job_type_key` to "ml"."""
    _, client = idle
    body = {k: v for k, v in SEED_JOB.items() if k != "shuffle"}
    response = await client.post("/api/v2/jobs/", json=body)
    assert response.status_code == 201
    job = response.json()
    assert job["shuffle"] is True
    assert job["job_type"] == {"name": "ML pipeline", "key": "ml"}


async def test_a_superuser_may_update_delete_and_run_a_data_export_job(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 4: a superuser's permissions are update, delete and the type's custom actions;
    only ML jobs have `run_single_image`."""
    _, client = idle
    job = await create_job(
        client,
        start_now=False,
        delay=0,
        job_type_key="data_export",
        pipeline_id=None,
        source_image_collection_id=None,
    )
    assert job["job_type"] == {"name": "Data Export", "key": "data_export"}
    assert sorted(job["user_permissions"]) == ["delete", "run", "update"]


async def test_read_only_fields_sent_in_a_patch_are_ignored(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 4: `status`, `progress` and the like are silently ignored, not rejected."""
    _, client = idle
    job = await create_job(client, start_now=False)
    done = {"summary": {"status": "SUCCESS", "progress": 1.0}, "stages": []}
    response = await client.patch(
        f"/api/v2/jobs/{job['id']}/",
        json={"name": "Renamed", "status": "SUCCESS", "progress": done, "id": 99},
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert (changed["id"], changed["name"], changed["status"]) == (job["id"], "Renamed", "CREATED")
    assert changed["progress"] == job["progress"]
    only_read_only = await client.patch(
        f"/api/v2/jobs/{job['id']}/", json={"status": "FAILURE", "finished_at": "2026-01-01"}
    )
    assert only_read_only.status_code == 200, only_read_only.text
    assert (only_read_only.json()["status"], only_read_only.json()["finished_at"]) == (
        "CREATED",
        None,
    )


# 11


@pytest.mark.parametrize("parameter", ["deployment", "source_image_collection"])
@pytest.mark.parametrize("value", ["trap", "1.5", "5x"])
async def test_a_non_integer_deployment_or_collection_filter_is_400_asking_for_a_whole_number(
    idle: tuple[Stack, httpx.AsyncClient], parameter: str, value: str
) -> None:
    """Section 11: same filter kind as `project` (non-integers are tested there for others)."""
    _, client = idle
    response = await client.get("/api/v2/jobs/", params={parameter: value})
    assert (response.status_code, response.json()) == (400, {parameter: ["Enter a whole number."]})


# 9, 12


async def test_an_async_job_with_exactly_half_its_images_failed_succeeds(
    catalog: Stack, client: httpx.AsyncClient
) -> None:
    """Section 9: FAILURE only when failed/total is strictly greater than 0.5."""
    job = await started_async_job(client, **ASYNC_JOB)
    tasks = await take_tasks(client, job["id"], 4)
    results = [error(tasks[0]), error(tasks[1]), success(tasks[2]), success(tasks[3])]
    posted = await client.post(f"/api/v2/jobs/{job['id']}/result/", json={"results": results})
    assert posted.status_code == 200, posted.text
    done = await wait_for(client, job["id"])
    assert done["status"] == "SUCCESS"
    assert stage_params(done, "process") == {
        "processed": 4,
        "remaining": 0,
        "failed": 2,
        "status": "SUCCESS",
        "progress": 1.0,
    }
    assert done["progress"]["summary"] == {"status": "SUCCESS", "progress": 1.0}


# 12, 1


async def test_a_result_whose_body_is_a_bare_list_is_400_expecting_a_dictionary(
    catalog: Stack, client: httpx.AsyncClient
) -> None:
    """Sections 12 and 1: the `non_field_errors` shape, with DRF's message."""
    job = await started_async_job(client, **ASYNC_JOB)
    [task] = await take_tasks(client, job["id"], 1)
    response = await client.post(f"/api/v2/jobs/{job['id']}/result/", json=[success(task)])
    assert (response.status_code, response.json()) == (
        400,
        {"non_field_errors": ["Invalid data. Expected a dictionary."]},
    )


# 1


def urls(value: Any) -> list[str]:
    """Every `details` URL in a response, however deeply nested."""
    if isinstance(value, dict):
        own = [value["details"]] if isinstance(value.get("details"), str) else []
        return own + [url for item in value.values() for url in urls(item)]
    if isinstance(value, list):
        return [url for item in value for url in urls(item)]
    return []


async def test_format_json_is_accepted_and_leaves_details_urls_bare(
    idle_catalog: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 1: only `format=api` adds `?format=api` to the `details` URLs."""
    _, client = idle_catalog
    job = await create_job(client, start_now=False, deployment_id=TRAP)
    detail = await client.get(f"/api/v2/jobs/{job['id']}/", params={"format": "json"})
    page = await client.get("/api/v2/jobs/", params={"format": "json"})
    assert (detail.status_code, page.status_code) == (200, 200)
    assert sorted(urls(detail.json())) == [
        f"{BASE_URL}/api/v2/captures/collections/5/",
        f"{BASE_URL}/api/v2/deployments/{TRAP}/",
        f"{BASE_URL}/api/v2/jobs/{job['id']}/",
        f"{BASE_URL}/api/v2/ml/pipelines/1/",
        f"{BASE_URL}/api/v2/projects/16/",
    ]
    assert sorted(urls(page.json())) == sorted(urls(detail.json()))


async def test_a_format_drf_has_no_renderer_for_is_404(
    idle_catalog: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 1: `json` and `api` are the formats there are."""
    _, client = idle_catalog
    job = await create_job(client, start_now=False)
    for path in ("/api/v2/jobs/", f"/api/v2/jobs/{job['id']}/"):
        response = await client.get(path, params={"format": "xml"})
        assert (response.status_code, response.json()) == (404, {"detail": "Not found."})
