"""Stored events keep their old shape; reading them (and replaying them) gives the new one."""

import json
from pathlib import Path

from eventsourcing.persistence import StoredEvent

from domain.commands import CreateJob
from domain.job import Job, job_uuid
from infra.event_store import open_event_store
from infra.read_store import ReadStore
from infra.settings import Settings
from projections import views
from projections.replay import replay

SPEC = {
    "name": "Old",
    "delay": 10,
    "limit": 100,
    "shuffle": True,
    "project_id": 16,
    "deployment_id": None,
    "source_image_collection_id": None,
    "source_image_single_id": None,
    "pipeline_id": None,
    "job_type_key": "ml",
}


def store_a_version_1_job_created(settings: Settings, job_id: int) -> None:
    """A JobCreated as version 1 stored it: the spec under `fields`, no class_version."""
    events = open_event_store(settings)
    state = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2023-11-20T14:59:14.826005+00:00"},
        "originator_topic": "domain.job:Job",
        "command_id": "c-1",
        "correlation_id": "c-1",
        "actor": "anonymous",
        "job_id": job_id,
        "fields": SPEC,
        "dispatch_mode": "internal",
        "progress": {
            "summary": {"status": "CREATED", "progress": 0.0},
            "stages": [],
            "errors": [],
            "logs": [],
        },
    }
    stored = StoredEvent(
        originator_id=job_uuid(job_id),
        originator_version=1,
        topic="domain.job:Job.JobCreated",
        state=json.dumps(state).encode(),
    )
    events.recorder.insert_events([stored])


def test_an_old_job_created_is_read_in_the_new_shape(settings: Settings, tmp_path: Path) -> None:
    store_a_version_1_job_created(settings, 5)
    events = open_event_store(settings)

    job = events.repository.get(job_uuid(5))
    assert isinstance(job, Job)
    assert job.spec == SPEC
    assert job.name == "Old"

    [created] = events.job_history(5)
    assert created.data["spec"] == SPEC
    assert "fields" not in created.data

    rebuilt = ReadStore(tmp_path / "views.sqlite3")
    replay(events, rebuilt)
    with rebuilt.reading() as db:
        view = views.job_view(db, 5)
    assert view is not None
    assert (view["name"], view["created_at"]) == ("Old", "2023-11-20T14:59:14.826005+00:00")


def test_a_job_snapshot_taken_before_jobs_knew_when_they_last_changed_is_read(
    settings: Settings,
) -> None:
    events = open_event_store(settings)
    job = Job.create(6, CreateJob(name="Old", project_id=16, delay=10, start_now=True))
    events.save(job)
    taken = Job.Snapshot.take(job)
    old_state = {k: v for k, v in taken.state.items() if k not in ("changed_at", "class_version")}
    assert events.snapshots is not None
    events.snapshots.put(
        [
            Job.Snapshot(  # type: ignore[call-arg]
                originator_id=taken.originator_id,
                originator_version=taken.originator_version,
                timestamp=taken.timestamp,
                topic=taken.topic,
                state=old_state,
            )
        ]
    )

    loaded = events.repository.get(job_uuid(6))
    assert isinstance(loaded, Job)
    assert loaded.changed_at == job.modified_on  # the best a version 1 snapshot knows
