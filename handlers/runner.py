"""Job runners: claim queued attempts from JOBS_EVENTS and run them, reporting by commands.

A test job's delay runs here; a pipeline job's images go to workers that pull them as tasks
(async_api) or to a processing service that the runner calls (sync_api).

The runners share one durable work-queue consumer of StatusChanged events; each PENDING
attempt goes to one runner, which holds the message (with progress heartbeats) until the
attempt ends. A runner that stops without finishing hands the message back, and the next
runner takes the attempt over from its last reported progress.
"""

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import uuid4

import httpx
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from pydantic import ValidationError

from domain.commands import (
    AppendLog,
    ClaimJob,
    ConfirmCancelled,
    FinishJob,
    JobCommand,
    QueueImages,
    ReportProgress,
    RunnerReport,
)
from domain.envelope import EventEnvelope, Outcome
from domain.image_tally import throughput_line
from domain.job_types import DONE_MOOD, JOB_TYPE_NAMES, RUNNING_MOOD
from domain.pipeline_results import PipelineError, PipelineResult, of_image, record_result
from domain.statuses import FINAL, JobStatus
from infra.bus import EVENTS_STREAM, CommandBus, event_subject
from infra.catalog import Catalog, CatalogSnapshot
from infra.task_queue import TaskQueue

log = logging.getLogger(__name__)
T = TypeVar("T")

# A stopped runner's attempts go to another runner this long after its last heartbeat. The
# hand-back on a clean stop is faster, but a restarting server forgets it: keep this short.
ACK_WAIT = 5.0
HEARTBEAT = 1.0
# Workers seen this recently count as online (wider than a UI's green light: a heartbeat a
# little late should not read as "no workers").
ONLINE_RECENTLY = timedelta(minutes=5)
SERVICE_TIMEOUT = 300.0  # seconds a processing service may take for one batch


class AttemptEnded(Exception):
    """The job's attempt ended elsewhere (cancelled, superseded, taken over): stop running it."""


