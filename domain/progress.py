"""Stages, params and the progress arithmetic of CONTRACT.md sections 6 and 7.

Progress is kept as plain JSON-shaped dicts so that it travels unchanged in events,
snapshots and views; the functions here never mutate their arguments.
"""

import re
import unicodedata
from typing import Any, TypedDict

from domain.statuses import FINAL, JobStatus


class Param(TypedDict):
    key: str
    name: str
    category: str
    value: Any


class Stage(TypedDict):
    key: str
    name: str
    status: str
    progress: float
    params: list[Param]


class Summary(TypedDict):
    status: str
    progress: float


class Progress(TypedDict):
    summary: Summary
    stages: list[Stage]
    errors: list[str]
    logs: list[str]


STAGE_ATTRIBUTES = frozenset({"status", "progress", "name"})


def key_of(name: str) -> str:
    """Antenna's slug: ASCII-folded, lower case, punctuation dropped, spaces and hyphens to `_`."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    kept = re.sub(r"[^\w\s-]", "", ascii_name).strip().lower()
    return re.sub(r"[-\s]+", "_", kept)


def make_param(name: str, value: Any) -> Param:
    return {"key": key_of(name), "name": name, "category": "default", "value": value}


def make_stage(name: str, params: list[Param], key: str | None = None) -> Stage:
    return {
        "key": key or key_of(name),
        "name": name,
        "status": JobStatus.CREATED.value,
        "progress": 0.0,
        "params": params,
    }


def new_progress(stages: list[Stage]) -> Progress:
    return {
        "summary": {"status": JobStatus.CREATED.value, "progress": mean_progress(stages)},
        "stages": stages,
        "errors": [],
        "logs": [],
    }


def mean_progress(stages: list[Stage]) -> float:
    """summary.progress: the arithmetic mean of the stages' progress, 0 without stages."""
    if not stages:
        return 0.0
    return sum(stage["progress"] for stage in stages) / len(stages)


def promoted_status(status: str, progress: float) -> str:
    """Antenna's stage promotion: the first matching rule only."""
    if progress > 0 and status == JobStatus.CREATED:
        return JobStatus.STARTED
    if progress == 1.0 and status not in FINAL:
        return JobStatus.SUCCESS
    return status


def update_stage(stage: Stage, updates: dict[str, Any]) -> Stage:
    """A stage after an update by key: stage attributes are set, anything else is a param.

    A param that exists keeps its display name; a new one is named as the update names it.
    A final status never changes progress, and progress never decreases within an attempt.
    """
    updated: Stage = {**stage, "params": [Param(**p) for p in stage["params"]]}
    for name, value in updates.items():
        key = key_of(name)
        if key == "status":
            updated["status"] = str(value)
        elif key == "progress":
            if stage["status"] not in FINAL:
                updated["progress"] = max(stage["progress"], float(value))
        elif key == "name":
            updated["name"] = str(value)
        else:
            _set_param(updated["params"], name, key, value)
    updated["status"] = promoted_status(updated["status"], updated["progress"])
    return updated


def _set_param(params: list[Param], name: str, key: str, value: Any) -> None:
    for param in params:
        if param["key"] == key:
            param["value"] = value
            return
    params.append({"key": key, "name": name, "category": "default", "value": value})


def with_stage(progress: Progress, stage: Stage) -> Progress:
    """Progress with one stage replaced (matched by key) and the summary recomputed."""
    return with_stages(
        progress, [stage if s["key"] == stage["key"] else s for s in progress["stages"]]
    )


def with_stages(progress: Progress, stages: list[Stage]) -> Progress:
    """Progress with these stages (all of them, in order) and the summary recomputed."""
    summary: Summary = {"status": progress["summary"]["status"], "progress": mean_progress(stages)}
    return {**progress, "stages": stages, "summary": summary}


def with_summary_status(progress: Progress, status: str) -> Progress:
    return {**progress, "summary": {**progress["summary"], "status": status}}


def reset_progress(progress: Progress) -> Progress:
    """Progress for a new attempt: every stage CREATED at 0, numeric params 0, strings kept."""
    stages: list[Stage] = [
        {
            **stage,
            "status": JobStatus.CREATED.value,
            "progress": 0.0,
            "params": [_reset_param(p) for p in stage["params"]],
        }
        for stage in progress["stages"]
    ]
    return new_progress(stages)


def _reset_param(param: Param) -> Param:
    value = param["value"]
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return {**param, "value": 0 if numeric else value}


def is_complete(stages: list[Stage]) -> bool:
    """At least one stage, and every stage at progress 1.0 with a final status."""
    return bool(stages) and all(s["progress"] >= 1.0 and s["status"] in FINAL for s in stages)


def find_stage(progress: Progress, key: str) -> Stage | None:
    return next((s for s in progress["stages"] if s["key"] == key), None)
