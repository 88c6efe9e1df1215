"""Progress reports through the whole path, beside raw JetStream, in one run.

    .venv/bin/python bench/e2e.py [--count 2000]

Row "raw JetStream": publish N messages (pipelined) to a stream and consume them with a
pull consumer, ack each. Row "jobledger": publish N ReportProgress commands the same way;
each goes command → handler → event store → relay → JOBS_EVENTS → projection → read store.
Latency is from publishing a message to consuming it (raw) or to the projection having
applied its event (jobledger, the moment a reader can see it).
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import nats
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from rich.console import Console
from rich.table import Table

from api.bootstrap import ALL_ROLES, Role, Stack, running_stack
from domain.commands import ClaimJob, CreateJob, ReportProgress
from domain.envelope import Outcome
from infra.bus import COMMANDS_STREAM, MSG_ID_HEADER, command_subject, connection, jetstream
from infra.settings import Settings

WINDOW = 500  # messages in flight at once under load; 1 measures latency without a queue
RUNNER = "bench-runner"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def raw_jetstream(url: str, count: int, window_size: int) -> tuple[float, list[float]]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="BENCH_RAW", subjects=["bench.raw"]))  # fresh each run
    sent: dict[int, float] = {}
    latencies: list[float] = []
    pull = await js.pull_subscribe(
        "bench.raw", durable="bench", config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT)
    )

    async def consume() -> None:
        while len(latencies) < count:
            for msg in await pull.fetch(1000, timeout=5):
                latencies.append(time.perf_counter() - sent[int(msg.data)])
                await msg.ack()

    start = time.perf_counter()
    consumer = asyncio.create_task(consume())
    for window in range(0, count, window_size):
        acks = []
        for i in range(window, min(window + window_size, count)):
            sent[i] = time.perf_counter()
            acks.append(await js.publish_async("bench.raw", str(i).encode()))
        await asyncio.gather(*acks)
        while window_size == 1 and len(latencies) <= window:
            await asyncio.sleep(0)
    await consumer
    elapsed = time.perf_counter() - start
    await js.delete_stream("BENCH_RAW")
    await nc.close()
    return elapsed, latencies


async def through_jobledger(
    stack: Stack, count: int, window_size: int
) -> tuple[float, list[float]]:
    await stack.save_catalog({"projects": [{"id": 1, "name": "Bench"}]})
    created = await stack.bus.send(CreateJob(name="bench", delay=1, project_id=1, start_now=True))
    assert created.accepted, created.reason
    job_id = created.job_id or 0
    claimed = await stack.bus.send(ClaimJob(job_id=job_id, attempt=1, runner=RUNNER))
    assert claimed.accepted, claimed.reason
    nc = connection(stack.broker)
    js = jetstream(stack.broker)
    positions: dict[str, int] = {}
    sent: dict[str, float] = {}

    async def on_outcome(msg: nats.aio.msg.Msg) -> None:
        outcome = Outcome.model_validate_json(msg.data)
        assert outcome.accepted and outcome.position is not None, outcome.reason
        positions[outcome.command_id] = outcome.position

    outcomes = await nc.subscribe("jobs.outcomes.>", cb=on_outcome)
    seen_at: list[tuple[int, float]] = []

    async def watch_projection() -> None:
        assert stack.projector is not None
        last = -1
        while len(positions) < count or last < max(positions.values()):
            if stack.projector.position != last:
                last = stack.projector.position
                seen_at.append((last, time.perf_counter()))
            await asyncio.sleep(0.0005)

    watcher = asyncio.create_task(watch_projection())
    start = time.perf_counter()
    for window in range(0, count, window_size):
        acks = []
        for i in range(window, min(window + window_size, count)):
            command = ReportProgress(
                job_id=job_id, attempt=1, runner=RUNNER, stage="delay", params={"step": i}
            )
            sent[command.command_id] = time.perf_counter()
            acks.append(
                await js.publish_async(
                    command_subject("ReportProgress"),
                    command.model_dump_json().encode(),
                    stream=COMMANDS_STREAM,
                    headers={MSG_ID_HEADER: command.command_id},
                )
            )
        await asyncio.gather(*acks)
        if window_size == 1:
            await _visible(stack, positions, command.command_id)
    await watcher
    elapsed = time.perf_counter() - start
    await outcomes.unsubscribe()

    latencies = []
    for command_id, position in positions.items():
        visible = next(moment for seen, moment in seen_at if seen >= position)
        latencies.append(visible - sent[command_id])
    return elapsed, latencies


async def _visible(stack: Stack, positions: dict[str, int], command_id: str) -> None:
    """Wait until the projection has applied the command's event."""
    assert stack.projector is not None
    while command_id not in positions or stack.projector.position < positions[command_id]:
        await asyncio.sleep(0.0002)


async def main(count: int) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(_env_file=None, nats_url=None, data_dir=Path(data_dir))  # type: ignore[call-arg]
        async with running_stack(settings, ALL_ROLES - {Role.RUNNER}) as stack:
            for window_size, n in ((WINDOW, count), (1, min(count, 500))):
                load = f"{window_size} in flight"
                before = rss_mb()
                elapsed, latencies = await raw_jetstream(stack.nats_url, n, window_size)
                rows.append((f"raw JetStream, {load}", n, elapsed, latencies, rss_mb() - before))
                before = rss_mb()
                elapsed, latencies = await through_jobledger(stack, n, window_size)
                rows.append((f"jobledger, {load}", n, elapsed, latencies, rss_mb() - before))

    table = Table(title="Progress reports: publish → consumed (raw) or → visible in the view")
    for column in ("path", "messages", "msgs/s", "p50 ms", "p99 ms", "mean ms", "RSS growth MB"):
        table.add_column(column, justify="right" if column != "path" else "left")
    for name, n, elapsed, latencies, rss in rows:
        table.add_row(
            name,
            str(n),
            f"{n / elapsed:,.0f}",
            f"{percentile(latencies, 0.50) * 1000:.1f}",
            f"{percentile(latencies, 0.99) * 1000:.1f}",
            f"{statistics.mean(latencies) * 1000:.1f}",
            f"{rss:.1f}",
        )
    Console(width=120).print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    asyncio.run(main(parser.parse_args().count))
