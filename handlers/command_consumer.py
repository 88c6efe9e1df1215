"""Feeds the command handler from JOBS_COMMANDS and answers each command on jobs.outcomes.*.

Messages are acknowledged only after their events are saved, so a crash loses nothing;
a redelivered command is recognised by its id and has no second effect. A malformed
command is refused with a reason and acknowledged, never retried in a loop.
"""

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pydantic import ValidationError

from domain.commands import COMMANDS as COMMANDS_BY_NAME
from domain.commands import Command, is_subject_token, validation_reason
from domain.envelope import Outcome
from handlers.command_handler import CommandHandler
from infra.bus import COMMANDS_STREAM, MSG_ID_HEADER, outcome_subject
from infra.consumer import consume_batches

log = logging.getLogger(__name__)

BATCH_SIZE = 500
RETRY_DELAY = 1.0


def parse_command(msg: Msg) -> Command | Outcome:
    """The command in a message, or a refusal that says what is wrong with it."""
    name = msg.subject.rsplit(".", 1)[-1]
    command_id = (msg.headers or {}).get(MSG_ID_HEADER, "")
    command_class = COMMANDS_BY_NAME.get(name)
    if command_class is None:
        return Outcome(
            command_id=command_id,
            command=name,
            accepted=False,
            reason=f"Unknown command {name!r}; known: {', '.join(COMMANDS_BY_NAME)}",
        )
    try:
        command = command_class.model_validate_json(msg.data)
    except ValidationError as error:
        reason = validation_reason(error)
        return Outcome(command_id=command_id, command=name, accepted=False, reason=reason)
    if command_id and "command_id" not in command.model_fields_set:
        # The sender knows the command by the message id: its outcome goes there.
        return command.model_copy(update={"command_id": command_id})
    return command


class CommandConsumer:
    """Feeds batches of commands from JOBS_COMMANDS to the handler on its writer thread."""

    def __init__(
        self,
        js: JetStreamContext,
        nc: Client,
        handler: CommandHandler,
        writer: ThreadPoolExecutor,
        on_saved: Callable[[], None],
    ) -> None:
        self.js = js
        self.nc = nc
        self.handler = handler
        self.writer = writer
        self.on_saved = on_saved

    async def run(self) -> None:
        await consume_batches(
            self.js, "jobs.commands.*", "command-handler", COMMANDS_STREAM, self.handle, BATCH_SIZE
        )

    async def handle(self, messages: list[Msg]) -> None:
        parsed = [parse_command(m) for m in messages]
        commands = [p for p in parsed if isinstance(p, Command)]
        loop = asyncio.get_running_loop()
        try:
            outcomes = iter(await loop.run_in_executor(self.writer, self.handler.handle, commands))
        except Exception:
            log.exception("saving %d commands failed; they will be redelivered", len(commands))
            for m in messages:
                await m.nak(delay=RETRY_DELAY)
            return
        if commands:
            self.on_saved()
        for msg, item in zip(messages, parsed, strict=True):
            outcome = next(outcomes) if isinstance(item, Command) else item
            if not outcome.accepted:
                log.info("refused %s %r: %s", outcome.command, outcome.command_id, outcome.reason)
            if is_subject_token(outcome.command_id):  # else there is nowhere to answer
                await self.nc.publish(
                    outcome_subject(outcome.command_id), outcome.model_dump_json().encode()
                )
            await msg.ack()
