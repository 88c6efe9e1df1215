"""Contract rules of CONTRACT.md sections 1-11 and 14, as section 16 decides them, each
pinned with the exact value: bodies on update, times, methods, permissions per action,
heartbeats, logs, attempts and the embedded short jobs."""

import asyncio
import contextlib
import re
import time
from typing import Any

import httpx
import pytest

from api.app import in_process_client
from api.bootstrap import Stack
from domain.commands import AppendLog, ClaimJob, FinishJob, ReportProgress, RunnerReport
from domain.permissions import ROLE_PERMISSIONS, ProjectRole
from domain.statuses import JobStatus
from tests.conftest import SEED_JOB, create_job, history, settled, wait_for

NOT_ALLOWED = {"detail": "You do not have permission to perform this action."}
NO_CREDENTIALS = {"detail": "Authentication credentials were not provided."}
NOT_FOUND = {"detail": "Not found."}
BASE_URL = "http://127.0.0.1:8000"
RUNNER = "rules-runner"
DRAFT_PROJECT = 17
# Naive ISO 8601: no offset, microseconds only when there are some (sections 1 and 16).
NAIVE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?$")


def as_role(
    stack: Stack, role: ProjectRole | None, project_id: int = 16
) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
    """A client of a user who holds `role` on the project (no role at all for None)."""
    email = f"{role or 'outsider'}@example.org"
    stack.users.add(email)
    if role is not None:
        stack.users.grant(email, project_id, role)
    return in_process_client(stack, stack.users.new_token(email))


def by(job_id: int, attempt: int = 1) -> dict[str, Any]:
    """The fields of a report from the test's runner on an attempt of the job."""
    return {"job_id": job_id, "attempt": attempt, "runner": RUNNER}


async def report(stack: Stack, command: RunnerReport) -> None:
    outcome = await stack.bus.send(command)
    assert outcome.accepted, outcome.reason


