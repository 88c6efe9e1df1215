"""The query string of the job list (CONTRACT.md sections 3, 11 and 16), checked and parsed.

A bad value is a 400 naming the parameter, in the words of the Django forms behind Antenna's
filters. An empty value counts as absent, as django-filter treats it.
"""

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar, get_args

from fastapi import Request

from api.errors import NOT_FOUND, ApiError
from domain.catalog import project_of
from domain.commands import CatalogKind
from domain.job_types import JobTypeKey
from domain.statuses import JobStatus
from infra.catalog import CatalogSnapshot
from projections.views import JobQuery, SearchTerm

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 10
LARGEST_INTEGER = 2**63 - 1  # SQLite's; a larger limit or offset means the same
FAILED_CUTOFF_HOURS = 72
# Filters by one of a few values: parameter -> the values.
CHOICE_FILTERS: dict[str, tuple[str, ...]] = {
    "status": tuple(JobStatus),
    "job_type_key": get_args(JobTypeKey),
    "dispatch_mode": ("internal", "sync_api", "async_api"),
}
# Filters by the id of a catalog object: parameter -> (column, catalog kind).
REFERENCE_FILTERS: dict[str, tuple[str, CatalogKind]] = {
    "project": ("project_id", "projects"),
    "deployment": ("deployment_id", "deployments"),
    "source_image_collection": ("source_image_collection_id", "collections"),
    "source_image_single": ("source_image_single_id", "captures"),
    "pipeline": ("pipeline_id", "pipelines"),
}
# What `ordering` may name: field -> column.
ORDERING = {
    "name": "name",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "status": "status",
    "started_at": "started_at",
    "finished_at": "finished_at",
    "project": "project_id",
    "deployment": "deployment_id",
    "source_image_collection": "source_image_collection_id",
    "pipeline": "pipeline_id",
}
WHOLE_NUMBER = "Enter a whole number."
NOT_NEGATIVE = "Ensure this value is greater than or equal to 0."
UNKNOWN_OBJECT = "Select a valid choice. That choice is not one of the available choices."


class InvalidValue(ValueError):
    """A query parameter's value is not acceptable; the message says why, to the client."""


def lenient_bool(value: str | None) -> bool:
    """Antenna's query booleans: absent false, empty true, false/0 false, anything else true."""
    if value is None:
        return False
    return value.strip().lower() not in ("false", "0")


def list_query(
    params: Mapping[str, str],
    catalog: CatalogSnapshot,
    pipeline_ids: Iterable[int],
    now: datetime,
    hidden_projects: frozenset[int] = frozenset(),
) -> JobQuery:
    """The page of jobs a list request asks for.

    `pipeline_ids` are those of the pipelines that jobs use: the filters by pipeline slug and
    the search by pipeline name become filters by the ids of the catalog's matching pipelines.
    Raises ApiError: 404 for a `project_id` that is not in the catalog (CONTRACT.md section
    16), else 400 naming every parameter whose value is not acceptable. Objects of
    `hidden_projects` (drafts the caller may not see) are answered as unknown ones.
    """

    def known(kind: CatalogKind, object_id: int) -> bool:
        found = catalog.get(kind, object_id)
        return found is not None and project_of(kind, object_id, found) not in hidden_projects

    errors: dict[str, list[str]] = {}

    def value_of(name: str, parse: Callable[[str], T]) -> T | None:
        """The parsed value, or None when the parameter is absent, empty or not acceptable."""
        raw = params.get(name, "")
        if raw == "":
            return None
        try:
            return parse(raw)
        except InvalidValue as problem:
            errors[name] = [str(problem)]
            return None

    project_id = value_of("project_id", _not_negative)
    if project_id is not None and not known("projects", project_id):
        raise ApiError(404, NOT_FOUND)
    equal: list[tuple[str, int | str]] = [] if project_id is None else [("project_id", project_id)]
    for name, (column, kind) in REFERENCE_FILTERS.items():
        if (object_id := value_of(name, _catalog_id(known, kind))) is not None:
            equal.append((column, object_id))
    for name, choices in CHOICE_FILTERS.items():
        if (choice := value_of(name, _choice(choices))) is not None:
            equal.append((name, choice))
    # CONTRACT.md 16: failed jobs not updated for cutoff_hours (72 when absent or empty) leave
    # every list, even one filtered by status; only lists: by id they stay readable, retryable.
    cutoff_hours = value_of("cutoff_hours", _not_negative)
    if errors:
        raise ApiError(400, errors)

    pipelines = {i: found for i in pipeline_ids if (found := catalog.get("pipelines", i))}
    ids_only = lenient_bool(params.get("ids_only"))
    # The worker's poll gets one job unless it asks for more (CONTRACT.md section 3).
    page_size = 1 if ids_only and not {"limit", "page_size"} & set(params) else DEFAULT_PAGE_SIZE
    order_by = _order_by(params.get("ordering", ""))
    return JobQuery(
        limit=positive_or(params.get("limit"), page_size, minimum=1),
        offset=positive_or(params.get("offset"), 0, minimum=0),
        equal=tuple(equal),
        pipeline_ids=_with_slugs(params, pipelines),
        incomplete_only=lenient_bool(params.get("incomplete_only")),
        failed_updated_before=_hours_before(
            now, FAILED_CUTOFF_HOURS if cutoff_hours is None else cutoff_hours
        ),
        search=_search_terms(params.get("search", ""), pipelines),
        order_by=order_by,
        # Any matching job, at random, for the worker's poll; unless it asks for an order.
        random_order=ids_only and not order_by,
    )


