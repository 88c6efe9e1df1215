"""The HTTP API: Antenna's /api/v2/jobs/ on the read store, commands through the bus."""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import httpx
from fastapi import BackgroundTasks, Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from faststream.specification.asyncapi.site import get_asyncapi_html
from nats.errors import Error as NatsError
from nats.js.errors import NotFoundError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import caller, require
from api.bodies import (
    BAD_TIME,
    JobBody,
    body_doc,
    check_references,
    field_errors,
    read_body,
    validated,
)
from api.bootstrap import Stack
from api.catalog_routes import add_catalog_routes
from api.errors import NOT_FOUND, ApiError, send_command
from api.heartbeats import Heartbeats
from api.job_json import JobRenderer, duration
from api.list_query import OPENAPI_PARAMETERS, lenient_bool, list_query, page_envelope
from api.schemas import Job, JobPage
from api.worker_protocol import (
    ResultsRequest,
    TaskResult,
    TasksRequest,
    task_ref,
)
from domain.catalog import job_move_errors
from domain.commands import (
    MAX_ID,
    SPEC_FIELDS,
    CancelJob,
    Command,
    CreateJob,
    DeleteJob,
    JobSpec,
    NoteWorkerActivity,
    RecordResult,
    RetryJob,
    RunJob,
    UpdateJob,
)
from domain.envelope import EventEnvelope, Outcome, project_set_by
from domain.job import JOB_EVENT_TYPES
from domain.permissions import ANONYMOUS, User, run_permission
from domain.pipeline_results import claimed_image, record_result
from domain.statuses import ACTIVE, FINAL, JobStatus
from handlers.runner import throughput
from infra.asyncapi import bus_document
from infra.bus import TASKS_STREAM, connection, event_subject, jetstream, task_subject
from infra.catalog import CatalogSnapshot
from infra.event_feed import events, first_sequence_after
from infra.task_queue import TaskQueue
from infra.users import fingerprint
from projections import views
from projections.attempts import attempts
from projections.job_view import JobView
from projections.time_travel import events_as_of, view_as_of
from projections.views import JobQuery

LOGS_LIMIT = 1000
NO_ASYNC_WAIT = 600.0  # seconds a `?no_async` run or retry waits for the job to end
HISTORY_PAGE = 1000
JOB_BODY_DOC = body_doc(JobBody)

VERSION = "0.1.0"


