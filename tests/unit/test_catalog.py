"""The catalog's rules: each object's fields are valid as a whole, every change is an event."""

from collections.abc import Callable

import pytest

from domain.catalog import CatalogObject, referenced, save_errors, validated_fields
from domain.commands import SaveCatalogObject
from domain.job import Refused


def save(**fields: object) -> SaveCatalogObject:
    return SaveCatalogObject(kind="pipelines", object_id=1, fields=fields, actor="owner")


def test_a_new_object_takes_the_defaults_of_its_kind() -> None:
    pipeline = CatalogObject.create(1, save(name="Moths", slug="moths"))
    assert pipeline.fields == {
        "name": "Moths",
        "slug": "moths",
        "description": "",
        "version": 1,
        "version_name": "",
        "batch_size": 1,
        "created_at": None,
        "updated_at": None,
    }
    assert [type(e).__name__ for e in pipeline.collect_events()] == ["CatalogObjectCreated"]


def test_a_partial_change_keeps_the_other_fields_and_records_what_changed() -> None:
    pipeline = CatalogObject.create(1, save(name="Moths", slug="moths", version=2))
    pipeline.collect_events()
    pipeline.change(save(name="Moths v3", version=3).model_copy(update={"partial": True}))
    (changed,) = pipeline.collect_events()
    assert changed.changes == {"name": "Moths v3", "version": 3}  # type: ignore[attr-defined]
    assert (pipeline.fields["slug"], pipeline.fields["version"]) == ("moths", 3)


def test_a_replacement_resets_what_it_leaves_out_and_the_same_fields_change_nothing() -> None:
    pipeline = CatalogObject.create(1, save(name="Moths", slug="moths", version_name="v2"))
    pipeline.collect_events()
    pipeline.change(save(name="Moths", slug="moths"))
    assert pipeline.fields["version_name"] == ""
    pipeline.change(save(name="Moths", slug="moths"))
    assert len(pipeline.collect_events()) == 1


def refusal(action: Callable[[], object]) -> str:
    with pytest.raises(Refused) as refused:
        action()
    return str(refused.value)


def test_an_invalid_whole_is_refused_naming_each_field() -> None:
    assert refusal(lambda: CatalogObject.create(1, save(name="Moths", version="two"))) == (
        "slug: Field required;"
        " version: Input should be a valid integer, unable to parse string as an integer"
    )
    pipeline = CatalogObject.create(1, save(name="Moths", slug="moths"))
    blank = save(name="").model_copy(update={"partial": True})
    assert refusal(lambda: pipeline.change(blank)) == (
        "name: String should have at least 1 character"
    )


def test_a_partial_change_of_an_object_that_does_not_exist_is_refused() -> None:
    partial = save(name="x").model_copy(update={"partial": True})
    assert refusal(lambda: CatalogObject.create(1, partial)) == "pipelines 1 does not exist"


def test_only_a_processing_service_is_seen() -> None:
    pipeline = CatalogObject.create(1, save(name="Moths", slug="moths"))
    assert refusal(lambda: pipeline.seen(save())) == "pipelines 1 is not a processing service"


def test_a_list_of_ids_holds_each_once_in_the_order_given() -> None:
    collection = validated_fields("collections", {"name": "C", "images": [101, 101, "102", 7]})
    assert collection["images"] == [101, 102, 7]
    service = validated_fields(
        "services", {"name": "S", "pipelines": [2, 1, 2], "projects": [16, 16]}
    )
    assert (service["pipelines"], service["projects"]) == ([2, 1], [16])


def test_references_are_listed_one_per_id() -> None:
    fields = validated_fields("services", {"name": "GPU", "pipelines": [1, 2], "projects": [16]})
    assert referenced("services", fields) == [
        ("pipelines", "pipelines", 1),
        ("pipelines", "pipelines", 2),
        ("projects", "projects", 16),
    ]
    assert referenced("captures", validated_fields("captures", {})) == []


def test_an_object_stays_in_its_project_or_in_none() -> None:
    def nothing(kind: str, object_id: int) -> None:
        return None

    shared = {"name": "Shared", "method": "full", "project_id": None, "images": []}
    assert save_errors("collections", 5, shared, {**shared, "project_id": 16}, projects) == {
        "project_id": ["Collection 5 stays in no project."]
    }
    trap = {"name": "Trap", "project_id": 16}
    assert save_errors("deployments", 3, trap, {**trap, "project_id": 17}, projects) == {
        "project_id": ["Deployment 3 stays in project 16."]
    }
    assert save_errors("deployments", 3, trap, {**trap, "name": "Renamed"}, projects) == {}
    assert save_errors("deployments", 3, None, trap, nothing) == {
        "project_id": ['Invalid pk "16" - object does not exist.']
    }


def projects(kind: str, object_id: int) -> dict[str, str] | None:
    return {"name": f"Project {object_id}"} if kind == "projects" else None