class JobRun:
    """One attempt of one job, run by this runner."""

    def __init__(
        self,
        bus: CommandBus,
        runner: str,
        job: dict[str, Any],
        tick: float,
        catalog: CatalogSnapshot,
        tasks: TaskQueue,
    ) -> None:
        self.bus = bus
        self.runner = runner
        self.job = job
        self.tick = tick
        self.catalog = catalog
        self.tasks = tasks
        self.cancelled = asyncio.Event()

    async def send(self, command_class: type[RunnerReport], **fields: Any) -> Outcome:
        return await self.send_command(
            command_class(
                job_id=self.job["id"],
                attempt=self.job["attempt"],
                runner=self.runner,
                actor=self.runner,
                **fields,
            )
        )

    async def send_command(self, command: JobCommand) -> Outcome:
        """Send; a refusal means this attempt has ended (or is being cancelled)."""
        outcome = await self.bus.send(command)
        if not outcome.accepted:
            if outcome.job and outcome.job["status"] == JobStatus.CANCELING:
                self.cancelled.set()
            raise AttemptEnded(outcome.reason)
        return outcome

    async def run(self) -> None:
        try:
            await self._run_stages()
        except AttemptEnded as ended:
            if not self.cancelled.is_set():
                log.info("job %s attempt %s ended: %s", self.job["id"], self.job["attempt"], ended)
                return
        if self.cancelled.is_set():
            with contextlib.suppress(AttemptEnded):
                await self.send(ConfirmCancelled)

    async def _run_stages(self) -> None:
        stages = {stage["key"]: stage for stage in self.job["stages"]}
        # Only an ML pipeline job has images to collect; other types keep their dispatch mode
        # (fixed at creation) but have no pipeline work here.
        if "collect" in stages:
            if self.job["pipeline_id"] is None:  # taken away after creation
                await self.send(FinishJob, status=JobStatus.FAILURE, reason=NO_PIPELINE)
                return
            image_ids = await self._collect_and_queue()
            if not image_ids:
                return
            if self.job["dispatch_mode"] == "async_api":
                await self.tasks.put(
                    self.job["id"], self.job["attempt"], self._tasks_for(image_ids)
                )
                await self._note_workers()
            else:
                await self._process_by_service(image_ids)
            return
        delay = stages.get("delay")
        if delay is not None:
            await self._run_delay(delay)
        if self.cancelled.is_set():
            return
        if delay is None:
            await self.send(FinishJob, status=JobStatus.FAILURE, reason=_no_work(self.job))
        else:
            await self.send(FinishJob, status=JobStatus.SUCCESS)

    async def _collect_and_queue(self) -> list[str]:
        """Collect the images and record them as queued; the images still to process.

        From then on results drive the job. A runner taking over after collect goes on with
        the pending images (an async job's queue drops those it still holds as duplicates).
        """
        job_id, attempt = self.job["id"], self.job["attempt"]
        collect = next(s for s in self.job["stages"] if s["key"] == "collect")
        if collect["status"] == JobStatus.SUCCESS:
            return list(self.job["pending_images"])
        image_ids = self._collect()
        found = len(image_ids)
        if self.job["shuffle"]:
            random.shuffle(image_ids)
        if self.job["limit"] is not None:
            image_ids = image_ids[: self.job["limit"]]
        without_url = [
            i for i in image_ids if not (self.catalog.get("captures", int(i)) or {}).get("url")
        ]
        if without_url:
            reason = f"Images without a URL cannot be processed: {', '.join(without_url[:10])}"
            collect_failed = {"Total Images": found}
            await self.send(
                ReportProgress, stage="collect", status=JobStatus.FAILURE, params=collect_failed
            )
            await self.send(FinishJob, status=JobStatus.FAILURE, reason=reason)
            return []
        if self.job["dispatch_mode"] == "async_api":
            await self.tasks.open(job_id, attempt)
        await self.send(QueueImages, image_ids=image_ids, found=found)
        return image_ids

    def _collect(self) -> list[str]:
        """The capture ids of the job's collection, or its single capture."""
        collection = self.catalog.get("collections", self.job["source_image_collection_id"])
        if collection is not None:
            return [str(capture) for capture in collection.get("images", [])]
        single = self.job.get("source_image_single_id")
        return [str(single)] if single is not None else []

    def _tasks_for(self, image_ids: list[str]) -> list[dict[str, Any]]:
        return [
            {"id": image_id, "image_id": image_id, "image_url": self._url_of(image_id)}
            for image_id in image_ids
        ]

    def _url_of(self, image_id: str) -> str | None:
        capture = self.catalog.get("captures", int(image_id)) or {}
        return capture.get("url")

    async def _note_workers(self) -> None:
        """Say in the job's log how many workers could pick its tasks up now."""
        pipeline = self.catalog.get("pipelines", self.job["pipeline_id"]) or {}
        label = pipeline.get("slug") or pipeline.get("name")
        services = self.catalog.async_services(self.job["pipeline_id"], self.job["project_id"])
        now = datetime.now(UTC)
        seen = [now - datetime.fromisoformat(s["last_seen"]) for s in services if s["last_seen"]]
        online = sum(ago <= ONLINE_RECENTLY for ago in seen)
        await self.send(
            AppendLog,
            message=f"Waiting for workers to pick up tasks for pipeline '{label}'"
            f" ({online}/{len(services)} online recently)",
        )
        if not any(ago <= timedelta(hours=1) for ago in seen):
            await self.send(
                AppendLog,
                level="WARNING",
                message=f"Zero workers have been seen for pipeline '{label}' in the last hour",
            )

    async def _process_by_service(self, image_ids: list[str]) -> None:
        """sync_api: send the images in batches to a processing service that serves the
        pipeline, and record what it answers for each image."""
        pipeline = self.catalog.get("pipelines", self.job["pipeline_id"])
        service = self.catalog.sync_service(self.job["pipeline_id"], self.job["project_id"])
        if pipeline is None or service is None:
            label = pipeline["slug"] if pipeline else self.job["pipeline_id"]
            reason = (
                f"No processing service serves pipeline '{label}'"
                f" for project {self.job['project_id']}"
            )
            await self.send(FinishJob, status=JobStatus.FAILURE, reason=reason)
            return
        size = pipeline["batch_size"]
        async with httpx.AsyncClient(timeout=SERVICE_TIMEOUT) as http:
            for start in range(0, len(image_ids), size):
                if self.cancelled.is_set():
                    return
                batch = image_ids[start : start + size]
                call = self._call_service(http, service, pipeline["slug"], batch)
                answers = await self._unless_cancelled(call)
                if answers is None:
                    return
                for image_id, answer in answers.items():
                    outcome = await self.send_command(
                        record_result(
                            self.job["id"], self.job["attempt"], image_id, answer, self.runner
                        )
                    )
                if line := throughput(outcome.job):
                    await self.send(AppendLog, message=line)

    async def _call_service(
        self, http: httpx.AsyncClient, service: dict[str, Any], slug: str, batch: list[str]
    ) -> dict[str, PipelineResult | PipelineError]:
        """The service's answer for each image of the batch; a failed call fails them all."""
        request = {
            "pipeline": slug,
            "source_images": [{"id": i, "url": self._url_of(i)} for i in batch],
            "config": {},
        }
        url = f"{service['endpoint_url'].rstrip('/')}/process"
        try:
            response = await http.post(url, json=request)
            response.raise_for_status()
            result = PipelineResult.model_validate_json(response.content)
        except (httpx.HTTPError, ValidationError) as error:
            problem = f"Processing service '{service['name']}' failed: {_first_line(error)}"
            return {i: PipelineError(error=problem, image_id=i) for i in batch}
        return {i: of_image(result, i) for i in batch}

    async def _run_delay(self, stage: dict[str, Any]) -> None:
        """The test job: about every 2 s of its delay a log line and a progress report."""
        job_id, seconds = self.job["id"], self.job["delay"]
        done = round(stage["progress"] * seconds)
        for i in range(done + 1 if done else 0, seconds):
            if await self._cancelled_within(self.tick):
                return
            if i % 2 == 1:
                await self.send(
                    AppendLog, message=f"Delaying job {job_id} for the {i} out of {seconds} seconds"
                )
                await self.send(
                    ReportProgress,
                    stage="delay",
                    status=JobStatus.STARTED,
                    progress=i / seconds,
                    params={"mood": RUNNING_MOOD},
                )
        await self.send(
            ReportProgress,
            stage="delay",
            status=JobStatus.SUCCESS,
            progress=1.0,
            params={"mood": DONE_MOOD},
        )

    async def _unless_cancelled(self, work: Coroutine[Any, Any, T]) -> T | None:
        """What `work` gives, or None once the attempt is cancelled: a slow service call is
        abandoned then, so that a cancel takes effect at once."""
        task = asyncio.create_task(work)
        stop = asyncio.create_task(self.cancelled.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            task.cancel()  # nothing, when it is done
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return None if self.cancelled.is_set() else task.result()

    async def _cancelled_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.cancelled.wait(), seconds)
        return self.cancelled.is_set()