def _whole_number(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise InvalidValue(WHOLE_NUMBER) from None


def _not_negative(raw: str) -> int:
    number = _whole_number(raw)
    if number < 0:
        raise InvalidValue(NOT_NEGATIVE)
    return number


def _catalog_id(
    known: Callable[[CatalogKind, int], bool], kind: CatalogKind
) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        object_id = _whole_number(raw)
        if not known(kind, object_id):
            raise InvalidValue(UNKNOWN_OBJECT)
        return object_id

    return parse


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise InvalidValue(f"Select a valid choice. {raw} is not one of the available choices.")
        return raw

    return parse


def _with_slugs(
    params: Mapping[str, str], pipelines: Mapping[int, Mapping[str, Any]]
) -> frozenset[int] | None:
    """The pipelines that `pipeline__slug` and `pipeline__slug__in` allow; None: any or none."""
    wanted = [
        {params.get("pipeline__slug", "")} - {""},
        set(params.get("pipeline__slug__in", "").split(",")) - {""},
    ]
    allowed = [
        frozenset(i for i, pipeline in pipelines.items() if pipeline["slug"] in slugs)
        for slugs in wanted
        if slugs
    ]
    return frozenset.intersection(*allowed) if allowed else None


def _search_terms(
    search: str, pipelines: Mapping[int, Mapping[str, Any]]
) -> tuple[SearchTerm, ...]:
    """DRF's search: every word (split at spaces and commas) in the job's or pipeline's name."""
    return tuple(
        SearchTerm(
            word,
            frozenset(
                i
                for i, pipeline in pipelines.items()
                if word.casefold() in pipeline["name"].casefold()
            ),
        )
        for word in search.replace(",", " ").split()
    )


def _order_by(ordering: str) -> tuple[str, ...]:
    """DRF's ordering: fields separated by commas, `-` first for descending; unknown ignored."""
    fields = [field.strip() for field in ordering.split(",")]
    return tuple(
        ("-" if field.startswith("-") else "") + ORDERING[field.lstrip("-")]
        for field in fields
        if field.lstrip("-") in ORDERING
    )


def positive_or(value: str | None, default: int, minimum: int) -> int:
    """Antenna's paging: an invalid or out-of-range value silently means the default."""
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    return min(number, LARGEST_INTEGER) if number >= minimum else default


def page_envelope(request: Request, count: int, limit: int, offset: int) -> dict[str, Any]:
    """`count`, `next` and `previous` of a page; DRF links the first page without `offset`."""

    def page_url(at: int) -> str:
        url = request.url.include_query_params(limit=limit)
        if at > 0:
            return str(url.include_query_params(offset=at))
        return str(url.remove_query_params("offset"))

    following, preceding = offset + limit, offset - limit
    return {
        "count": count,
        "next": page_url(following) if following < count else None,
        "previous": page_url(preceding) if offset > 0 else None,
    }


def _hours_before(now: datetime, hours: int) -> str | None:
    try:
        return (now - timedelta(hours=hours)).isoformat()
    except OverflowError:  # before the first datetime: no job is that old
        return None


def _parameter(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


# The parameters of the list, as the OpenAPI document shows them.
OPENAPI_PARAMETERS = [
    _parameter("project_id", {"type": "integer", "minimum": 0}),
    *(_parameter(name, {"type": "integer"}) for name in REFERENCE_FILTERS),
    *(_parameter(name, {"enum": list(choices)}) for name, choices in CHOICE_FILTERS.items()),
    *(
        _parameter(name, {"type": "string"})
        for name in ("pipeline__slug", "pipeline__slug__in", "search", "ordering")
    ),
    *(_parameter(name, {"type": "boolean"}) for name in ("ids_only", "incomplete_only")),
    _parameter("cutoff_hours", {"type": "integer", "minimum": 0, "default": FAILED_CUTOFF_HOURS}),
    _parameter("limit", {"type": "integer", "default": DEFAULT_PAGE_SIZE}),
    _parameter("offset", {"type": "integer", "default": 0}),
]
