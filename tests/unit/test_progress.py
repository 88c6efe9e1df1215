"""Progress arithmetic and stage promotion, as CONTRACT.md sections 6 and 7 describe them."""

import copy
from typing import Any

import pytest

from domain.progress import (
    Param,
    Progress,
    Stage,
    find_stage,
    is_complete,
    key_of,
    make_param,
    make_stage,
    mean_progress,
    new_progress,
    reset_progress,
    update_stage,
    with_stage,
    with_summary_status,
)


def stage_at(key: str, progress: float, status: str = "STARTED", *params: Param) -> Stage:
    return {**make_stage(key.title(), list(params), key), "status": status, "progress": progress}


def collect_stage() -> Stage:
    return make_stage("Collect", [make_param("Total Images", "")])


def ml_progress() -> Progress:
    """An ML job part way through: delay 1.0, collect 1.0, process 0.5, results 0.25."""
    return new_progress(
        [
            stage_at("delay", 1.0, "SUCCESS", make_param("Delay", 10), make_param("Mood", "🥳")),
            stage_at("collect", 1.0, "SUCCESS", make_param("Total Images", 40)),
            stage_at("process", 0.5, "STARTED", make_param("Processed", 20)),
            stage_at("results", 0.25, "STARTED", make_param("Captures", "")),
        ]
    )


# Keys are slugs of names.


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Total Images", "total_images"),
        ("File URL", "file_url"),
        ("Number of records exported", "number_of_records_exported"),
        ("Détections épinglées", "detections_epinglees"),
        ("Captures (added)!", "captures_added"),
        ("Regroup - sessions  now", "regroup_sessions_now"),
        ("already_a_key", "already_a_key"),
        ("  Delay  ", "delay"),
    ],
)
def test_a_key_is_the_ascii_folded_lower_case_slug_of_a_name(name: str, key: str) -> None:
    assert key_of(name) == key


def test_a_param_and_a_stage_take_their_key_from_their_name() -> None:
    assert make_param("Total Images", "") == {
        "key": "total_images",
        "name": "Total Images",
        "category": "default",
        "value": "",
    }
    assert make_stage("Collect", []) == {
        "key": "collect",
        "name": "Collect",
        "status": "CREATED",
        "progress": 0.0,
        "params": [],
    }


# The summary.


def test_summary_progress_is_the_mean_of_the_stages() -> None:
    assert mean_progress(ml_progress()["stages"]) == 0.6875
    assert ml_progress()["summary"] == {"status": "CREATED", "progress": 0.6875}


def test_summary_progress_is_zero_without_stages() -> None:
    assert mean_progress([]) == 0.0
    empty: Progress = {
        "summary": {"status": "CREATED", "progress": 0.0},
        "stages": [],
        "errors": [],
        "logs": [],
    }
    assert new_progress([]) == empty


def test_replacing_a_stage_recomputes_the_summary_and_keeps_its_status() -> None:
    progress = with_summary_status(ml_progress(), "STARTED")
    results = stage_at("results", 0.75, "STARTED", make_param("Captures", 12))

    updated = with_stage(progress, results)

    assert [s["key"] for s in updated["stages"]] == ["delay", "collect", "process", "results"]
    assert updated["stages"][3] == results
    assert updated["stages"][:3] == progress["stages"][:3]
    assert updated["summary"] == {"status": "STARTED", "progress": 0.8125}


# Stage promotion: the first matching rule only.


def test_progress_above_zero_starts_a_created_stage() -> None:
    updated = update_stage(collect_stage(), {"progress": 0.2})

    assert (updated["status"], updated["progress"]) == ("STARTED", 0.2)


def test_a_created_stage_at_zero_stays_created() -> None:
    updated = update_stage(collect_stage(), {"total_images": 40})

    assert (updated["status"], updated["progress"]) == ("CREATED", 0.0)


def test_a_started_stage_at_exactly_one_succeeds() -> None:
    assert update_stage(stage_at("process", 0.5), {"progress": 1.0})["status"] == "SUCCESS"
    assert update_stage(stage_at("process", 0.5), {"progress": 0.999})["status"] == "STARTED"


def test_a_created_stage_written_at_one_starts_first_and_succeeds_on_the_next_write() -> None:
    first = update_stage(collect_stage(), {"progress": 1.0})
    second = update_stage(first, {})

    assert (first["status"], first["progress"]) == ("STARTED", 1.0)
    assert (second["status"], second["progress"]) == ("SUCCESS", 1.0)


@pytest.mark.parametrize("final", ["FAILURE", "REVOKED"])
def test_a_final_stage_at_one_is_not_promoted(final: str) -> None:
    assert update_stage(stage_at("process", 1.0, final), {})["status"] == final


@pytest.mark.parametrize("final", ["SUCCESS", "FAILURE", "REVOKED"])
def test_a_final_status_never_changes_progress(final: str) -> None:
    updated = update_stage(stage_at("process", 0.3, final), {"progress": 1.0})

    assert (updated["status"], updated["progress"]) == (final, 0.3)


def test_a_stage_that_fails_keeps_the_progress_reported_with_the_failure() -> None:
    updated = update_stage(stage_at("process", 0.2), {"status": "FAILURE", "progress": 0.3})

    assert (updated["status"], updated["progress"]) == ("FAILURE", 0.3)


def test_progress_never_decreases_within_an_attempt() -> None:
    updated = update_stage(stage_at("process", 0.6), {"progress": 0.4})

    assert (updated["status"], updated["progress"]) == ("STARTED", 0.6)


