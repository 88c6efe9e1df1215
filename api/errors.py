"""The error the API answers with, in one of the body shapes Antenna's clients parse."""

from typing import Any


class ApiError(Exception):
    def __init__(self, status_code: int, body: Any) -> None:
        self.status_code = status_code
        self.body = body
