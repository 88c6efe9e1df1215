"""The HTTP API: Antenna's /api/v2/jobs/ on the read store, commands through the bus."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import httpx
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from api.bodies import JobBody, check_references, field_errors, read_body, validated
from api.bootstrap import Stack
from api.errors import ApiError
from api.job_json import JobRenderer
from domain.commands import (
    SPEC_FIELDS,
    CancelJob,
    Command,
    CreateJob,
    DeleteJob,
    JobSpec,
    RetryJob,
    RunJob,
    UpdateJob,
)
from domain.envelope import Outcome
from projections import views

DEFAULT_PAGE_SIZE = 10
LOGS_LIMIT = 1000
# The body is read by hand (JSON, form or multipart), so its schema is declared here.
JOB_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "content": {
            media: {"schema": JobBody.model_json_schema()}
            for media in (
                "application/json",
                "application/x-www-form-urlencoded",
                "multipart/form-data",
            )
        },
        "required": True,
    }
}


def lenient_bool(value: str | None) -> bool:
    """Antenna's query booleans: absent false, empty true, false/0 false, anything else true."""
    if value is None:
        return False
    return value.strip().lower() not in ("false", "0")


def build_app(stack: Stack) -> FastAPI:
    app = FastAPI(
        title="jobledger",
        description="An event-sourced job system with Antenna's jobs API.",
        version="0.1.0",
    )
    time_zone = ZoneInfo(stack.settings.time_zone)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(error.body, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(field_errors(list(error.errors())), status_code=400)

    def renderer(request: Request, format: str | None = None) -> JobRenderer:
        return JobRenderer(stack.catalog, str(request.base_url), time_zone, format == "api")

    Renderer = Annotated[JobRenderer, Depends(renderer)]

    def read_job(job_id: int, render: JobRenderer, logs_limit: int = LOGS_LIMIT) -> dict[str, Any]:
        with stack.read_store.reading() as db:
            view = views.job_view(db, job_id)
            if view is None:
                raise ApiError(404, {"detail": "Not found."})
            return render.job(view, views.job_logs(db, job_id, logs_limit))

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
        try:
            return await stack.bus.send(command)
        except TimeoutError as error:
            detail = "The command handler did not answer in time."
            raise ApiError(503, {"detail": detail}) from error

    async def act(command: Command, render: JobRenderer, refusal_status: int | None = 400) -> Any:
        outcome = await send(command)
        if outcome.job_id is None or outcome.version is None:
            raise ApiError(404, {"detail": "Not found."})
        if not outcome.accepted and refusal_status is not None:
            raise ApiError(refusal_status, [outcome.reason])
        await wait_for_projection(outcome.position)
        return read_job(outcome.job_id, render)

    @app.get("/api/v2/jobs/", summary="List jobs, newest first")
    def list_jobs(
        request: Request,
        render: Renderer,
        limit: Annotated[str | None, Query()] = None,
        offset: Annotated[str | None, Query()] = None,
    ) -> dict[str, Any]:
        page_size = _positive_or(limit, DEFAULT_PAGE_SIZE, minimum=1)
        start = _positive_or(offset, 0, minimum=0)
        with stack.read_store.reading() as db:
            count, page = views.job_page(db, page_size, start)
        following, preceding = start + page_size, max(start - page_size, 0)
        return {
            "count": count,
            "next": _page_url(request, page_size, following) if following < count else None,
            "previous": _page_url(request, page_size, preceding) if start > 0 else None,
            "results": [render.job(view, None) for view in page],
            "user_permissions": [],
        }

    @app.post(
        "/api/v2/jobs/",
        status_code=201,
        summary="Create a job (start_now queues it)",
        openapi_extra=JOB_BODY_DOC,
    )
    async def create_job(request: Request, render: Renderer, start_now: str | None = None) -> Any:
        spec = validated(JobBody, await read_body(request))
        check_references(stack.catalog, spec)
        command = CreateJob(**spec.model_dump(), start_now=lenient_bool(start_now))
        return await act(command, render)

    @app.get("/api/v2/jobs/{job_id}/", summary="A job with its progress and logs")
    def get_job(
        job_id: int,
        render: Renderer,
        logs_limit: Annotated[int, Query(ge=1, le=5000)] = LOGS_LIMIT,
    ) -> dict[str, Any]:
        return read_job(job_id, render, logs_limit)

    @app.put(
        "/api/v2/jobs/{job_id}/",
        summary="Replace a job's writable fields",
        openapi_extra=JOB_BODY_DOC,
    )
    async def replace_job(job_id: int, request: Request, render: Renderer) -> Any:
        spec = validated(JobBody, await read_body(request))
        return await update(job_id, spec, set(SPEC_FIELDS), render)

    @app.patch(
        "/api/v2/jobs/{job_id}/",
        summary="Change some of a job's writable fields",
        openapi_extra=JOB_BODY_DOC,
    )
    async def change_job(job_id: int, request: Request, render: Renderer) -> Any:
        data = await read_body(request)
        current = current_view(job_id)
        spec = validated(JobBody, {**current, **data})
        return await update(job_id, spec, set(data) & SPEC_FIELDS, render)

    async def update(job_id: int, spec: JobSpec, fields: set[str], render: JobRenderer) -> Any:
        current_view(job_id)
        check_references(stack.catalog, spec)
        changes = spec.model_dump(include=fields)
        return await act(UpdateJob(job_id=job_id, changes=changes), render)

    @app.delete(
        "/api/v2/jobs/{job_id}/", status_code=204, summary="Delete a job (its history stays)"
    )
    async def delete_job(job_id: int) -> Response:
        outcome = await send(DeleteJob(job_id=job_id))
        if not outcome.accepted:
            raise ApiError(404, {"detail": "Not found."})
        await wait_for_projection(outcome.position)
        return Response(status_code=204)

    def current_view(job_id: int) -> dict[str, Any]:
        with stack.read_store.reading() as db:
            view = views.job_view(db, job_id)
        if view is None:
            raise ApiError(404, {"detail": "Not found."})
        return view

    @app.post("/api/v2/jobs/{job_id}/run/", summary="Queue a job")
    async def run_job(job_id: int, render: Renderer) -> Any:
        return await act(RunJob(job_id=job_id), render)

    @app.post("/api/v2/jobs/{job_id}/cancel/", summary="Cancel a job")
    async def cancel_job(job_id: int, render: Renderer) -> Any:
        # Cancelling a job that has ended answers with the job unchanged (CONTRACT.md 16).
        return await act(CancelJob(job_id=job_id), render, refusal_status=None)

    @app.post("/api/v2/jobs/{job_id}/retry/", summary="Run an ended job again as a new attempt")
    async def retry_job(job_id: int, render: Renderer) -> Any:
        return await act(RetryJob(job_id=job_id), render)

    @app.get("/api/v2/jobs/{job_id}/history/", summary="Every event of a job, in order")
    async def job_history(job_id: int) -> list[dict[str, Any]]:
        history = await asyncio.to_thread(stack.event_store.job_history, job_id)
        if not history:
            raise ApiError(404, {"detail": "Not found."})
        return [event.model_dump(mode="json", exclude={"position"}) for event in history]

    return app


@contextlib.asynccontextmanager
async def in_process_client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the API served in this process, without a socket."""
    transport = httpx.ASGITransport(app=build_app(stack))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8000") as client:
        yield client


def _positive_or(value: str | None, default: int, minimum: int) -> int:
    """Antenna's paging: an invalid or out-of-range value silently means the default."""
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    return number if number >= minimum else default


def _page_url(request: Request, limit: int, offset: int) -> str:
    return str(request.url.include_query_params(limit=limit, offset=offset))
