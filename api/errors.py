"""The error the API answers with, in one of the body shapes Antenna's clients parse."""

from typing import Any

from domain.commands import Command
from domain.envelope import Outcome
from infra.bus import CommandBus

NOT_FOUND = {"detail": "Not found."}
HANDLER_TIMEOUT = {"detail": "The command handler did not answer in time."}


class ApiError(Exception):
    def __init__(self, status_code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status_code = status_code
        self.body = body
        self.headers = headers


async def send_command(bus: CommandBus, command: Command) -> Outcome:
    """Send a command and await its outcome; 503 when the handler does not answer in time."""
    try:
        return await bus.send(command)
    except TimeoutError as error:
        raise ApiError(503, HANDLER_TIMEOUT) from error
