"""Loading a job from the event store: snapshots make 100,000 events cost about as much as 100.

    .venv/bin/python bench/snapshots.py [--events 150 10150 100150]

For each size, a job gets that many events (progress reports, saved 1,000 at a time), then
is loaded again and again from a store with snapshots and, as the baseline, from one without.
"""

import argparse
import os
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from domain.commands import ClaimJob, CreateJob, ReportProgress
from domain.job import Job, job_uuid
from infra.event_store import EventStore

RUNNER = "bench"
LOADS = 20


def store(path: Path, snapshots: bool) -> EventStore:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    if not snapshots:
        env["IS_SNAPSHOTTING_ENABLED"] = "n"
    return EventStore(env=env)


def job_with(events: EventStore, job_id: int, count: int) -> None:
    job = Job.create(job_id, CreateJob(name="long", delay=1, project_id=1, start_now=True))
    job.claim(ClaimJob(job_id=job_id, attempt=1, runner=RUNNER))
    while job.version < count:
        for step in range(min(1000, count - job.version)):
            report = ReportProgress(
                job_id=job_id, attempt=1, runner=RUNNER, stage="delay", params={"step": step}
            )
            job.report_progress(report)
        events.save(job)


def loads(events: EventStore, job_id: int) -> tuple[list[float], float]:
    """Seconds per load, and the peak memory of one load in MB."""
    times = []
    for _ in range(LOADS):
        start = time.perf_counter()
        events.repository.get(job_uuid(job_id))
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    events.repository.get(job_uuid(job_id))
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return times, peak


def main(sizes: list[int]) -> None:
    rows: list[tuple[Any, ...]] = []
    with tempfile.TemporaryDirectory() as folder:
        for snapshots in (True, False):
            events = store(Path(folder) / f"events-{snapshots}.sqlite3", snapshots)
            for job_id, size in enumerate(sizes, start=1):
                job_with(events, job_id, size)
                times, peak = loads(events, job_id)
                rows.append((size, "snapshots" if snapshots else "none (baseline)", times, peak))
    table = Table(title=f"Loading one job, {LOADS} times each")
    for column in ("events", "snapshots", "loads/s", "p50 ms", "p99 ms", "peak MB"):
        table.add_column(column, justify="right")
    for size, kind, times, peak in sorted(rows, key=lambda row: (row[0], row[1])):
        table.add_row(
            f"{size:,}",
            kind,
            f"{1 / statistics.mean(times):,.0f}",
            f"{statistics.median(times) * 1000:.2f}",
            f"{max(times) * 1000:.2f}",
            f"{peak:.1f}",
        )
    Console(width=120).print(table)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # 150 past a snapshot each (one every 200 events): a load replays those on top of it.
    parser.add_argument("--events", type=int, nargs="+", default=[150, 10_150, 100_150])
    main(parser.parse_args().events)