async def detail(client: httpx.AsyncClient, job_id: int, **params: Any) -> Any:
    response = await client.get(f"/api/v2/jobs/{job_id}/", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def started(stack: Stack, client: httpx.AsyncClient, **changes: Any) -> dict[str, Any]:
    """A job queued through the API and claimed by the test's runner (a stack without runners)."""
    job = await create_job(client, **changes)
    await report(stack, ClaimJob(**by(job["id"])))
    await settled(stack)
    return job


async def succeed(stack: Stack, job_id: int) -> None:
    """The test's runner completes the delay stage and ends the job SUCCESS."""
    delay_done = ReportProgress(**by(job_id), stage="delay", status=JobStatus.SUCCESS, progress=1.0)
    await report(stack, delay_done)
    await report(stack, FinishJob(**by(job_id), status=JobStatus.SUCCESS))
    await settled(stack)


# 1


async def test_a_post_without_the_trailing_slash_creates_no_job(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 1: only GETs are redirected; a POST to `/api/v2/jobs` is not usable, not even
    by a client that follows redirects."""
    _, client = idle
    response = await client.post("/api/v2/jobs", json=SEED_JOB, follow_redirects=True)
    assert (response.status_code, response.json()) == (404, {"detail": "Not found."})
    assert (await client.get("/api/v2/jobs/")).json()["count"] == 0


async def test_update_accepts_form_urlencoded_and_multipart_bodies(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 1: create *and update* accept JSON, form-urlencoded and multipart [OBS]."""
    _, client = idle
    job = await create_job(client, start_now=False)
    url = f"/api/v2/jobs/{job['id']}/"
    urlencoded = await client.patch(url, data={"name": "From a form", "delay": "3"})
    assert urlencoded.status_code == 200, urlencoded.text
    assert (urlencoded.json()["name"], urlencoded.json()["delay"]) == ("From a form", 3)
    multipart = await client.patch(url, files={"name": (None, "Multipart"), "shuffle": (None, "0")})
    assert multipart.status_code == 200, multipart.text
    assert (multipart.json()["name"], multipart.json()["shuffle"]) == ("Multipart", False)


async def test_every_time_of_a_job_is_iso_8601_without_an_offset(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Sections 1 and 16: job times (and the nested pipeline's) carry no offset."""
    stack, client = idle
    job = await started(stack, client)
    await succeed(stack, job["id"])
    done = await detail(client, job["id"])
    times = [done[k] for k in ("created_at", "updated_at", "started_at", "finished_at")]
    times += [done["pipeline"]["created_at"], done["pipeline"]["updated_at"]]
    assert [bool(NAIVE_TIME.match(t)) for t in times] == [True] * 6, times


async def test_format_api_puts_the_format_in_the_lists_details_urls(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 1: with `format=api` the `details` URLs carry `?format=api`, in lists too."""
    _, client = idle
    job = await create_job(client, start_now=False)
    page = await client.get("/api/v2/jobs/", params={"format": "api"})
    assert page.status_code == 200, page.text
    [item] = page.json()["results"]
    assert (item["details"], item["project"]["details"]) == (
        f"{BASE_URL}/api/v2/jobs/{job['id']}/?format=api",
        f"{BASE_URL}/api/v2/projects/16/?format=api",
    )


# 2


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v2/jobs/1/run/"),
        ("GET", "/api/v2/jobs/1/cancel/"),
        ("GET", "/api/v2/jobs/1/retry/"),
        ("GET", "/api/v2/jobs/1/tasks/"),
        ("DELETE", "/api/v2/jobs/"),
    ],
)
async def test_a_wrong_method_is_405_with_a_detail(
    idle: tuple[Stack, httpx.AsyncClient], method: str, path: str
) -> None:
    """Section 2: wrong method → 405 (e.g. `GET /jobs/1/run/`)."""
    _, client = idle
    await create_job(client, start_now=False)
    response = await client.request(method, path)
    assert (response.status_code, response.json()) == (
        405,
        {"detail": f'Method "{method}" not allowed.'},
    )
    assert "allow" in response.headers


async def test_put_is_401_for_anonymous_403_for_a_viewer_and_404_for_an_unknown_job(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 2: `PUT /jobs/{id}/` → 401; 403 (needs `update_job`); 404."""
    stack, client = idle
    job = await create_job(client, start_now=False)
    body = {"name": "Replaced", "delay": 0, "project_id": 16}
    url = f"/api/v2/jobs/{job['id']}/"
    async with in_process_client(stack) as anonymous, as_role(stack, ProjectRole.VIEWER) as viewer:
        refused = await anonymous.put(url, json=body)
        assert (refused.status_code, refused.json()) == (401, NO_CREDENTIALS)
        forbidden = await viewer.put(url, json=body)
        assert (forbidden.status_code, forbidden.json()) == (403, NOT_ALLOWED)
    unknown = await client.put("/api/v2/jobs/42/", json=body)
    assert (unknown.status_code, unknown.json()) == (404, NOT_FOUND)
    assert (await detail(client, job["id"]))["name"] == "Trest"


async def test_a_project_owner_may_not_delete_and_is_not_offered_delete(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Sections 2 and 4: `delete_job` is for superusers only — no role has it."""
    stack, client = idle
    job = await create_job(client, start_now=False)
    async with as_role(stack, ProjectRole.OWNER) as owner:
        seen = await detail(owner, job["id"])
        assert sorted(seen["user_permissions"]) == ["run", "update"]
        deleted = await owner.delete(f"/api/v2/jobs/{job['id']}/")
        assert (deleted.status_code, deleted.json()) == (403, NOT_ALLOWED)
    assert (await detail(client, job["id"]))["id"] == job["id"]


async def test_a_draft_projects_job_is_404_to_an_outsider_for_every_request(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Sections 2 and 3: a job that is not visible is 404 for detail, update, delete and
    every action, not 403."""
    stack, client = idle
    await stack.save_catalog({"projects": [{"id": DRAFT_PROJECT, "name": "Draft", "draft": True}]})
    job = await create_job(client, start_now=False, project_id=DRAFT_PROJECT)
    url = f"/api/v2/jobs/{job['id']}/"
    async with as_role(stack, None) as outsider:
        for method, path, body in [
            ("GET", url, None),
            ("PATCH", url, {"name": "Mine"}),
            ("PUT", url, {"name": "Mine", "delay": 0, "project_id": DRAFT_PROJECT}),
            ("DELETE", url, None),
            ("POST", f"{url}cancel/", None),
            ("POST", f"{url}retry/", None),
        ]:
            response = await outsider.request(method, path, json=body)
            assert (response.status_code, response.json()) == (404, NOT_FOUND), (method, path)
    assert (await detail(client, job["id"]))["status"] == "CREATED"


async def test_start_now_without_run_permission_is_403_and_creates_nothing(
    idle: tuple[Stack, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Section 2 and 10: `create_job` without `run_<type>_job` may create, but not with
    `start_now` (then nothing is created). No built-in role is like that, so one is made."""
    stack, client = idle
    monkeypatch.setitem(ROLE_PERMISSIONS, ProjectRole.VIEWER, frozenset({"create_job"}))
    async with as_role(stack, ProjectRole.VIEWER) as creator:
        queued = await creator.post("/api/v2/jobs/", json=SEED_JOB, params={"start_now": ""})
        assert (queued.status_code, queued.json()) == (403, NOT_ALLOWED)
        assert (await client.get("/api/v2/jobs/")).json()["count"] == 0
        created = await creator.post("/api/v2/jobs/", json=SEED_JOB)
        assert (created.status_code, created.json()["status"]) == (201, "CREATED")
        assert created.json()["user_permissions"] == []


async def test_a_single_image_job_checks_run_single_image_ml_job_for_every_action(
    idle: tuple[Stack, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Section 2: a job with `source_image_single` set checks `run_single_image_ml_job`
    instead of `run_ml_job`, so a user allowed only single-image runs can run, cancel and
    retry those (and is offered "run"), but not other ML jobs."""
    stack, client = idle
    await stack.save_catalog({"captures": [{"id": 7, "url": "https://example.org/7.jpg"}]})
    single = await create_job(client, start_now=False, source_image_single_id=7)
    other = await create_job(client, start_now=False)
    monkeypatch.setitem(
        ROLE_PERMISSIONS, ProjectRole.VIEWER, frozenset({"run_single_image_ml_job"})
    )
    async with as_role(stack, ProjectRole.VIEWER) as user:
        assert (await detail(user, single["id"]))["user_permissions"] == ["run"]
        assert (await detail(user, other["id"]))["user_permissions"] == []
        url = f"/api/v2/jobs/{single['id']}/"
        for action, status in (("run", "PENDING"), ("cancel", "REVOKED"), ("retry", "PENDING")):
            response = await user.post(f"{url}{action}/")
            assert (response.status_code, response.json()["status"]) == (200, status), action
        refused = await user.post(f"/api/v2/jobs/{other['id']}/run/")
        assert (refused.status_code, refused.json()) == (403, NOT_ALLOWED)


# 3


async def test_an_ids_only_poll_by_project_marks_its_async_services_seen(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 3: an `ids_only` poll records a heartbeat for the async processing services
    of the named pipelines, *or of `project_id`* when it names none."""
    stack, client = idle
    await stack.save_catalog(
        {"services": [{"id": 52, "name": "Workers", "pipelines": [1], "projects": [16]}]}
    )
    poll = await client.get("/api/v2/jobs/", params={"ids_only": "1", "project_id": "16"})
    assert poll.status_code == 200, poll.text
    deadline = time.monotonic() + 5  # the heartbeat is sent after the response
    while (await client.get("/api/v2/ml/processing_services/52/")).json()["last_seen"] is None:
        assert time.monotonic() < deadline, "the poll was not recorded as a heartbeat"
        await asyncio.sleep(0.02)


async def test_an_ids_only_poll_succeeds_when_its_heartbeat_cannot_be_recorded(
    idle: tuple[Stack, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Section 3: heartbeat failures never fail the request."""
    stack, client = idle
    await stack.save_catalog(
        {"services": [{"id": 52, "name": "Workers", "pipelines": [1], "projects": [16]}]}
    )
    await create_job(client, start_now=False)

    async def broken(*_: Any, **__: Any) -> None:
        raise ConnectionError("bus down")

    monkeypatch.setattr(stack.bus, "publish", broken)
    poll = await client.get(
        "/api/v2/jobs/", params={"ids_only": "1", "pipeline__slug__in": "panama_moths_2023"}
    )
    assert (poll.status_code, poll.json()["count"]) == (200, 1)


async def test_the_page_offers_create_to_nobody_without_create_job(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 3: top-level `user_permissions` is `[]` for anonymous callers and for a role
    without `create_job` (a worker), even with `project_id`."""
    stack, _ = idle
    async with in_process_client(stack) as anonymous, as_role(stack, ProjectRole.WORKER) as worker:
        for caller in (anonymous, worker):
            page = await caller.get("/api/v2/jobs/", params={"project_id": "16"})
            assert (page.status_code, page.json()["user_permissions"]) == (200, [])


# 4


@pytest.mark.parametrize("field", ["name", "project_id"])
async def test_a_create_without_a_required_field_is_400_saying_it_is_required(
    idle: tuple[Stack, httpx.AsyncClient], field: str
) -> None:
    """Section 4: `name` and `project_id` are required on create."""
    _, client = idle
    body = {k: v for k, v in SEED_JOB.items() if k != field}
    response = await client.post("/api/v2/jobs/", json=body)
    assert (response.status_code, response.json()) == (400, {field: ["This field is required."]})


@pytest.mark.parametrize(
    "field", ["deployment_id", "source_image_collection_id", "source_image_single_id"]
)
async def test_an_unknown_referenced_object_is_400_naming_the_field(
    idle: tuple[Stack, httpx.AsyncClient], field: str
) -> None:
    """Section 4: invalid foreign keys give 400 with the field named, in DRF's words."""
    _, client = idle
    response = await client.post("/api/v2/jobs/", json={**SEED_JOB, field: 999})
    assert (response.status_code, response.json()) == (
        400,
        {field: ['Invalid pk "999" - object does not exist.']},
    )
    assert (await client.get("/api/v2/jobs/")).json()["count"] == 0


async def test_a_patch_to_another_projects_objects_is_400_naming_the_field(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 16: referenced objects of another project → 400 naming the field, on update
    too: pointing at them, or moving the job away from its own."""
    stack, client = idle
    await stack.save_catalog(
        {
            "projects": [{"id": 18, "name": "Vermont"}],
            "collections": [{"id": 66, "name": "Quebec nights", "project_id": 18}],
            "deployments": [{"id": 31, "name": "Aarhus trap", "project_id": 16}],
        }
    )
    job = await create_job(client, start_now=False, deployment_id=31)
    url = f"/api/v2/jobs/{job['id']}/"
    pointed = await client.patch(url, json={"source_image_collection_id": 66})
    assert (pointed.status_code, pointed.json()) == (
        400,
        {"source_image_collection_id": ["Collection 66 belongs to project 18, not 16."]},
    )
    moved = await client.patch(url, json={"project_id": 18})
    assert (moved.status_code, moved.json()) == (
        400,
        {"deployment_id": ["Deployment 31 belongs to project 16, not 18."]},
    )
    after = await detail(client, job["id"])
    assert (after["project"]["id"], after["source_image_collection"]["id"]) == (16, 5)


async def test_times_and_duration_follow_the_attempt_and_a_retry_clears_them(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Sections 4 and 9: `started_at` is set when the run begins (with `finished_at` null),
    `finished_at` on the terminal transition, `duration` is their difference as a string,
    and the retry's enqueue clears all three."""
    stack, client = idle
    job = await started(stack, client)
    running = await detail(client, job["id"])
    assert running["status"] == "STARTED"
    assert running["started_at"] is not None
    assert (running["finished_at"], running["duration"]) == (None, None)

    await succeed(stack, job["id"])
    done = await detail(client, job["id"])
    assert done["started_at"] == running["started_at"]
    assert isinstance(done["duration"], str) and float(done["duration"]) >= 0

    retried = await client.post(f"/api/v2/jobs/{job['id']}/retry/")
    assert retried.status_code == 200, retried.text
    body = retried.json()
    assert (body["status"], body["started_at"], body["finished_at"], body["duration"]) == (
        "PENDING",
        None,
        None,
        None,
    )


async def test_a_patch_may_clear_limit_to_null(idle: tuple[Stack, httpx.AsyncClient]) -> None:
    """Section 4: `limit` is a nullable, writable int."""
    _, client = idle
    job = await create_job(client, start_now=False)
    assert job["limit"] == 100
    cleared = await client.patch(f"/api/v2/jobs/{job['id']}/", json={"limit": None})
    assert (cleared.status_code, cleared.json()["limit"]) == (200, None)
    assert (await detail(client, job["id"]))["limit"] is None


# 7, 16


async def test_a_delay_only_ml_job_without_a_pipeline_succeeds_with_one_delay_stage(
    client: httpx.AsyncClient,
) -> None:
    """Section 16 (deciding section 7 step 3 and quirk 15.4): the test job ends SUCCESS with
    one `delay` stage at 1.0 and summary 1.0."""
    created = await create_job(client, delay=3, pipeline_id=None, source_image_collection_id=None)
    assert created["dispatch_mode"] == "internal"
    done = await wait_for(client, created["id"])
    assert done["status"] == "SUCCESS"
    assert done["progress"]["summary"] == {"status": "SUCCESS", "progress": 1.0}
    assert [(s["key"], s["status"], s["progress"]) for s in done["progress"]["stages"]] == [
        ("delay", "SUCCESS", 1.0)
    ]
    assert done["logs"]["stderr"] == []


async def test_the_delay_stage_is_started_with_a_dizzy_mood_while_the_job_waits(
    client: httpx.AsyncClient,
) -> None:
    """Section 7 (ML run, step 2): during the delay loop the stage is STARTED at i/delay and
    its mood is "😵‍💫"."""
    created = await create_job(client, delay=500)
    job = await wait_for(client, created["id"], {"STARTED"})
    while job["progress"]["stages"][0]["progress"] == 0:
        await asyncio.sleep(0.02)
        job = await detail(client, created["id"])
    [stage] = job["progress"]["stages"]
    params = {p["key"]: p["value"] for p in stage["params"]}
    assert (stage["status"], params) == ("STARTED", {"delay": 500, "mood": "😵‍💫"})
    assert 0 < stage["progress"] < 1
    await client.post(f"/api/v2/jobs/{created['id']}/cancel/")
    await wait_for(client, created["id"])


# 8


async def test_identical_log_messages_are_all_kept(idle: tuple[Stack, httpx.AsyncClient]) -> None:
    """Section 8: identical messages are not de-duplicated [OBS]."""
    stack, client = idle
    job = await started(stack, client)
    for _ in range(3):
        await report(stack, AppendLog(**by(job["id"]), message="Same again"))
    await settled(stack)
    lines = (await detail(client, job["id"]))["logs"]["stdout"]
    assert [line.split("] ", 1)[1] for line in lines[:4]] == ["INFO Same again"] * 3 + [
        f"INFO Changing status of job {job['id']} to STARTED"
    ]


async def test_critical_lines_are_errors_too_and_warnings_are_not(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 8: `stderr` holds the bare text of the ERROR *and CRITICAL* entries, newest
    first; the level names print as `WARNING` and `CRITICAL`."""
    stack, client = idle
    job = await started(stack, client)
    await report(stack, AppendLog(**by(job["id"]), level="CRITICAL", message="Disk gone"))
    await report(stack, AppendLog(**by(job["id"]), level="WARNING", message="Slow disk"))
    await report(stack, AppendLog(**by(job["id"]), level="ERROR", message="Write failed"))
    await settled(stack)
    logs = (await detail(client, job["id"]))["logs"]
    assert [line.split("] ", 1)[1] for line in logs["stdout"][:3]] == [
        "ERROR Write failed",
        "WARNING Slow disk",
        "CRITICAL Disk gone",
    ]
    assert logs["stderr"] == ["Write failed", "Disk gone"]


async def test_a_log_line_does_not_touch_the_jobs_updated_at(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 8: writing logs never touches the job row (`updated_at` stays)."""
    stack, client = idle
    job = await started(stack, client)
    before = await detail(client, job["id"])
    await asyncio.sleep(0.01)
    await report(stack, AppendLog(**by(job["id"]), level="WARNING", message="Half way"))
    await settled(stack)
    after = await detail(client, job["id"])
    assert after["logs"]["stdout"][0].endswith("] WARNING Half way")
    assert after["updated_at"] == before["updated_at"]


async def test_logs_limit_defaults_to_the_newest_1000_entries(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 8: N = `logs_limit`, default 1000."""
    stack, client = idle
    job = await started(stack, client)
    for i in range(1001):
        await report(stack, AppendLog(**by(job["id"]), message=f"Line {i}"))
    await settled(stack)
    lines = (await detail(client, job["id"]))["logs"]["stdout"]
    assert len(lines) == 1000
    assert (lines[0].split("] ", 1)[1], lines[-1].split("] ", 1)[1]) == (
        "INFO Line 1000",
        "INFO Line 1",
    )
    assert len((await detail(client, job["id"], logs_limit=5000))["logs"]["stdout"]) > 1001


async def test_a_non_integer_logs_limit_is_400_asking_for_an_integer(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Sections 8 and 11: the error names the parameter, in DRF's words."""
    _, client = idle
    job = await create_job(client, start_now=False)
    response = await client.get(f"/api/v2/jobs/{job['id']}/", params={"logs_limit": "many"})
    assert (response.status_code, response.json()) == (
        400,
        {"logs_limit": ["A valid integer is required."]},
    )


@pytest.mark.parametrize("logs_limit", ["0", "many", "5001"])
async def test_the_list_ignores_logs_limit(
    idle: tuple[Stack, httpx.AsyncClient], logs_limit: str
) -> None:
    """Section 11: `logs_limit` is read on the detail GET only."""
    _, client = idle
    await create_job(client, start_now=False)
    response = await client.get("/api/v2/jobs/", params={"logs_limit": logs_limit})
    assert (response.status_code, response.json()["count"]) == (200, 1)


# 9


async def test_cancel_of_a_job_being_cancelled_is_200_and_it_stays_canceling(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 9 ("cancel again"): an internal job with a live runner stays CANCELING."""
    stack, client = idle
    job = await started(stack, client)
    first = await client.post(f"/api/v2/jobs/{job['id']}/cancel/")
    assert (first.status_code, first.json()["status"]) == (200, "CANCELING")
    again = await client.post(f"/api/v2/jobs/{job['id']}/cancel/")
    assert (again.status_code, again.json()["status"]) == (200, "CANCELING")
    assert again.json()["finished_at"] is None


# 10, 16


async def test_run_of_an_ended_job_acts_as_a_retry_in_a_new_attempt(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 16: `run` is allowed from a final status, where it acts as a retry."""
    _, client = idle
    job = await create_job(client, start_now=False)
    revoked = await client.post(f"/api/v2/jobs/{job['id']}/cancel/")
    assert revoked.json()["status"] == "REVOKED"
    ran = await client.post(f"/api/v2/jobs/{job['id']}/run/")
    assert ran.status_code == 200, ran.text
    body = ran.json()
    assert (body["status"], body["finished_at"]) == ("PENDING", None)
    assert body["progress"]["summary"]["progress"] == 0.0
    events = await history(client, job["id"])
    assert [e["data"]["attempt"] for e in events if e["type"] == "JobRetried"] == [2]
    attempts = (await client.get(f"/api/v2/jobs/{job['id']}/attempts/")).json()
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, "REVOKED"), (2, "PENDING")]


# 11


async def test_a_status_filter_takes_exactly_one_value(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 11: `status` is one exact value; a list is not one of the 10 values → 400."""
    _, client = idle
    response = await client.get("/api/v2/jobs/", params={"status": "CREATED,PENDING"})
    assert (response.status_code, response.json()) == (
        400,
        {"status": ["Select a valid choice. CREATED,PENDING is not one of the available choices."]},
    )


# 14


async def test_collections_and_captures_list_their_jobs_in_short(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    """Section 14: captures and collections (like deployments) serialise a short job: `id`,
    `details`, `status`, `job_type`, `created_at`, `updated_at`."""
    stack, client = idle
    await stack.save_catalog({"captures": [{"id": 7, "url": "https://example.org/7.jpg"}]})
    job = await create_job(client, start_now=False, source_image_single_id=7)
    short = {
        "id": job["id"],
        "details": f"{BASE_URL}/api/v2/jobs/{job['id']}/",
        "status": "CREATED",
        "job_type": {"name": "ML pipeline", "key": "ml"},
        "created_at": job["created_at"],
        "updated_at": job["updated_at"],
    }
    for path in ("captures/collections/5", "captures/7"):
        response = await client.get(f"/api/v2/{path}/")
        assert response.status_code == 200, path
        assert response.json()["jobs"] == [short], path


async def test_ordering_by_name_ignores_case(idle: tuple[Stack, httpx.AsyncClient]) -> None:
    _, client = idle
    for name in ("Trest", "ada", "Zebra", "beetles"):
        await create_job(client, start_now=False, name=name)
    page = (await client.get("/api/v2/jobs/", params={"ordering": "name"})).json()
    assert [job["name"] for job in page["results"]] == ["ada", "beetles", "Trest", "Zebra"]