# Updating a stage by name or key.


@pytest.mark.parametrize("name", ["status", "Status"])
def test_an_update_named_status_sets_the_stage_status(name: str) -> None:
    updated = update_stage(stage_at("process", 0.5), {name: "FAILURE"})

    assert updated["status"] == "FAILURE"
    assert updated["params"] == []


@pytest.mark.parametrize("name", ["progress", "Progress"])
def test_an_update_named_progress_sets_the_stage_progress(name: str) -> None:
    updated = update_stage(stage_at("process", 0.5), {name: 0.75})

    assert updated["progress"] == 0.75
    assert updated["params"] == []


@pytest.mark.parametrize("name", ["name", "Name"])
def test_an_update_named_name_renames_the_stage(name: str) -> None:
    updated = update_stage(collect_stage(), {name: "Collecting"})

    assert (updated["key"], updated["name"]) == ("collect", "Collecting")
    assert updated["params"] == collect_stage()["params"]


@pytest.mark.parametrize("name", ["total_images", "Total Images", "Total images", "TOTAL-IMAGES"])
def test_an_update_of_an_existing_param_keeps_its_display_name(name: str) -> None:
    updated = update_stage(collect_stage(), {name: 40})

    assert updated["params"] == [
        {"key": "total_images", "name": "Total Images", "category": "default", "value": 40}
    ]


def test_an_update_of_an_unknown_param_adds_it_under_the_given_name() -> None:
    updated = update_stage(collect_stage(), {"Limit": 100, "Total Images": 120})

    assert updated["params"] == [
        {"key": "total_images", "name": "Total Images", "category": "default", "value": 120},
        {"key": "limit", "name": "Limit", "category": "default", "value": 100},
    ]


def test_adding_a_param_twice_does_not_duplicate_it() -> None:
    once = update_stage(collect_stage(), {"Limit": 100})
    twice = update_stage(once, {"limit": 50})

    assert twice["params"] == [
        {"key": "total_images", "name": "Total Images", "category": "default", "value": ""},
        {"key": "limit", "name": "Limit", "category": "default", "value": 50},
    ]


# No function changes what it is given.


def test_update_stage_leaves_the_stage_it_was_given_unchanged() -> None:
    stage = stage_at("process", 0.5, "STARTED", make_param("Processed", 20))
    before = copy.deepcopy(stage)

    update_stage(stage, {"Processed": 40, "Failed": 1, "progress": 1.0, "name": "Done"})

    assert stage == before


def test_with_stage_leaves_the_progress_it_was_given_unchanged() -> None:
    progress = ml_progress()
    before = copy.deepcopy(progress)

    with_stage(progress, stage_at("results", 1.0, "SUCCESS"))
    with_summary_status(progress, "SUCCESS")

    assert progress == before


def test_reset_progress_leaves_the_progress_it_was_given_unchanged() -> None:
    progress = ml_progress()
    before = copy.deepcopy(progress)

    reset_progress(progress)

    assert progress == before


# A new attempt starts from zero.


def test_reset_progress_zeroes_every_stage_and_number_and_keeps_strings() -> None:
    progress = with_summary_status(ml_progress(), "FAILURE")
    progress["stages"][2]["params"].append(make_param("Rate", 2.5))
    progress["stages"][2]["params"].append(make_param("Retried", True))

    reset = reset_progress(progress)

    assert reset["summary"] == {"status": "CREATED", "progress": 0.0}
    assert [(s["key"], s["status"], s["progress"]) for s in reset["stages"]] == [
        ("delay", "CREATED", 0.0),
        ("collect", "CREATED", 0.0),
        ("process", "CREATED", 0.0),
        ("results", "CREATED", 0.0),
    ]
    values: list[list[Any]] = [[p["value"] for p in s["params"]] for s in reset["stages"]]
    assert values == [[0, "🥳"], [0], [0, 0, True], [""]]
    names = [[p["name"] for p in s["params"]] for s in reset["stages"]]
    assert names == [
        ["Delay", "Mood"],
        ["Total Images"],
        ["Processed", "Rate", "Retried"],
        ["Captures"],
    ]


# Complete: what a job needs before it may succeed.


def test_no_stages_is_not_complete() -> None:
    assert not is_complete([])


def test_every_stage_done_is_complete() -> None:
    assert is_complete([stage_at("collect", 1.0, "SUCCESS"), stage_at("process", 1.0, "SUCCESS")])


@pytest.mark.parametrize("final", ["FAILURE", "REVOKED"])
def test_a_stage_that_ended_otherwise_at_one_counts_as_complete(final: str) -> None:
    assert is_complete([stage_at("collect", 1.0, "SUCCESS"), stage_at("process", 1.0, final)])


@pytest.mark.parametrize(
    ("status", "progress"),
    [("STARTED", 1.0), ("CREATED", 1.0), ("SUCCESS", 0.99), ("FAILURE", 0.3)],
)
def test_one_stage_short_of_done_is_not_complete(status: str, progress: float) -> None:
    stages = [stage_at("collect", 1.0, "SUCCESS"), stage_at("process", progress, status)]

    assert not is_complete(stages)


def test_stages_are_found_by_key() -> None:
    progress = ml_progress()

    assert find_stage(progress, "process") == progress["stages"][2]
    assert find_stage(progress, "Process") is None
    assert find_stage(progress, "upload") is None
