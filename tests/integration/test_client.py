"""The Python client: commands and events over NATS, without HTTP."""

from api.bootstrap import Stack
from api.client import JobsClient
from domain.commands import CreateJob
from domain.statuses import FINAL


async def test_a_client_runs_a_job_and_follows_it_to_the_end(stack: Stack) -> None:
    async with JobsClient.connect(stack.nats_url) as jobs:
        outcome = await jobs.send(CreateJob(name="Trest", delay=4, project_id=16, start_now=True))
        assert outcome.accepted and outcome.job_id is not None
        seen = []
        async for event in jobs.events(job_id=outcome.job_id):
            seen.append(event)
            if event.type == "StatusChanged" and event.data["status"] in FINAL:
                break
        stored = stack.event_store.job_history(outcome.job_id)
        assert [e.type for e in seen] == [e.type for e in stored[: len(seen)]]
        assert seen[-1].data["status"] == "SUCCESS"

        first_two = [e async for e in jobs.events(follow=False)][:2]
        resumed = [e async for e in jobs.events(after=first_two[0].position or 0, follow=False)]
        assert resumed[0].position == first_two[1].position