class Runner:
    """Takes PENDING attempts off the shared consumer, up to `concurrency` at a time."""

    def __init__(
        self,
        nc: Client,
        js: JetStreamContext,
        bus: CommandBus,
        catalog: Catalog,
        tasks: TaskQueue,
        concurrency: int,
        tick: float,
    ) -> None:
        self.nc = nc
        self.js = js
        self.bus = bus
        self.catalog = catalog
        self.tasks = tasks
        self.concurrency = concurrency
        self.tick = tick
        self.name = f"runner-{uuid4().hex[:12]}"
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        slots = asyncio.Semaphore(self.concurrency)
        subscription = await self.js.pull_subscribe(
            event_subject("*", "StatusChanged"),
            durable="runners",
            stream=EVENTS_STREAM,
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=ACK_WAIT, max_deliver=-1),
        )
        try:
            while True:
                await slots.acquire()
                try:
                    messages = await subscription.fetch(1, timeout=1.0)
                except (NatsTimeoutError, TimeoutError):  # nats-py raises either
                    slots.release()
                    continue
                task = asyncio.create_task(self._take(messages[0]))
                self._tasks.add(task)

                def finished(task: asyncio.Task[None]) -> None:
                    self._tasks.discard(task)
                    slots.release()

                task.add_done_callback(finished)
        finally:
            # Stop pulling before handing jobs back, or the server gives them to our last pull.
            await subscription.unsubscribe()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _take(self, msg: Msg) -> None:
        try:
            event = EventEnvelope.model_validate_json(msg.data)
        except ValidationError:
            log.error("not a job event on %s; dropped", msg.subject)
            await msg.term()
            return
        status = event.data.get("status")
        if status in FINAL:
            await self.tasks.close(event.job_id, int(event.data["attempt"]))
        if status != JobStatus.PENDING:
            await msg.ack()
            return
        try:
            await self._run_attempt(event.job_id, int(event.data["attempt"]), msg)
        except asyncio.CancelledError:
            await asyncio.shield(msg.nak())  # this runner stops: the next one takes over
            raise
        except Exception:
            log.exception("running job %s failed; it will be retried", event.job_id)
            await msg.nak(delay=5)
            return
        await msg.ack()

    async def _run_attempt(self, job_id: int, attempt: int, msg: Msg) -> None:
        cancel_requests = await self.nc.subscribe(event_subject(job_id, "CancelRequested"))
        heartbeat = asyncio.create_task(_heartbeat(msg.in_progress))
        try:
            claim = await self.bus.send(
                ClaimJob(job_id=job_id, attempt=attempt, runner=self.name, actor=self.name)
            )
            job = claim.job
            if job is None or job["attempt"] != attempt:
                return
            run = JobRun(self.bus, self.name, job, self.tick, self.catalog.current(), self.tasks)
            if not claim.accepted:
                if job["status"] == JobStatus.CANCELING:
                    run.cancelled.set()
                    await run.run()
                return
            watcher = asyncio.create_task(_watch_cancel(cancel_requests, attempt, run.cancelled))
            try:
                await run.run()
            finally:
                watcher.cancel()
        finally:
            heartbeat.cancel()
            await cancel_requests.unsubscribe()


