"""The reaper: ends started attempts whose runner or workers have been silent too long.

It reads the job list for candidates and sends ReapJob; the aggregate checks again that
the attempt is still silent, so a report that arrives meanwhile wins.
"""

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from domain.commands import ReapJob
from domain.job import REAPABLE
from infra.bus import CommandBus
from infra.read_store import ReadStore

log = logging.getLogger(__name__)


def silent_jobs(store: ReadStore, quiet_since: datetime) -> list[tuple[int, int, datetime]]:
    """(job id, attempt, last update) of reapable jobs not updated since `quiet_since`."""
    statuses = sorted(REAPABLE)
    marks = ", ".join("?" * len(statuses))
    with store.reading() as db:
        rows = db.execute(
            "SELECT job_id, json_extract(view, '$.attempt') AS attempt, updated_at FROM jobs"
            f" WHERE status IN ({marks}) AND updated_at < ?",
            (*statuses, quiet_since.isoformat()),
        ).fetchall()
    return [
        (int(row["job_id"]), int(row["attempt"]), datetime.fromisoformat(row["updated_at"]))
        for row in rows
    ]


class Reaper:
    def __init__(
        self, store: ReadStore, bus: CommandBus, stall_limit: float, interval: float
    ) -> None:
        self.store = store
        self.bus = bus
        self.stall_limit = stall_limit
        self.interval = interval

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            now = datetime.now(UTC)
            quiet_since = now - timedelta(seconds=self.stall_limit)
            silent = await asyncio.to_thread(silent_jobs, self.store, quiet_since)
            for job_id, attempt, updated_at in silent:
                outcome = await self.bus.send(
                    ReapJob(
                        job_id=job_id,
                        attempt=attempt,
                        quiet_since=quiet_since,
                        idle=(now - updated_at).total_seconds(),
                        stall_limit=self.stall_limit,
                        actor="reaper",
                    )
                )
                if outcome.accepted:
                    log.warning("reaped job %s (attempt %s)", job_id, attempt)
