"""The task queue of async pipeline jobs: one subject per job in JOBS_TASKS, one durable
consumer per attempt. A task handed to a worker is invisible to the others until it is
acknowledged (by the result) or its ack wait passes; then it is handed out again, under a
new reply subject.
"""

import asyncio
import contextlib
import json
from typing import Any

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from infra.bus import MSG_ID_HEADER, TASKS_STREAM, task_consumer, task_subject


class TaskQueue:
    def __init__(self, js: JetStreamContext, ack_wait: float) -> None:
        self.js = js
        self.ack_wait = ack_wait

    async def open(self, job_id: int, attempt: int) -> None:
        """The attempt's consumer; earlier attempts' consumers and tasks are gone first."""
        await self.close(job_id, attempt - 1)
        await self.js.add_consumer(
            TASKS_STREAM,
            ConsumerConfig(
                durable_name=task_consumer(job_id, attempt),
                filter_subject=task_subject(job_id),
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self.ack_wait,
                max_ack_pending=1000,
            ),
        )

    async def put(self, job_id: int, attempt: int, tasks: list[dict[str, Any]]) -> None:
        """Publish tasks; one published again (a runner taking over) is dropped as a duplicate."""
        acks = [
            await self.js.publish_async(
                task_subject(job_id),
                json.dumps(task).encode(),
                stream=TASKS_STREAM,
                headers={MSG_ID_HEADER: f"{job_id}-{attempt}-{task['image_id']}"},
            )
            for task in tasks
        ]
        await asyncio.gather(*acks)

    async def take(self, job_id: int, attempt: int, count: int, wait: float = 0.5) -> list[Msg]:
        """Up to `count` tasks, waiting at most `wait` seconds for the first."""
        subscription = await self.js.pull_subscribe_bind(
            task_consumer(job_id, attempt), stream=TASKS_STREAM
        )
        try:
            return await subscription.fetch(count, timeout=wait)
        except (NatsTimeoutError, TimeoutError):
            return []
        finally:
            await subscription.unsubscribe()

    async def close(self, job_id: int, attempt: int) -> None:
        """Drop the attempts' consumers up to `attempt` and every task still queued."""
        for earlier in range(1, attempt + 1):
            with contextlib.suppress(NotFoundError):
                await self.js.delete_consumer(TASKS_STREAM, task_consumer(job_id, earlier))
        await self.js.purge_stream(TASKS_STREAM, subject=task_subject(job_id))
