"""Antenna's job statuses and the named sets of CONTRACT.md section 9."""

from enum import StrEnum


class JobStatus(StrEnum):
    CREATED = "CREATED"
    PENDING = "PENDING"
    STARTED = "STARTED"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    RETRY = "RETRY"
    CANCELING = "CANCELING"
    REVOKED = "REVOKED"
    RECEIVED = "RECEIVED"
    UNKNOWN = "UNKNOWN"


FINAL = frozenset({JobStatus.SUCCESS, JobStatus.FAILURE, JobStatus.REVOKED})
FAILED = frozenset({JobStatus.FAILURE, JobStatus.REVOKED, JobStatus.UNKNOWN})
RUNNING = frozenset(
    {JobStatus.PENDING, JobStatus.STARTED, JobStatus.RETRY, JobStatus.CANCELING, JobStatus.UNKNOWN}
)
ACTIVE = frozenset({JobStatus.STARTED, JobStatus.RETRY})
FINALIZABLE = frozenset({JobStatus.CREATED, JobStatus.PENDING, JobStatus.STARTED, JobStatus.RETRY})
