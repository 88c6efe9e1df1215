"""Workers' liveness: their calls mark the pipeline's async processing services as seen.

Every /tasks/ and /result/ call and every `ids_only` poll counts (CONTRACT.md sections 3
and 12), at most once per 30 s per pipeline and project. A heartbeat is a command like any
change; it is sent after the response, and losing one never fails a request.
"""

import logging
import time
from collections.abc import Iterable

from domain.commands import NoteServicesSeen
from infra.bus import CommandBus
from infra.catalog import CatalogSnapshot

log = logging.getLogger(__name__)

THROTTLE = 30.0  # seconds


class Heartbeats:
    def __init__(self, bus: CommandBus, throttle: float = THROTTLE) -> None:
        self.bus = bus
        self.throttle = throttle
        self._last: dict[tuple[int | None, int | None], float] = {}

    async def seen(
        self, catalog: CatalogSnapshot, pipeline_ids: Iterable[int] | None, project_id: int | None
    ) -> None:
        """Workers of these pipelines (None: any) for this project (None: any) called."""
        now = time.monotonic()
        pipelines: list[int | None] = [*pipeline_ids] if pipeline_ids is not None else [None]
        due = [
            (pipeline_id, project_id)
            for pipeline_id in pipelines
            if now - self._last.get((pipeline_id, project_id), -self.throttle) >= self.throttle
        ]
        service_ids = sorted(
            {row["object_id"] for key in due for row in catalog.async_services(*key)}
        )
        if not service_ids:
            return
        for key in due:
            self._last[key] = now
        try:
            await self.bus.publish(NoteServicesSeen(service_ids=service_ids, actor="heartbeat"))
        except Exception:
            log.warning("could not record that services %s were seen", service_ids, exc_info=True)
