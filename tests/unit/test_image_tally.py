"""The counters of pipeline jobs: processed, remaining, failed, the half-failed threshold,
and the throughput line."""

from datetime import UTC, datetime, timedelta

import pytest

from domain.image_tally import (
    DONE,
    FAILED,
    PENDING,
    process_stage,
    results_stage,
    tally_status,
    throughput_line,
    too_many_failed,
)
from domain.job_types import ml_stages
from domain.progress import Stage, update_stage


@pytest.mark.parametrize(
    ("failed", "total", "expected"),
    [(0, 0, False), (1, 2, False), (2, 4, False), (3, 4, True), (1, 1, True)],
)
def test_more_than_half_is_too_many(failed: int, total: int, expected: bool) -> None:
    assert too_many_failed(failed, total) is expected


@pytest.mark.parametrize(
    ("previous", "progress", "failed", "total", "expected"),
    [
        ("CREATED", 0.5, 0, 4, "STARTED"),
        ("STARTED", 1.0, 2, 4, "SUCCESS"),
        ("STARTED", 1.0, 3, 4, "FAILURE"),
        ("STARTED", 0.75, 3, 4, "FAILURE"),  # the threshold is crossed part way
        ("FAILURE", 1.0, 0, 4, "FAILURE"),  # a failed stage stays failed
    ],
)
def test_stage_status(
    previous: str, progress: float, failed: int, total: int, expected: str
) -> None:
    assert tally_status(previous, progress, failed, total) == expected


def test_the_process_stage_counts_failures_as_processed() -> None:
    process = ml_stages()[1]
    images = {"1": DONE, "2": FAILED, "3": PENDING, "4": PENDING}

    stage = process_stage(process, images)

    assert {p["key"]: p["value"] for p in stage["params"]} == {
        "processed": 2,
        "remaining": 2,
        "failed": 1,
    }
    assert (stage["status"], stage["progress"]) == ("STARTED", 0.5)


def test_the_results_stage_counts_each_image_once_and_failures_as_done() -> None:
    results = ml_stages()[2]
    images = {"1": DONE, "2": FAILED}
    counters = {"captures": 1, "detections": 4, "classifications": 6}

    stage = results_stage(results, images, 1, counters)

    assert {p["key"]: p["value"] for p in stage["params"]} == counters
    assert (stage["status"], stage["progress"]) == ("SUCCESS", 1.0)


def test_no_images_means_done() -> None:
    assert process_stage(ml_stages()[1], {})["progress"] == 1.0


def process_with(processed: object, remaining: object) -> list[Stage]:
    stage = ml_stages()[1]
    return [update_stage(stage, {"processed": processed, "remaining": remaining})]


START = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("elapsed", "processed", "remaining", "line"),
    [
        (
            300,
            10,
            90,
            "Job 7 throughput: elapsed=5m 00s, processed=10/100, rate=2.0 imgs/min, ETA=45m 00s",
        ),
        (
            3725,
            0,
            50,
            "Job 7 throughput: elapsed=1h 02m 05s, processed=0/50, rate=0.0 imgs/min, ETA=unknown",
        ),
        (
            90,
            3,
            4,
            "Job 7 throughput: elapsed=1m 30s, processed=3/7, rate=2.0 imgs/min, ETA=2m 00s",
        ),
        (2.9, 3, 4, None),  # too early to say
        (90, "", "", None),  # nothing queued yet
    ],
)
def test_the_throughput_line_says_rate_and_eta_as_antenna_does(
    elapsed: float, processed: object, remaining: object, line: str | None
) -> None:
    now = START + timedelta(seconds=elapsed)
    assert throughput_line(7, START, now, process_with(processed, remaining)) == line


def test_no_throughput_line_before_the_job_started_or_without_a_process_stage() -> None:
    assert throughput_line(7, None, START, process_with(1, 1)) is None
    assert throughput_line(7, START, START + timedelta(minutes=5), []) is None
