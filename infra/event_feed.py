"""Reading JOBS_EVENTS from a point: for live subscriptions that resume where they stopped."""

import asyncio
from collections.abc import AsyncGenerator, Callable
from typing import TypeVar

from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from domain.envelope import Envelope, EventEnvelope
from infra.bus import ALL_EVENTS, EVENTS_STREAM, POSITION_HEADER, parse_envelope

Parsed = TypeVar("Parsed")


async def first_sequence_after(js: JetStreamContext, position: int) -> int:
    """The stream sequence of the first event after `position` (binary search: positions and
    sequences grow together), or one past the last if there is none."""
    state = (await js.stream_info(EVENTS_STREAM)).state
    low, high = max(int(state.first_seq), 1), int(state.last_seq) + 1  # empty: first_seq is 0
    while low < high:
        middle = (low + high) // 2
        msg = await js.get_msg(EVENTS_STREAM, seq=middle)
        if int((msg.headers or {})[POSITION_HEADER]) <= position:
            low = middle + 1
        else:
            high = middle
    return low


def events(
    js: JetStreamContext, subject: str, start_seq: int, follow: bool
) -> AsyncGenerator[EventEnvelope, None]:
    """Job events on `subject` from stream sequence `start_seq`, in order; without `follow`,
    only those stored now."""
    return _feed(
        js, subject, start_seq, follow, lambda _, data: EventEnvelope.model_validate_json(data)
    )


def all_events(
    js: JetStreamContext, start_seq: int, follow: bool
) -> AsyncGenerator[Envelope, None]:
    """Every event, job's and catalog's, as `events` reads them."""
    return _feed(js, ALL_EVENTS, start_seq, follow, parse_envelope)


async def _feed(
    js: JetStreamContext,
    subject: str,
    start_seq: int,
    follow: bool,
    parse: Callable[[str, bytes], Parsed],
) -> AsyncGenerator[Parsed, None]:
    last_seq = int((await js.stream_info(EVENTS_STREAM)).state.last_seq)
    if not follow and start_seq > last_seq:
        return
    queue: asyncio.Queue[tuple[str, bytes, int]] = asyncio.Queue()

    async def received(msg: object) -> None:
        await queue.put((msg.subject, msg.data, msg.metadata.num_pending))  # type: ignore[attr-defined]

    subscription = await js.subscribe(
        subject,
        stream=EVENTS_STREAM,
        ordered_consumer=True,
        cb=received,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(start_seq, 1)
        ),
    )
    try:
        while True:
            try:
                subject_, data, pending = await asyncio.wait_for(
                    queue.get(), None if follow else 1.0
                )
            except TimeoutError:
                return  # nothing stored on this subject past the start
            yield parse(subject_, data)
            if not follow and pending == 0:
                return
    finally:
        await subscription.unsubscribe()