def build_app(stack: Stack) -> FastAPI:
    app = FastAPI(
        title="jobledger",
        description="An event-sourced job system with Antenna's jobs API.",
        version=VERSION,
        redirect_slashes=False,  # only a GET is redirected (AppendSlash); a POST is not usable
    )
    app.add_middleware(AppendSlash)
    if origins := stack.settings.allowed_origins:
        # Antenna's UI runs on a host of its own: browsers ask first whether it may call.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Job-Version", "X-Projection-Position"],
        )
    time_zone = ZoneInfo(stack.settings.time_zone)
    js = jetstream(stack.broker)
    task_queue = TaskQueue(js, stack.settings.task_ack_wait)
    heartbeats = Heartbeats(stack.bus)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(error.body, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        """No such route or method, in DRF's words (other HTTP errors keep theirs)."""
        detail = {
            404: NOT_FOUND["detail"],
            405: f'Method "{request.method}" not allowed.',
        }.get(error.status_code, error.detail)
        return JSONResponse({"detail": detail}, error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(field_errors(list(error.errors())), status_code=400)

    def authenticated(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> User:
        user = caller(stack.users, authorization)
        # Log lines about a caller name the token by its first characters only.
        key = (authorization or "").partition(" ")[2].strip()
        request.state.caller = f"user={user.email}" + (
            f", token_id={fingerprint(key)}" if key else ""
        )
        return user

    Caller = Annotated[User, Depends(authenticated)]

    def renderer(request: Request, user: Caller, format: str | None = None) -> JobRenderer:
        if format not in (None, "json", "api"):  # DRF knows no other renderer: no such page
            raise ApiError(404, NOT_FOUND)
        base_url = str(request.base_url)
        return JobRenderer(stack.catalog.current(), base_url, time_zone, format == "api", user)

    Renderer = Annotated[JobRenderer, Depends(renderer)]

    def visible_view(job_id: int, user: User) -> dict[str, Any]:
        """The job's view, or 404 when there is none or the caller may not see its project."""
        if not 0 < job_id <= MAX_ID:
            raise ApiError(404, NOT_FOUND)
        with stack.read_store.reading() as db:
            view = views.job_view(db, job_id)
        if view is None or not stack.catalog.current().visible(user, view["project_id"]):
            raise ApiError(404, NOT_FOUND)
        return view

    def read_job(
        job_id: int, render: JobRenderer, logs_limit: int = LOGS_LIMIT, status_code: int = 200
    ) -> JSONResponse:
        """The job, with the version it reflects and the projection's position as headers."""
        view = visible_view(job_id, render.user)
        with stack.read_store.reading() as db:
            body = render.job(view, views.job_logs(db, job_id, logs_limit))
            headers = {
                "X-Job-Version": str(views.job_version(db, job_id)),
                "X-Projection-Position": str(views.projected_position(db)),
            }
        return JSONResponse(body, status_code=status_code, headers=headers)

    async def wait_for_version(job_id: int, version: int) -> None:
        """Read-your-writes for readers: wait, bounded, until the view has reached `version`."""
        deadline = time.monotonic() + stack.settings.command_timeout
        while time.monotonic() < deadline:
            with stack.read_store.reading() as db:
                if views.job_version(db, job_id) >= version:
                    return
            await asyncio.sleep(0.01)

    async def wait_for_projection(position: int | None) -> None:
        """Read-your-writes: wait, bounded, until the projection has applied `position`."""
        if position is None:
            return
        deadline = time.monotonic() + stack.settings.command_timeout
        while time.monotonic() < deadline:
            with stack.read_store.reading() as db:
                if views.projected_position(db) >= position:
                    return
            await asyncio.sleep(0.01)

    async def send(command: Command) -> Outcome:
        return await send_command(stack.bus, command)

    async def act(
        command: Command,
        render: JobRenderer,
        refusal_status: int | None = 400,
        status_code: int = 200,
        until_ended: bool = False,
    ) -> Any:
        outcome = await send(command)
        if outcome.job_id is None or outcome.version is None:
            raise ApiError(404, NOT_FOUND)
        if not outcome.accepted and refusal_status is not None:
            raise ApiError(refusal_status, [outcome.reason])
        await wait_for_projection(outcome.position)
        if until_ended:
            await wait_until_ended(outcome.job_id)
        return read_job(outcome.job_id, render, status_code=status_code)

    async def wait_until_ended(job_id: int) -> None:
        """`?no_async`: the answer shows the run's end (bounded: then it shows where it is)."""
        deadline = time.monotonic() + NO_ASYNC_WAIT
        while time.monotonic() < deadline:
            with stack.read_store.reading() as db:
                view = views.job_view(db, job_id)
            if view is None or view["status"] in FINAL:
                return
            await asyncio.sleep(0.05)

    @app.get(
        "/api/v2/jobs/",
        response_model=JobPage,
        summary="List jobs, newest first",
        openapi_extra={"parameters": OPENAPI_PARAMETERS},
    )
    def list_jobs(
        request: Request, render: Renderer, background: BackgroundTasks
    ) -> dict[str, Any]:
        params = request.query_params
        with stack.read_store.reading() as db:
            pipeline_ids = views.pipeline_ids(db)
            hidden = render.catalog.hidden_projects(render.user)
            now = datetime.now(UTC)
            query = list_query(params, render.catalog, pipeline_ids, now, hidden)
            count, page = views.job_page(db, replace(query, hidden_project_ids=hidden))
        ids_only = lenient_bool(params.get("ids_only"))
        project_id = dict(query.equal).get("project_id")
        assert project_id is None or isinstance(project_id, int)
        if ids_only and (query.pipeline_ids is not None or project_id is not None):
            background.add_task(heartbeats.seen, render.catalog, query.pipeline_ids, project_id)
        return {
            **page_envelope(request, count, query.limit, query.offset),
            "results": [
                _id_and_slug(view, render.catalog) if ids_only else render.job(view, None)
                for view in page
            ],
            "user_permissions": ["create"] if may_create(render.user, query) else [],
        }

    def may_create(user: User, query: JobQuery) -> bool:
        """The page offers "create" for the project of `project_id` (or anywhere to superusers)."""
        project_id = dict(query.equal).get("project_id")
        return user.is_superuser or (
            isinstance(project_id, int) and user.can("create_job", project_id)
        )

    @app.post(
        "/api/v2/jobs/",
        response_model=Job,
        status_code=201,
        summary="Create a job (start_now queues it)",
        openapi_extra=JOB_BODY_DOC,
    )
    async def create_job(request: Request, render: Renderer, start_now: str | None = None) -> Any:
        spec = validated(JobBody, await read_body(request))
        check_references(
            render.catalog, spec, render.user
        )  # the body first, as Antenna (CONTRACT.md 2)
        require(render.user, "create_job", spec.project_id)
        run_now = lenient_bool(start_now)
        if run_now:
            single = spec.source_image_single_id is not None
            require(render.user, run_permission(spec.job_type_key, single), spec.project_id)
        command = CreateJob(**spec.model_dump(), start_now=run_now, actor=render.user.email)
        return await act(command, render, status_code=201)

    @app.get(
        "/api/v2/jobs/{job_id:int}/", summary="A job with its progress and logs", response_model=Job
    )
    async def get_job(
        job_id: int,
        render: Renderer,
        logs_limit: Annotated[int, Query(ge=1, le=5000)] = LOGS_LIMIT,
        min_version: Annotated[
            int | None, Query(ge=1, description="wait (bounded) until the view has this version")
        ] = None,
        as_of_version: Annotated[
            int | None, Query(ge=1, description="the job as it was at this version")
        ] = None,
        as_of: Annotated[
            str | None,
            Query(description="the job as it was at this ISO 8601 time (no offset: TIME_ZONE)"),
        ] = None,
    ) -> Any:
        if as_of_version is None and as_of is None:
            if min_version is not None:
                await wait_for_version(job_id, min_version)
            return read_job(job_id, render, logs_limit)
        moment = None if as_of is None else _moment(as_of, time_zone)
        visible_view(job_id, render.user)
        history = await asyncio.to_thread(stack.event_store.job_history, job_id)
        last = history[-1].version
        if as_of_version is not None and as_of_version > last:
            reason = f"Job {job_id} has no version {as_of_version}; its last is {last}."
            raise ApiError(400, {"as_of_version": [reason]})
        earlier = events_as_of(history, as_of_version, moment)
        then = view_as_of(earlier)
        # It may have been in another project then: that one must be visible too.
        if then is None or not stack.catalog.current().visible(render.user, then[0]["project_id"]):
            raise ApiError(404, NOT_FOUND)
        view, logs = then
        headers = {"X-Job-Version": str(earlier[-1].version)}  # log lines count, as live
        return JSONResponse(render.job(view, logs[:logs_limit]), headers=headers)

    @app.get(
        "/api/v2/jobs/{job_id:int}/attempts/", summary="A job's attempts, one per run or retry"
    )
    def job_attempts(job_id: int, render: Renderer) -> list[dict[str, Any]]:
        visible_view(job_id, render.user)
        return [
            {
                "attempt": attempt.attempt,
                "status": attempt.status,
                "started_at": render.local(attempt.started_at),
                "finished_at": render.local(attempt.finished_at),
                "duration": duration(attempt.started_at, attempt.finished_at),
                "reason": attempt.reason,
            }
            for attempt in attempts(stack.event_store.job_history(job_id))
        ]

    @app.put(
        "/api/v2/jobs/{job_id:int}/",
        response_model=Job,
        summary="Replace a job's writable fields",
        openapi_extra=JOB_BODY_DOC,
    )
    async def replace_job(job_id: int, request: Request, render: Renderer) -> Any:
        spec = validated(JobBody, await read_body(request))
        return await update(visible_view(job_id, render.user), spec, set(SPEC_FIELDS), render)

    @app.patch(
        "/api/v2/jobs/{job_id:int}/",
        response_model=Job,
        summary="Change some of a job's writable fields",
        openapi_extra=JOB_BODY_DOC,
    )
    async def change_job(job_id: int, request: Request, render: Renderer) -> Any:
        data = await read_body(request)
        current = visible_view(job_id, render.user)
        spec = validated(JobBody, {**current, **data})
        return await update(current, spec, set(data) & SPEC_FIELDS, render)

    async def update(
        view: dict[str, Any], spec: JobSpec, fields: set[str], render: JobRenderer
    ) -> Any:
        """Change the job of `view` (one the caller may see) to `spec`, in `fields` only."""
        job_id = view["id"]
        require(render.user, "update_job", view["project_id"])
        if spec.project_id != view["project_id"]:
            # Moving a job into a project is creating one there.
            require(render.user, "create_job", spec.project_id)
        check_references(render.catalog, spec, render.user)
        export = render.catalog.exports_by_job.get(job_id)
        if errors := job_move_errors(job_id, spec.project_id, export):
            raise ApiError(400, errors)
        changes = spec.model_dump(include=fields)
        return await act(UpdateJob(job_id=job_id, changes=changes, actor=render.user.email), render)

    @app.delete(
        "/api/v2/jobs/{job_id:int}/", status_code=204, summary="Delete a job (its history stays)"
    )
    async def delete_job(job_id: int, user: Caller) -> Response:
        require(user, "delete_job", visible_view(job_id, user)["project_id"])
        outcome = await send(DeleteJob(job_id=job_id, actor=user.email))
        if not outcome.accepted:
            raise ApiError(404, NOT_FOUND)
        await wait_for_projection(outcome.position)
        return Response(status_code=204)

    def may_run(job_id: int, user: User) -> None:
        """run, cancel and retry check the job type's run permission on the job's project."""
        view = visible_view(job_id, user)
        single = view["source_image_single_id"] is not None
        require(user, run_permission(view["job_type_key"], single), view["project_id"])

    @app.post("/api/v2/jobs/{job_id:int}/run/", summary="Queue a job", response_model=Job)
    async def run_job(job_id: int, render: Renderer, no_async: str | None = None) -> Any:
        may_run(job_id, render.user)
        command = RunJob(job_id=job_id, actor=render.user.email)
        return await act(command, render, until_ended=lenient_bool(no_async))

    @app.post("/api/v2/jobs/{job_id:int}/cancel/", summary="Cancel a job", response_model=Job)
    async def cancel_job(job_id: int, render: Renderer) -> Any:
        may_run(job_id, render.user)
        # Cancelling a job that has ended answers with the job unchanged (CONTRACT.md 16).
        command = CancelJob(job_id=job_id, actor=render.user.email)
        return await act(command, render, refusal_status=None)

    @app.post(
        "/api/v2/jobs/{job_id:int}/retry/",
        summary="Run an ended job again as a new attempt",
        response_model=Job,
    )
    async def retry_job(job_id: int, render: Renderer, no_async: str | None = None) -> Any:
        may_run(job_id, render.user)
        command = RetryJob(job_id=job_id, actor=render.user.email)
        return await act(command, render, until_ended=lenient_bool(no_async))

    add_catalog_routes(app, stack, renderer)

    @app.get("/api/v2/jobs/{job_id:int}/history/", summary="A job's events, in order, filtered")
    async def job_history(
        request: Request,
        job_id: int,
        user: Caller,
        type: Annotated[str | None, Query(description="only events of this type")] = None,
        attempt: Annotated[int | None, Query(ge=1, description="only this attempt's")] = None,
        from_version: Annotated[int, Query(ge=1)] = 1,
        to_version: Annotated[int | None, Query(ge=1)] = None,
        since: Annotated[str | None, Query(description="ISO 8601; no offset: TIME_ZONE")] = None,
        until: Annotated[str | None, Query(description="ISO 8601; no offset: TIME_ZONE")] = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = HISTORY_PAGE,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        check_event_type(type)
        history = await asyncio.to_thread(stack.event_store.job_history, job_id)
        projects = [p for event in history if (p := project_set_by(event)) is not None]
        if not projects or not stack.catalog.current().visible(user, projects[-1]):
            raise ApiError(404, NOT_FOUND)
        require(user, "view_history", projects[-1])
        after = None if since is None else _moment(since, time_zone, "since")
        before = None if until is None else _moment(until, time_zone, "until")
        chosen = [
            (event, number)
            for event, number in zip(history, attempts_of(history), strict=True)
            if (type is None or event.type == type)
            and (attempt is None or number == attempt)
            and from_version <= event.version <= (to_version or event.version)
            and (after is None or event.occurred_at >= after)
            and (before is None or event.occurred_at <= before)
        ]
        return {
            **page_envelope(request, len(chosen), limit, offset),
            "results": [
                {**event.model_dump(mode="json"), "attempt": number}
                for event, number in chosen[offset : offset + limit]
            ],
        }

    def live(stream: AsyncIterator[str]) -> StreamingResponse:
        """Server-Sent Events that end when the server begins to stop, so that it stops
        without cutting requests off."""
        return StreamingResponse(until(stack.closing, stream), media_type="text/event-stream")

    def resume_after(header: str | None, fallback: int) -> int:
        """Where a reconnecting client stopped: its Last-Event-ID, else the query's start."""
        return int(header) if header and header.strip().isdigit() else fallback

    @app.get(
        "/api/v2/jobs/{job_id:int}/events/",
        summary="A job's events as Server-Sent Events, live",
        response_class=StreamingResponse,
    )
    async def job_event_stream(
        job_id: int,
        user: Caller,
        from_version: Annotated[int, Query(ge=0, description="send events after this")] = 0,
        follow: Annotated[str | None, Query(description="false: stop at the last one")] = None,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> StreamingResponse:
        require(user, "view_history", visible_view(job_id, user)["project_id"])
        after = resume_after(last_event_id, from_version)

        async def stream() -> AsyncIterator[str]:
            feed = events(js, event_subject(job_id, ">"), 1, follows(follow))
            async for event in feed:
                if event.version > after:
                    yield server_sent(event, event.version)

        return live(stream())

    @app.get(
        "/api/v2/events/",
        summary="All jobs' events as Server-Sent Events, live",
        response_class=StreamingResponse,
    )
    async def event_stream(
        user: Caller,
        from_position: Annotated[int, Query(ge=0, description="send events after this")] = 0,
        project: Annotated[int | None, Query(description="only this project's jobs")] = None,
        type: Annotated[str | None, Query(description="only events of this type")] = None,
        status: Annotated[JobStatus | None, Query(description="only changes to it")] = None,
        follow: Annotated[str | None, Query(description="false: stop at the last one")] = None,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> StreamingResponse:
        if user is ANONYMOUS:
            require(user, "view_history", 0)  # 401: histories are for the projects' people
        check_event_type(type)
        start = await first_sequence_after(js, resume_after(last_event_id, from_position))
        projects: dict[int, int | None] = {}

        def project_of(event: EventEnvelope) -> int | None:
            changes = event.data.get("spec") or event.data.get("changes") or {}
            if "project_id" in changes:
                projects[event.job_id] = changes["project_id"]
            elif event.job_id not in projects:
                with stack.read_store.reading() as db:
                    view = views.job_view(db, event.job_id)
                projects[event.job_id] = view["project_id"] if view else None
            return projects[event.job_id]

        def wanted(event: EventEnvelope) -> bool:
            project_id = project_of(event)
            # A deleted job's project is unknown here: its events are for superusers only.
            if project_id is None:
                allowed = user.is_superuser
            else:
                allowed = user.can("view_history", project_id)
            return (
                allowed
                and (project is None or project_id == project)
                and (type is None or event.type == type)
                and (status is None or event.data.get("status") == status)
            )

        async def stream() -> AsyncIterator[str]:
            async for event in events(js, "jobs.events.>", start, follows(follow)):
                if wanted(event):
                    yield server_sent(event, event.position or 0)

        return live(stream())

    @app.post("/api/v2/jobs/{job_id:int}/tasks/", summary="Hand tasks of an async job to a worker")
    async def fetch_tasks(
        job_id: int, request: Request, user: Caller, background: BackgroundTasks
    ) -> dict[str, Any]:
        wanted = validated(TasksRequest, await read_body(request))  # before the job, as Antenna
        view = visible_view(job_id, user)
        require(user, f"tasks_{view['job_type_key']}_job", view["project_id"])
        worker_seen(background, view)
        if view["dispatch_mode"] != "async_api":
            raise ApiError(400, ["Only async_api jobs have fetchable tasks"])
        if view["status"] not in ACTIVE:
            await note(
                job_id,
                f"Tasks requested for non-active job (status={view['status']}); returning empty."
                f" {request.state.caller}",
                user.email,
            )
            return {"tasks": []}
        if view["pipeline_id"] is None:
            raise ApiError(400, ["This job does not have a pipeline configured"])
        try:
            messages = await task_queue.take(job_id, view["attempt"], wanted.batch_size)
        except (NatsError, OSError) as error:
            raise ApiError(503, {"error": "Task queue temporarily unavailable"}) from error
        if messages:
            await note(
                job_id,
                f"Tasks fetched: requested={wanted.batch_size}, delivered={len(messages)},"
                f" {request.state.caller}",
                user.email,
            )
        return {"tasks": [{**json.loads(m.data), "reply_subject": m.reply} for m in messages]}

    def worker_seen(background: BackgroundTasks, view: JobView) -> None:
        if view["pipeline_id"] is not None:
            pipelines = [view["pipeline_id"]]
            catalog = stack.catalog.current()
            background.add_task(heartbeats.seen, catalog, pipelines, view["project_id"])

    async def note(job_id: int, message: str, actor: str, while_running: int | None = None) -> int:
        """A log line about workers' calls, and its position; losing one must not fail the
        call (position 0)."""
        with contextlib.suppress(TimeoutError):
            command = NoteWorkerActivity(
                job_id=job_id, message=message, actor=actor, while_running=while_running
            )
            outcome = await stack.bus.send(command)
            return outcome.position or 0
        return 0

    @app.post("/api/v2/jobs/{job_id:int}/result/", summary="Record workers' results of tasks")
    async def record_results(
        job_id: int, request: Request, user: Caller, background: BackgroundTasks
    ) -> dict[str, Any]:
        view = visible_view(job_id, user)  # the job first, then the body, as Antenna
        require(user, f"result_{view['job_type_key']}_job", view["project_id"])
        worker_seen(background, view)
        body = validated(ResultsRequest, await read_body(request))
        # Each distinct task once: a result posted twice in one request counts once.
        distinct = {item.reply_subject: item for item in body.results}
        try:
            commands = {
                subject: result_command(job_id, item, await task_image(job_id, subject), user.email)
                for subject, item in distinct.items()
            }
        except (TimeoutError, NatsError) as error:
            raise queue_unavailable(job_id) from error
        positions = []
        latest = None  # the job after the last result
        for subject, command in commands.items():
            # Logged as queued before it is applied: the result may end the job.
            line = (
                f"Queued pipeline result: task_id={command.command_id}, reply_subject={subject},"
                f" {request.state.caller}"
            )
            positions.append(await note(job_id, line, user.email))
            try:
                outcome = await stack.bus.send(command)  # late: refused, and still acknowledged
            except (TimeoutError, NatsError) as error:
                raise queue_unavailable(job_id) from error
            # The task is acknowledged last, once its result is stored (or known to be late).
            with contextlib.suppress(NatsError):
                await connection(stack.broker).publish(subject, b"+ACK")
            positions.append(outcome.position or 0)
            latest = outcome.job
        if latest is not None and (progress := throughput(latest)):
            attempt = latest["attempt"]
            positions.append(await note(job_id, progress, user.email, while_running=attempt))
        await wait_for_projection(max(positions, default=None))
        receipts = [
            {
                "reply_subject": item.reply_subject,
                "status": "queued",
                "task_id": commands[item.reply_subject].command_id,
            }
            for item in body.results
        ]
        return {
            "status": "accepted",
            "job_id": job_id,
            "results_queued": len(receipts),
            "tasks": receipts,
        }

    def queue_unavailable(job_id: int) -> ApiError:
        detail = "Task queue temporarily unavailable"
        return ApiError(503, {"status": "error", "job_id": job_id, "detail": detail})

    async def task_image(job_id: int, reply_subject: str) -> str | None:
        """The image of the task a reply subject acknowledges; None when the task is no longer
        out (answered already, or its queue emptied); 400 if it is not a task of the job."""
        ref = task_ref(reply_subject, job_id)
        not_ours = {"results": [f"{reply_subject} is not a task of job {job_id}"]}
        if ref is None:
            raise ApiError(400, not_ours)
        try:
            task = await js.get_msg(TASKS_STREAM, seq=ref.stream_seq)
        except NotFoundError:
            return None
        if task.subject != task_subject(job_id) or task.data is None:
            raise ApiError(400, not_ours)
        return str(json.loads(task.data)["image_id"])

    describe_errors(app)
    bus = bus_document(app.version)

    @app.get("/asyncapi", response_class=HTMLResponse, summary="The bus, for outside clients")
    def asyncapi_page() -> str:
        return get_asyncapi_html(bus, try_it_out_path=None)

    @app.get("/asyncapi.json", summary="The AsyncAPI 3.0 document of the bus")
    def asyncapi_document() -> Any:
        return bus.to_jsonable()

    return app


def attempts_of(history: list[EventEnvelope]) -> list[int]:
    """The attempt each event belongs to: its own `attempt`, else the one it happened in."""
    current, numbers = 1, []
    for event in history:
        current = int(event.data.get("attempt", current))
        numbers.append(current)
    return numbers


# The three error shapes the UI parses (CONTRACT.md section 1).
ERROR_BODY = {
    "anyOf": [
        {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]},
        {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        {"type": "array", "items": {"type": "string"}},
    ]
}
ERRORS = {
    "400": "Bad input: each field (or parameter) named with what is wrong with it",
    "401": "Authentication credentials were not provided, or the token is invalid",
    "403": "The caller may not do this on the job's project",
    "404": "Not found, or not visible to the caller",
}
WRITE_ERRORS = {
    "415": "Not JSON, form-urlencoded or multipart",
    "503": "The command handler or the task queue did not answer in time",
}


def describe_errors(app: FastAPI) -> None:
    """Document the error answers every operation may give, in place of FastAPI's 422, which
    this API never sends (its validation errors are 400s, as DRF's)."""
    generate = app.openapi

    def document() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        for operations in schema["paths"].values():
            for method, operation in operations.items():
                responses = operation["responses"]
                responses.pop("422", None)
                errors = ERRORS | (WRITE_ERRORS if method in ("post", "put", "patch") else {})
                for status, description in errors.items():
                    content = {"application/json": {"schema": ERROR_BODY}}
                    responses.setdefault(status, {"description": description, "content": content})
        schema["components"]["schemas"].pop("HTTPValidationError", None)
        schema["components"]["schemas"].pop("ValidationError", None)
        return schema

    app.openapi = document  # type: ignore[method-assign]


async def until(stop: asyncio.Event, items: AsyncIterator[str]) -> AsyncIterator[str]:
    """The items until `stop` is set (or the reader goes away): then the one being awaited
    is cancelled, which closes `items`."""
    stopping = asyncio.ensure_future(stop.wait())
    step: asyncio.Future[str] | None = None
    try:
        while True:
            step = asyncio.ensure_future(anext(items))
            await asyncio.wait({step, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                return
            try:
                item = step.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        stopping.cancel()
        # Python 3.11's wait_for can swallow a cancellation (as in a NATS request under way):
        # cancel until the step has ended, which closes `items`.
        while step is not None and not step.done():
            step.cancel()
            await asyncio.wait({step}, timeout=0.1)
        if step is not None and not step.cancelled():
            step.exception()  # retrieved: the stream is over either way


def server_sent(event: EventEnvelope, event_id: int) -> str:
    return f"id: {event_id}\nevent: {event.type}\ndata: {event.model_dump_json()}\n\n"


def follows(follow: str | None) -> bool:
    """Streams stay open unless `follow` says otherwise (lenient, as the other booleans)."""
    return follow is None or lenient_bool(follow)


def result_command(job_id: int, item: TaskResult, image_id: str | None, actor: str) -> RecordResult:
    """The result as a command; for a task no longer out (`image_id` None), one the job
    refuses and records, naming the image the result claims."""
    ref = task_ref(item.reply_subject, job_id)
    assert ref is not None  # task_image checked it
    if image_id is None:
        late = record_result(job_id, ref.attempt, claimed_image(item.result), item.result, actor)
        return late.model_copy(update={"task_gone": True})
    return record_result(job_id, ref.attempt, image_id, item.result, actor)


@contextlib.asynccontextmanager
async def in_process_client(
    stack: Stack, token: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the API served in this process, without a socket; its `details` URLs
    are those `serve` gives with the same settings."""
    transport = httpx.ASGITransport(app=build_app(stack))
    headers = {"Authorization": f"Token {token}"} if token else {}
    base_url = f"http://{stack.settings.api_host}:{stack.settings.api_port}"
    async with httpx.AsyncClient(transport=transport, base_url=base_url, headers=headers) as client:
        yield client


def check_event_type(type: str | None) -> None:
    """400 naming the `type` parameter unless it is absent or a job event's type."""
    if type is not None and type not in JOB_EVENT_TYPES:
        choices = ", ".join(sorted(JOB_EVENT_TYPES))
        raise ApiError(400, {"type": [f"{type} is not an event type; one of: {choices}"]})


class AppendSlash:
    """GET or HEAD of an /api/v2/ path without its trailing slash: 301 to the path with it,
    query kept, as Django does (CONTRACT.md section 1; the worker polls `/api/v2/jobs?…`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] == "http"
            and scope["method"] in ("GET", "HEAD")
            and path.startswith("/api/v2/")
            and not path.endswith("/")
        ):
            query = scope["query_string"].decode("latin-1")
            location = f"{path}/?{query}" if query else f"{path}/"
            await RedirectResponse(location, status_code=301)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _id_and_slug(view: JobView, catalog: CatalogSnapshot) -> dict[str, Any]:
    """A job as the worker's poll (`ids_only`) lists it."""
    pipeline = catalog.get("pipelines", view["pipeline_id"])
    return {
        "id": view["id"],
        "pipeline_slug": pipeline["slug"] if pipeline else None,
        "user_permissions": [],
    }


def _moment(value: str, time_zone: ZoneInfo, parameter: str = "as_of") -> datetime:
    """An ISO 8601 time; one without an offset is in the zone the job's times are shown in."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(400, {parameter: [BAD_TIME]}) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=time_zone)
