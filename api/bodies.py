"""Request bodies as Antenna's clients send them: JSON, form-urlencoded or multipart.

Validation errors come back as DRF does it, `{"field": ["message"]}`, in DRF's words,
so that clients written against Antenna show them unchanged.
"""

import json
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, Field, ValidationError
from pydantic_core import ErrorDetails

from api.errors import ApiError
from domain.catalog import JOB_REFERENCES, job_reference_errors
from domain.commands import MAX_INT, JobSpec
from domain.permissions import User
from infra.catalog import CatalogSnapshot

Body = TypeVar("Body", bound=BaseModel)
BAD_TIME = (
    "Datetime has wrong format. Use one of these formats instead:"
    " YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
)

# DRF's relational fields read "" as null in any body; a form's "" is null for every
# nullable field. (A `project_id` of "" is then "This field may not be null.")
BLANK_IS_NULL = frozenset(JOB_REFERENCES)
BLANK_IS_NULL_IN_FORMS = BLANK_IS_NULL | {"limit"}
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


class JobBody(JobSpec):
    """A job as written over HTTP: `delay` is required there (CONTRACT.md section 4)."""

    delay: int = Field(ge=0, le=MAX_INT)


def body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads its body by hand (`read_body`)."""
    media_types = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")
    return {
        "requestBody": {
            "content": {media: {"schema": model.model_json_schema()} for media in media_types},
            "required": True,
        }
    }


async def read_body(request: Request) -> dict[str, Any]:
    """The body's fields, whatever its content type."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type in FORMS:
        form = await request.form()
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
        return _blanks_as_null(fields, BLANK_IS_NULL_IN_FORMS)
    if media_type not in ("", "application/json"):
        raise ApiError(415, {"detail": f'Unsupported media type "{content_type}" in request.'})
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as error:
        raise ApiError(400, {"detail": f"JSON parse error - {error}"}) from None
    except RecursionError:
        raise ApiError(400, {"detail": "JSON parse error - nested too deeply"}) from None
    if not isinstance(data, dict):
        raise ApiError(400, {"non_field_errors": ["Invalid data. Expected a dictionary."]})
    for key, value in data.items():
        if _has_lone_surrogate(key) or _has_lone_surrogate(value):
            raise ApiError(400, {key: [LONE_SURROGATE]})
    return _blanks_as_null(data, BLANK_IS_NULL)


LONE_SURROGATE = "A lone surrogate (\\ud800 to \\udfff) is not text."


def _has_lone_surrogate(value: Any) -> bool:
    """Whether JSON's escapes hid half a character in the value: it cannot be sent on."""
    if isinstance(value, str):
        return not value.isascii() and any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


def _blanks_as_null(fields: dict[str, Any], nullable: frozenset[str]) -> dict[str, Any]:
    return {
        key: None if key in nullable and value == "" else value for key, value in fields.items()
    }


def validated(model: type[Body], data: dict[str, Any]) -> Body:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ApiError(400, field_errors(error.errors())) from None


def field_errors(errors: list[ErrorDetails]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for error in errors:
        location = [str(part) for part in error["loc"] if part not in ("body", "query", "path")]
        fields.setdefault(".".join(location) or "non_field_errors", []).append(drf_message(error))
    return fields


def drf_message(error: ErrorDetails) -> str:
    context = error.get("ctx", {})
    if error["input"] is None and error["type"].endswith("_type"):
        return "This field may not be null."
    match error["type"]:
        case "missing":
            return "This field is required."
        case "int_parsing" | "int_type" | "int_from_float":
            return "A valid integer is required."
        case "bool_parsing" | "bool_type":
            return "Must be a valid boolean."
        case "string_type":
            return "Not a valid string."
        case "string_too_short":
            return "This field may not be blank."
        case "string_too_long":
            return f"Ensure this field has no more than {context['max_length']} characters."
        case "greater_than_equal":
            return f"Ensure this value is greater than or equal to {context['ge']}."
        case "greater_than":
            return f"Ensure this value is greater than or equal to {context['gt'] + 1}."
        case "less_than_equal":
            return f"Ensure this value is less than or equal to {context['le']}."
        case "literal_error":
            return f'"{error["input"]}" is not a valid choice. Allowed: {context["expected"]}.'
        case "none_required" | "null":
            return "This field may not be null."
        case "url_parsing" | "url_scheme" | "url_type" | "url_syntax_violation":
            return "Enter a valid URL."
        case "datetime_parsing" | "datetime_from_date_parsing" | "datetime_type":
            return BAD_TIME
        case "list_type":
            return f'Expected a list of items but got type "{type(error["input"]).__name__}".'
        case "value_error":
            return str(context.get("error", error["msg"]))
    return str(error["msg"])


def check_references(catalog: CatalogSnapshot, spec: JobSpec, user: User) -> None:
    """Every referenced object exists for `user` and, where it belongs to a project, to the
    job's (400 naming the field)."""
    if errors := job_reference_errors(spec.model_dump(), catalog.seen_by(user, catalog.get)):
        raise ApiError(400, errors)