def throughput(job: dict[str, Any] | None) -> str | None:
    """The throughput line of a running pipeline job, from a command's outcome."""
    if job is None or job["status"] != JobStatus.STARTED or job["started_at"] is None:
        return None
    started_at = datetime.fromisoformat(job["started_at"])
    return throughput_line(job["id"], started_at, datetime.now(UTC), job["stages"])


NO_PIPELINE = "No pipeline specified to process images in ML job"  # Antenna's words


def _no_work(job: dict[str, Any]) -> str:
    """Why an internal job without a delay fails: jobledger runs pipelines and test jobs only."""
    if job["job_type_key"] == "ml" and job["pipeline_id"] is not None:
        # Dispatch is fixed at creation (CONTRACT.md section 10): a later pipeline is not run.
        return "The pipeline was set after the job was created: create a new job to run it"
    if job["job_type_key"] == "ml":
        return NO_PIPELINE
    name = JOB_TYPE_NAMES[job["job_type_key"]]
    return f"{name} jobs have no runner here: only ML pipeline and test (delay) jobs run"


def _first_line(error: Exception) -> str:
    return (str(error) or type(error).__name__).splitlines()[0]


async def _watch_cancel(subscription: Any, attempt: int, cancelled: asyncio.Event) -> None:
    async for msg in subscription.messages:
        if EventEnvelope.model_validate_json(msg.data).data.get("attempt") == attempt:
            cancelled.set()


async def _heartbeat(in_progress: Callable[[], Awaitable[None]]) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT)
        await in_progress()
