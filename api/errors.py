"""The error the API answers with, in one of the body shapes Antenna's clients parse."""

from typing import Any

NOT_FOUND = {"detail": "Not found."}


class ApiError(Exception):
    def __init__(self, status_code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status_code = status_code
        self.body = body
        self.headers = headers
