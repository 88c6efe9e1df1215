"""`jobledger watch` follows a job live, and across a restart of the API misses nothing."""

import asyncio
import os
import re
import sys
from pathlib import Path

from api.app import build_app, in_process_client
from api.bootstrap import Stack
from infra.embedded_nats import free_port
from infra.settings import Settings
from tests.conftest import admin_token, create_job, history, served, wait_for

JOBLEDGER = str(Path(sys.executable).parent / "jobledger")


LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (.*)$")


async def read_until(stream: asyncio.StreamReader, text: str, lines: list[str]) -> None:
    """Read lines into `lines` until one has `text`."""
    while True:
        line = (await asyncio.wait_for(stream.readline(), 15)).decode()
        assert line, f"watch ended before printing {text!r}"
        lines.append(line.rstrip("\n"))
        if text in line:
            return


async def test_watch_follows_a_job_to_its_end_across_a_restart_of_the_api(
    stack: Stack, settings: Settings
) -> None:
    port = free_port()
    app = build_app(stack)
    async with in_process_client(stack, admin_token(stack)) as client:
        async with served(app, port) as url:
            job = await create_job(client, delay=100)  # 2 s, a log line every 0.04 s
            watch = await asyncio.create_subprocess_exec(
                JOBLEDGER,
                "watch",
                str(job["id"]),
                "--url",
                url,
                stdout=asyncio.subprocess.PIPE,
                env={**os.environ, "JOBLEDGER_DATA_DIR": str(settings.data_dir), "COLUMNS": "200"},
            )
            assert watch.stdout is not None
            lines: list[str] = []
            await read_until(watch.stdout, "Delaying job", lines)
            stack.closing.set()  # the API stops, as `serve` does, its live streams first
        stack.closing.clear()
        await read_until(watch.stdout, "reconnecting", lines)
        async with served(app, port):
            rest = (await asyncio.wait_for(watch.stdout.read(), 15)).decode()
            assert await watch.wait() == 0
        done = await wait_for(client, job["id"])
        events = await history(client, job["id"])

    assert done["status"] == "SUCCESS"
    shown = [m.group(1) for line in lines + rest.splitlines() if (m := LOG_LINE.match(line))]
    assert shown == [e["data"]["message"] for e in events if e["type"] == "LogAppended"]
