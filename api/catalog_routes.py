"""The catalog over HTTP: each kind listed, read, created and changed at Antenna's paths.

Writes are SaveCatalogObject commands on the bus, like every change to a job. Changing a
project's objects takes its owner (or a superuser); pipelines and processing services, which
serve every project, take a superuser.
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

from api.auth import require
from api.bodies import body_doc, read_body, validated
from api.bootstrap import Stack
from api.catalog_io import Entries, projected
from api.errors import HANDLER_TIMEOUT, NOT_FOUND, ApiError, send_command
from api.job_json import JobRenderer
from api.list_query import page_envelope, positive_or
from api.schemas import CATALOG_DETAILS, Page
from domain.catalog import FIELDS, project_of, save_errors, unique_errors
from domain.commands import MAX_ID, CatalogKind, SaveCatalogObject
from domain.permissions import ANONYMOUS, User
from infra.catalog import referents
from projections import views

# Where each kind lives under /api/v2/.
PATHS: dict[CatalogKind, str] = {
    "projects": "projects",
    "deployments": "deployments",
    "collections": "captures/collections",
    "captures": "captures",
    "pipelines": "ml/pipelines",
    "services": "ml/processing_services",
    "exports": "exports",
}
# The job field that refers to objects of these kinds: their details list those jobs.
JOB_COLUMNS = {
    "deployments": "deployment_id",
    "collections": "source_image_collection_id",
    "captures": "source_image_single_id",
}
FORBIDDEN = {"detail": "You do not have permission to perform this action."}
PAGE_SIZE = 10


def may_change(
    user: User, kind: CatalogKind, object_id: int | None, fields: dict[str, Any]
) -> None:
    """401 for anonymous callers; 403 unless superuser or owner of the object's project."""
    project_id = project_of(kind, object_id, fields)
    if project_id is not None:
        require(user, "change_project", project_id)
    elif user is ANONYMOUS:
        require(user, "change_project", 0)
    elif not user.is_superuser:
        raise ApiError(403, FORBIDDEN)


def add_catalog_routes(app: FastAPI, stack: Stack, renderer: Callable[..., JobRenderer]) -> None:
    Renderer = Annotated[JobRenderer, Depends(renderer)]

    def found(render: JobRenderer, kind: CatalogKind, object_id: int) -> dict[str, Any]:
        """The object at its details URL; 404 when there is none or its project is hidden."""
        detail = render.detail(kind, object_id) if 0 < object_id <= MAX_ID else None
        project_id = None if detail is None else project_of(kind, object_id, detail)
        if detail is None or (
            project_id is not None and not render.catalog.visible(render.user, project_id)
        ):
            raise ApiError(404, NOT_FOUND)
        if kind in JOB_COLUMNS:
            with stack.read_store.reading() as db:
                jobs = views.jobs_referring_to(db, JOB_COLUMNS[kind], object_id)
            hidden = render.catalog.hidden_projects(render.user)
            detail["jobs"] = [render.short_job(j) for j in jobs if j["project_id"] not in hidden]
        return detail

    async def save(
        request: Request, render: JobRenderer, kind: CatalogKind, object_id: int | None
    ) -> dict[str, Any]:
        """Create (no id) or change the object from the request's body; 201 or 200 with it."""
        partial = request.method == "PATCH"
        if object_id is not None:
            may_change(render.user, kind, object_id, found(render, kind, object_id))
        body = await read_body(request)
        before = render.catalog.get(kind, object_id)
        model = validated(FIELDS[kind], {**(before or {}), **body} if partial else body)
        fields = model.model_dump(mode="json")
        may_change(render.user, kind, object_id, fields)
        lookup = render.catalog.seen_by(render.user, referents(render.catalog, stack.read_store))
        if errors := save_errors(kind, object_id, before, fields, lookup):
            raise ApiError(400, errors)
        if taken := unique_errors(kind, object_id, fields, render.catalog.objects[kind]):
            raise ApiError(400, taken)
        command = SaveCatalogObject(
            kind=kind,
            object_id=object_id,
            fields=body if partial else fields,
            partial=partial,
            actor=render.user.email,
        )
        outcome = await send_command(stack.bus, command)
        if not outcome.accepted or outcome.object_id is None:
            raise ApiError(400, [outcome.reason])
        await projected(stack.read_store, outcome.position or 0, stack.settings.command_timeout)
        render.catalog = stack.catalog.current()
        return found(render, kind, outcome.object_id)

    def routes_for(kind: CatalogKind, path: str) -> None:
        noun = kind.rstrip("s")

        detail_model = CATALOG_DETAILS[kind]

        @app.get(
            f"/api/v2/{path}/",
            summary=f"List the catalog's {kind}",
            tags=["catalog"],
            response_model=Page[detail_model],  # type: ignore[valid-type]
        )
        def list_objects(request: Request, render: Renderer) -> dict[str, Any]:
            limit = positive_or(request.query_params.get("limit"), PAGE_SIZE, minimum=1)
            offset = positive_or(request.query_params.get("offset"), 0, minimum=0)
            visible = []
            for object_id in sorted(render.catalog.objects[kind]):
                try:
                    visible.append(found(render, kind, object_id))
                except ApiError:
                    continue
            return {
                **page_envelope(request, len(visible), limit, offset),
                "results": visible[offset : offset + limit],
            }

        @app.get(
            f"/api/v2/{path}/{{object_id:int}}/",
            summary=f"A {noun}",
            tags=["catalog"],
            response_model=detail_model,
        )
        def get_object(object_id: int, render: Renderer) -> dict[str, Any]:
            return found(render, kind, object_id)

        @app.post(
            f"/api/v2/{path}/",
            status_code=201,
            summary=f"Create a {noun}",
            tags=["catalog"],
            response_model=detail_model,
            openapi_extra=body_doc(FIELDS[kind]),
        )
        async def create_object(request: Request, render: Renderer) -> dict[str, Any]:
            return await save(request, render, kind, None)

        @app.put(
            f"/api/v2/{path}/{{object_id:int}}/",
            summary=f"Replace a {noun}",
            tags=["catalog"],
            response_model=detail_model,
            openapi_extra=body_doc(FIELDS[kind]),
        )
        async def replace_object(
            object_id: int, request: Request, render: Renderer
        ) -> dict[str, Any]:
            return await save(request, render, kind, object_id)

        @app.patch(
            f"/api/v2/{path}/{{object_id:int}}/",
            summary=f"Change a {noun}",
            tags=["catalog"],
            response_model=detail_model,
            openapi_extra=body_doc(FIELDS[kind]),
        )
        async def change_object(
            object_id: int, request: Request, render: Renderer
        ) -> dict[str, Any]:
            return await save(request, render, kind, object_id)

    for kind, path in PATHS.items():
        routes_for(kind, path)

    @app.post("/api/v2/catalog/", summary="Import catalog objects by id", tags=["catalog"])
    async def import_catalog(request: Request, render: Renderer) -> dict[str, int]:
        """A mapping of kinds to lists of objects with ids, as `jobledger catalog import`
        sends it: all are checked first, then each is created or replaced."""
        may_change(render.user, "pipelines", None, {})  # a superuser's
        entries: Entries = await read_body(request)
        try:
            return await stack.save_catalog(entries, render.user.email)
        except ValueError as error:
            raise ApiError(400, [str(error)]) from None
        except TimeoutError as error:
            raise ApiError(503, HANDLER_TIMEOUT) from error
