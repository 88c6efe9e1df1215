"""Tokens, roles per project, and what each caller may see and do (CONTRACT.md 2-4)."""

from collections.abc import AsyncIterator

import httpx
import pytest

from api.app import in_process_client
from api.bootstrap import Stack
from domain.permissions import ProjectRole
from tests.conftest import SEED_JOB, create_job

DRAFT_PROJECT = 17
NOT_ALLOWED = {"detail": "You do not have permission to perform this action."}
NO_CREDENTIALS = {"detail": "Authentication credentials were not provided."}


@pytest.fixture
async def as_role(stack: Stack) -> "AsRole":
    await stack.save_catalog({"projects": [{"id": DRAFT_PROJECT, "name": "Draft", "draft": True}]})
    return AsRole(stack)


class AsRole:
    """Clients of users holding one role on project 16."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def client(self, role: ProjectRole | None) -> "AsyncIterator[httpx.AsyncClient]":
        email = f"{role or 'nobody'}@example.org"
        self.stack.users.add(email)
        if role is not None:
            self.stack.users.grant(email, 16, role)
            self.stack.users.grant(email, DRAFT_PROJECT, role)
        return in_process_client(self.stack, self.stack.users.new_token(email))

    def anonymous(self) -> "AsyncIterator[httpx.AsyncClient]":
        return in_process_client(self.stack)


async def test_anonymous_may_read_but_not_write(client: httpx.AsyncClient, as_role: AsRole) -> None:
    job = await create_job(client, start_now=False)
    async with as_role.anonymous() as anonymous:
        read = await anonymous.get(f"/api/v2/jobs/{job['id']}/")
        assert (read.status_code, read.json()["user_permissions"]) == (200, [])
        created = await anonymous.post("/api/v2/jobs/", json=SEED_JOB)
        assert (created.status_code, created.json()) == (401, NO_CREDENTIALS)
        assert created.headers["www-authenticate"] == "Token"
        for action in ("run", "cancel", "retry"):
            response = await anonymous.post(f"/api/v2/jobs/{job['id']}/{action}/")
            assert (response.status_code, response.json()) == (401, NO_CREDENTIALS)
        assert (await anonymous.delete(f"/api/v2/jobs/{job['id']}/")).status_code == 401
        assert (await anonymous.patch(f"/api/v2/jobs/{job['id']}/", json={})).status_code == 401


async def test_an_anonymous_create_with_a_bad_body_is_400_first(as_role: AsRole) -> None:
    async with as_role.anonymous() as anonymous:
        response = await anonymous.post("/api/v2/jobs/", json={"name": "no delay"})
    assert response.status_code == 400


async def test_a_bad_token_is_401(as_role: AsRole) -> None:
    async with as_role.anonymous() as anonymous:
        response = await anonymous.get(
            "/api/v2/jobs/", headers={"Authorization": "Token 0123456789abcdef"}
        )
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid token."})


async def test_a_viewer_may_read_but_not_create_or_run(
    client: httpx.AsyncClient, as_role: AsRole
) -> None:
    job = await create_job(client, start_now=False)
    async with as_role.client(ProjectRole.VIEWER) as viewer:
        read = await viewer.get(f"/api/v2/jobs/{job['id']}/")
        assert read.json()["user_permissions"] == []
        created = await viewer.post("/api/v2/jobs/", json=SEED_JOB)
        assert (created.status_code, created.json()) == (403, NOT_ALLOWED)
        run = await viewer.post(f"/api/v2/jobs/{job['id']}/run/")
        assert (run.status_code, run.json()) == (403, NOT_ALLOWED)
    assert (await client.get(f"/api/v2/jobs/{job['id']}/")).json()["status"] == "CREATED"


async def test_a_member_may_create_update_and_run_but_not_delete(as_role: AsRole) -> None:
    async with as_role.client(ProjectRole.MEMBER) as member:
        job = await create_job(member, start_now=True, delay=500)
        assert job["user_permissions"] == ["update", "run"]
        renamed = await member.patch(f"/api/v2/jobs/{job['id']}/", json={"name": "Mine"})
        assert renamed.json()["name"] == "Mine"
        cancelled = await member.post(f"/api/v2/jobs/{job['id']}/cancel/")
        assert cancelled.status_code == 200
        deleted = await member.delete(f"/api/v2/jobs/{job['id']}/")
        assert (deleted.status_code, deleted.json()) == (403, NOT_ALLOWED)
        history = (await member.get(f"/api/v2/jobs/{job['id']}/history/")).json()["results"]
    assert {event["actor"] for event in history} >= {"member@example.org"}


async def test_a_worker_may_not_create_and_nothing_is_created(
    client: httpx.AsyncClient, as_role: AsRole
) -> None:
    async with as_role.client(ProjectRole.WORKER) as worker:
        response = await worker.post("/api/v2/jobs/", json=SEED_JOB, params={"start_now": ""})
    assert (response.status_code, response.json()) == (403, NOT_ALLOWED)
    assert (await client.get("/api/v2/jobs/")).json()["count"] == 0


async def test_jobs_of_a_draft_project_are_for_its_members(
    client: httpx.AsyncClient, as_role: AsRole
) -> None:
    job = await create_job(client, start_now=False, project_id=DRAFT_PROJECT)
    async with as_role.anonymous() as anonymous:
        assert (await anonymous.get(f"/api/v2/jobs/{job['id']}/")).status_code == 404
        assert (await anonymous.get(f"/api/v2/jobs/{job['id']}/history/")).status_code == 404
        assert (await anonymous.get("/api/v2/jobs/")).json()["count"] == 0
    async with as_role.client(None) as outsider:
        assert (await outsider.post(f"/api/v2/jobs/{job['id']}/run/")).status_code == 404
    async with as_role.client(ProjectRole.VIEWER) as viewer:
        assert (await viewer.get(f"/api/v2/jobs/{job['id']}/")).status_code == 200
        assert (await viewer.get("/api/v2/jobs/")).json()["count"] == 1


async def test_the_page_offers_create_to_those_who_may(
    client: httpx.AsyncClient, as_role: AsRole
) -> None:
    page = await client.get("/api/v2/jobs/", params={"project_id": 16})
    assert page.json()["user_permissions"] == ["create"]
    async with as_role.client(ProjectRole.MEMBER) as member:
        mine = await member.get("/api/v2/jobs/", params={"project_id": 16})
        assert mine.json()["user_permissions"] == ["create"]
        assert (await member.get("/api/v2/jobs/")).json()["user_permissions"] == []
    async with as_role.client(ProjectRole.VIEWER) as viewer:
        theirs = await viewer.get("/api/v2/jobs/", params={"project_id": 16})
        assert theirs.json()["user_permissions"] == []


async def test_only_a_superuser_may_delete(client: httpx.AsyncClient) -> None:
    job = await create_job(client, start_now=False)
    assert (await client.delete(f"/api/v2/jobs/{job['id']}/")).status_code == 204


async def test_moving_a_job_needs_create_on_the_project_it_moves_to(as_role: AsRole) -> None:
    await as_role.stack.save_catalog({"projects": [{"id": 22, "name": "Elsewhere"}]})
    async with as_role.client(ProjectRole.MEMBER) as member:
        job = await create_job(member, start_now=False)
        moved = await member.patch(f"/api/v2/jobs/{job['id']}/", json={"project_id": 22})
        assert (moved.status_code, moved.json()) == (403, NOT_ALLOWED)
        assert (await member.get(f"/api/v2/jobs/{job['id']}/")).json()["project"]["id"] == 16


async def test_a_draft_project_is_not_there_for_outsiders(
    client: httpx.AsyncClient, as_role: AsRole
) -> None:
    await create_job(client, start_now=False, project_id=DRAFT_PROJECT)
    query = {"project_id": DRAFT_PROJECT}
    async with as_role.anonymous() as anonymous:
        hidden = await anonymous.get("/api/v2/jobs/", params=query)
        unknown = await anonymous.get("/api/v2/jobs/", params={"project_id": 999})
    assert (hidden.status_code, hidden.json()) == (404, {"detail": "Not found."})
    assert (hidden.status_code, hidden.json()) == (unknown.status_code, unknown.json())
    await as_role.stack.save_catalog(
        {"deployments": [{"id": 8, "name": "Secret trap", "project_id": DRAFT_PROJECT}]}
    )
    unknown_choice = "Select a valid choice. That choice is not one of the available choices."
    async with as_role.anonymous() as anonymous:
        for name, object_id in (("project", DRAFT_PROJECT), ("deployment", 8)):
            filtered = await anonymous.get("/api/v2/jobs/", params={name: object_id})
            assert (filtered.status_code, filtered.json()) == (400, {name: [unknown_choice]})
    async with as_role.client(ProjectRole.VIEWER) as viewer:
        assert (await viewer.get("/api/v2/jobs/", params=query)).json()["count"] == 1


async def test_a_history_is_for_the_projects_people(
    client: httpx.AsyncClient, as_role: AsRole
) -> None:
    """Histories name who did what: readers without a role on the project may not see them."""
    job = await create_job(client, start_now=False)
    history = f"/api/v2/jobs/{job['id']}/history/"
    async with as_role.anonymous() as anonymous:
        assert (await anonymous.get(f"/api/v2/jobs/{job['id']}/")).status_code == 200
        refused = await anonymous.get(history)
        assert (refused.status_code, refused.json()) == (401, NO_CREDENTIALS)
        stream = await anonymous.get(f"/api/v2/jobs/{job['id']}/events/", params={"follow": 0})
        assert (stream.status_code, stream.json()) == (401, NO_CREDENTIALS)
        everything = await anonymous.get("/api/v2/events/", params={"follow": 0})
        assert (everything.status_code, everything.json()) == (401, NO_CREDENTIALS)
    async with as_role.client(None) as outsider:
        forbidden = await outsider.get(history)
        assert (forbidden.status_code, forbidden.json()) == (403, NOT_ALLOWED)
        # The stream of all events leaves out the projects the caller has no role on.
        seen = await outsider.get("/api/v2/events/", params={"follow": 0})
        assert (seen.status_code, seen.text) == (200, "")
    async with as_role.client(ProjectRole.VIEWER) as viewer:
        shown = await viewer.get(history)
        assert [e["type"] for e in shown.json()["results"]] == ["JobCreated"]


async def test_a_create_naming_an_unknown_project_is_400_for_anyone(as_role: AsRole) -> None:
    """The body is checked before the permission (CONTRACT.md section 2)."""
    body = {**SEED_JOB, "project_id": 999}
    problem = {"project_id": ['Invalid pk "999" - object does not exist.']}
    async with as_role.client(ProjectRole.MEMBER) as member:
        refused = await member.post("/api/v2/jobs/", json=body)
    assert (refused.status_code, refused.json()) == (400, problem)
