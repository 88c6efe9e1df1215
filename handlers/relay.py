"""The relay: follows the event store's notification log and publishes every event.

The notification log is a gapless, ordered outbox. Each event is published on
jobs.events.<job_id>.<Event> (a catalog object's on catalog.events.<kind>.<id>.<Event>),
in one stream, with Nats-Msg-Id = its position, and with the stream sequence
it expects to follow, so a failed publish can never let a later event overtake it: the
relay then resumes from the last event the stream holds.

A command's change to a job is one save, so it is published whole: every event of it but
the last carries Jobledger-Command-Continues, and a reader that applies whole commands
(the projection) waits for the rest.
"""

import asyncio
import contextlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor

from nats.js import JetStreamContext
from nats.js.api import Header

from domain.envelope import Envelope, same_change
from infra.bus import CONTINUES_HEADER, EVENTS_STREAM, MSG_ID_HEADER, POSITION_HEADER, subject_of
from infra.event_store import EventStore

log = logging.getLogger(__name__)


class ForeignStreams(RuntimeError):
    """The NATS server's streams hold events this event store did not record."""


async def check_streams_are_ours(js: JetStreamContext, store: EventStore) -> None:
    """The last event in JOBS_EVENTS must be the store's event at that position: a server
    whose streams another store filled (another data dir) would mix its jobs into ours."""
    info = await js.stream_info(EVENTS_STREAM)
    if int(info.state.last_seq) == 0:
        return
    last = await js.get_msg(EVENTS_STREAM, seq=int(info.state.last_seq))
    position = int((last.headers or {}).get(POSITION_HEADER, 0))
    published = json.loads(last.data or b"{}").get("id")
    stored = (await asyncio.to_thread(store.envelopes, position - 1, 1)).envelopes
    if not stored or stored[0].position != position or str(stored[0].id) != published:
        raise ForeignStreams(
            f"The NATS server's {EVENTS_STREAM} stream holds events up to position {position}"
            " that this event store did not record: its streams belong to another jobledger"
            " store. Use a NATS server (or account) of this store's own, or delete the"
            " JOBS_COMMANDS, JOBS_EVENTS and JOBS_TASKS streams there."
        )


class EventRelay:
    def __init__(
        self,
        store: EventStore,
        js: JetStreamContext,
        reader: ThreadPoolExecutor,
        poll_interval: float = 0.25,
        window: int = 1000,
    ) -> None:
        self.store = store
        self.js = js
        self.reader = reader
        self.poll_interval = poll_interval
        self.window = window
        self._wake = asyncio.Event()
        self.position = 0

    def wake(self) -> None:
        """Say that new events were saved (from the event loop's thread)."""
        self._wake.set()

    async def run(self) -> None:
        position, stream_seq = await self._resume()
        while True:
            self._wake.clear()
            envelopes, last = await self._read_whole_commands(position)
            if last == position:
                self.position = position
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                continue
            try:
                stream_seq = await self._publish(envelopes, stream_seq)
            except Exception:
                log.exception("publishing events failed; resuming from the stream's last event")
                await asyncio.sleep(self.poll_interval)
                position, stream_seq = await self._resume()
                continue
            position = last

    async def _read_whole_commands(self, position: int) -> tuple[list[Envelope], int]:
        """The events after `position` up to the end of a command, and the last position read.

        A section that stops at its limit may have cut the last command's events short: those
        are left for the next read, or, where they are all the events read, read on.
        """
        envelopes: list[Envelope] = []
        last = position
        while True:
            section = await asyncio.get_running_loop().run_in_executor(
                self.reader, self.store.envelopes, last, self.window
            )
            envelopes += section.envelopes
            last = section.last
            if not section.more or not envelopes:
                return envelopes, last
            cut = len(envelopes) - 1
            while cut > 0 and same_change(envelopes[cut - 1], envelopes[cut]):
                cut -= 1
            if cut > 0:
                cut_at = envelopes[cut].position
                assert cut_at is not None  # the store gives every event its position
                return envelopes[:cut], cut_at - 1

    async def _publish(self, envelopes: list[Envelope], stream_seq: int) -> int:
        futures = []
        for envelope, following in zip(envelopes, [*envelopes[1:], None], strict=False):
            headers = {
                MSG_ID_HEADER: str(envelope.position),
                POSITION_HEADER: str(envelope.position),
                Header.EXPECTED_LAST_SEQUENCE.value: str(stream_seq),
            }
            if following is not None and same_change(envelope, following):
                headers[CONTINUES_HEADER] = "true"
            futures.append(
                await self.js.publish_async(
                    subject_of(envelope),
                    envelope.model_dump_json().encode(),
                    stream=EVENTS_STREAM,
                    headers=headers,
                )
            )
            stream_seq += 1
        results = await asyncio.gather(*futures, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return int(results[-1].seq) if results else stream_seq  # type: ignore[union-attr]

    async def _resume(self) -> tuple[int, int]:
        """The position of the last event in the stream, and its stream sequence."""
        info = await self.js.stream_info(EVENTS_STREAM)
        last_seq = int(info.state.last_seq)
        if last_seq == 0:
            return 0, 0
        last = await self.js.get_msg(EVENTS_STREAM, seq=last_seq)
        position = (last.headers or {}).get(POSITION_HEADER)
        if position is None:
            raise RuntimeError(f"the last message of {EVENTS_STREAM} lacks {POSITION_HEADER}")
        return int(position), last_seq
