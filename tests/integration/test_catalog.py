"""The catalog: imported or written through the API as events, nested in jobs, readable at
the `details` URLs, rebuilt by a replay."""

from pathlib import Path
from typing import Any, get_args

import httpx
import pytest

from api.app import in_process_client
from api.bootstrap import Stack
from api.catalog_io import read_catalog_file
from api.catalog_routes import PATHS
from domain.catalog import BAD_SLUG, SamplingMethod
from domain.commands import SaveCatalogObject, UpdateJob
from domain.envelope import CatalogEnvelope
from domain.permissions import ProjectRole
from infra.bus import jetstream
from infra.event_feed import all_events
from infra.read_store import ReadStore
from projections.compare import differences
from projections.replay import replay
from projections.verification import verify
from tests.conftest import ADMIN, SEED_JOB, create_job

NOT_ALLOWED = {"detail": "You do not have permission to perform this action."}

CATALOG_YAML = """
projects:
  - {id: 3, name: Vermont Atlas}
deployments:
  - {id: 8, name: Trap 8, project_id: 3}
collections:
  - {id: 9, name: Every night, method: full, project_id: 3}
captures:
  - id: 11
    url: "https://example.org/11.jpg"
    width: 4096
    height: 2160
    timestamp: null
    event_id: 2
pipelines:
  - {id: 4, name: Quebec moths, slug: quebec_moths, version: 2, version_name: v2, description: ""}
"""


async def test_imported_objects_are_nested_in_jobs_and_served_at_their_details(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    source = tmp_path / "catalog.yaml"
    source.write_text(CATALOG_YAML)
    imported = await client.post("/api/v2/catalog/", json=read_catalog_file(source))
    assert imported.json() == {
        "projects": 1,
        "deployments": 1,
        "collections": 1,
        "captures": 1,
        "pipelines": 1,
    }
    job = await create_job(
        client,
        start_now=False,
        project_id=3,
        deployment_id=8,
        source_image_collection_id=9,
        source_image_single_id=11,
        pipeline_id=4,
    )
    assert job["source_image_single"] == {
        "id": 11,
        "details": "http://127.0.0.1:8000/api/v2/captures/11/",
        "url": "https://example.org/11.jpg",
        "width": 4096,
        "height": 2160,
        "timestamp": None,
        "event_id": 2,
        "user_permissions": [],
    }
    for field in (
        "project",
        "deployment",
        "source_image_collection",
        "source_image_single",
        "pipeline",
    ):
        served = await client.get(job[field]["details"])
        assert served.status_code == 200, field
        # The details hold the nested object and the rest of its fields.
        assert served.json() | job[field] == served.json(), field
    project = await client.get(job["project"]["details"])
    assert project.json() == {
        **job["project"],
        "description": "",
        "draft": False,
        "async_pipeline_workers": True,
    }


async def test_each_kind_is_listed_at_its_path(client: httpx.AsyncClient) -> None:
    seeded = {"projects": 1, "collections": 1, "pipelines": 1}
    for kind, path in PATHS.items():
        response = await client.get(f"/api/v2/{path}/")
        assert response.status_code == 200, path
        assert response.json()["count"] == seeded.get(kind, 0), path


async def test_an_unknown_catalog_object_is_404(client: httpx.AsyncClient) -> None:
    for path in PATHS.values():
        for object_id in ("99", "0", str(2**63), "abc", "1.0", "-1"):
            response = await client.get(f"/api/v2/{path}/{object_id}/")
            assert (response.status_code, response.json()) == (404, {"detail": "Not found."})


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ({"planets": [{"id": 1}]}, "unknown catalog kind 'planets'"),
        ({"projects": {"id": 30, "name": "Fine"}}, "projects: expected a list of objects"),
        ({"projects": [{"name": "no id"}]}, "every projects entry needs an integer id"),
        (
            {"projects": [{"id": 30, "name": "Fine"}, {"id": 31, "draft": "maybe"}]},
            "projects 31: name: Field required; draft: Input should be a valid boolean",
        ),
        (
            {"projects": [{"id": 30, "name": "Fine"}], "deployments": [{"id": 1, "name": "T"}]},
            "deployments 1: project_id: Field required",
        ),
        (
            {"deployments": [{"id": 1, "name": "T", "project_id": 99}]},
            'deployments 1: project_id: Invalid pk "99" - object does not exist.',
        ),
    ],
)
async def test_a_bad_catalog_file_is_refused_and_changes_nothing(
    stack: Stack, client: httpx.AsyncClient, entries: dict[str, Any], problem: str
) -> None:
    stored = stack.event_store.recorder.max_notification_id()
    response = await client.post("/api/v2/catalog/", json=entries)
    assert response.status_code == 400
    assert response.json()[0].startswith(problem), response.json()
    assert stack.event_store.recorder.max_notification_id() == stored
    assert (await client.get("/api/v2/projects/30/")).status_code == 404


def test_a_catalog_file_must_map_kinds_to_lists(tmp_path: Path) -> None:
    source = tmp_path / "bad.yaml"
    source.write_text("- just a list")
    with pytest.raises(ValueError, match="expected a mapping of kinds to lists of objects"):
        read_catalog_file(source)


async def test_objects_are_created_replaced_and_changed_through_the_api(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/api/v2/deployments/", json={"name": "Trap", "project_id": 16})
    assert created.status_code == 201
    deployment = created.json()
    assert deployment == {
        "id": 1,
        "name": "Trap",
        "project_id": 16,
        "details": "http://127.0.0.1:8000/api/v2/deployments/1/",
        "user_permissions": [],
        "jobs": [],
    }
    # A form body, as Antenna's UI may send it.
    changed = await client.patch("/api/v2/deployments/1/", data={"name": "Trap 2"})
    assert (changed.status_code, changed.json()["name"]) == (200, "Trap 2")
    replaced = await client.put(
        "/api/v2/ml/pipelines/1/",
        json={"name": "Panama moths", "slug": "panama_moths_2024", "version": 2},
    )
    assert replaced.status_code == 200
    assert {k: replaced.json()[k] for k in ("slug", "version", "version_name")} == {
        "slug": "panama_moths_2024",
        "version": 2,
        "version_name": "",  # replaced: what is not given takes its default
    }
    job = await create_job(client, start_now=False, deployment_id=1)
    assert job["deployment"]["name"] == "Trap 2"
    assert job["pipeline"]["slug"] == "panama_moths_2024"
    listed = (await client.get("/api/v2/deployments/")).json()
    assert (listed["count"], [d["id"] for d in listed["results"]]) == (1, [1])


@pytest.mark.parametrize(
    ("method", "path", "body", "errors"),
    [
        ("post", "projects/", {}, {"name": ["This field is required."]}),
        ("post", "projects/", {"name": ""}, {"name": ["This field may not be blank."]}),
        ("patch", "projects/16/", {"name": "   "}, {"name": ["This field may not be blank."]}),
        (
            "patch",
            "ml/pipelines/1/",
            {"name": "a\u0000b"},
            {"name": ["Null characters are not allowed."]},
        ),
        (
            "patch",
            "projects/16/",
            {"description": "a\u0000b"},
            {"description": ["Null characters are not allowed."]},
        ),
        (
            "post",
            "deployments/",
            {"name": "T", "project_id": 99},
            {"project_id": ['Invalid pk "99" - object does not exist.']},
        ),
        (
            "post",
            "ml/processing_services/",
            {"name": "S", "pipelines": [1, 7]},
            {"pipelines": ['Invalid pk "7" - object does not exist.']},
        ),
        (
            "patch",
            "ml/pipelines/1/",
            {"version": "two"},
            {"version": ["A valid integer is required."]},
        ),
        ("put", "ml/pipelines/1/", {"name": "No slug"}, {"slug": ["This field is required."]}),
    ],
)
async def test_a_bad_object_is_400_naming_the_field_and_changes_nothing(
    stack: Stack, client: httpx.AsyncClient, method: str, path: str, body: Any, errors: Any
) -> None:
    stored = stack.event_store.recorder.max_notification_id()
    response = await getattr(client, method)(f"/api/v2/{path}", json=body)
    assert (response.status_code, response.json()) == (400, errors)
    assert stack.event_store.recorder.max_notification_id() == stored


async def test_project_owners_change_their_objects_others_may_not(stack: Stack) -> None:
    await stack.save_catalog({"projects": [{"id": 17, "name": "Elsewhere"}]})
    tokens = {}
    for email, role in (
        ("owner@example.org", ProjectRole.OWNER),
        ("m@example.org", ProjectRole.MEMBER),
    ):
        stack.users.add(email)
        stack.users.grant(email, 16, role)
        tokens[role] = stack.users.new_token(email)
    deployment = {"name": "Trap", "project_id": 16}
    async with in_process_client(stack, tokens[ProjectRole.OWNER]) as owner:
        assert (await owner.post("/api/v2/deployments/", json=deployment)).status_code == 201
        assert (await owner.patch("/api/v2/projects/16/", json={"draft": True})).status_code == 200
        elsewhere = {"name": "Trap", "project_id": 17}
        assert (await owner.post("/api/v2/deployments/", json=elsewhere)).json() == NOT_ALLOWED
        moved = await owner.patch("/api/v2/deployments/1/", json={"project_id": 17})
        assert (moved.status_code, moved.json()) == (403, NOT_ALLOWED)
        assert (await owner.post("/api/v2/projects/", json={"name": "Mine"})).status_code == 403
        assert (await owner.post("/api/v2/catalog/", json={})).status_code == 403
    async with in_process_client(stack, tokens[ProjectRole.MEMBER]) as member:
        refused = await member.post("/api/v2/deployments/", json=deployment)
        assert (refused.status_code, refused.json()) == (403, NOT_ALLOWED)
    async with in_process_client(stack, None) as anonymous:
        refused = await anonymous.post("/api/v2/deployments/", json=deployment)
        assert refused.status_code == 401
        # Project 16 is a draft now: hidden from anonymous callers, with its objects.
        assert (await anonymous.get("/api/v2/projects/16/")).status_code == 404
        assert (await anonymous.get("/api/v2/deployments/1/")).status_code == 404
        assert (await anonymous.get("/api/v2/projects/17/")).status_code == 200


async def test_catalog_changes_are_events_and_a_replay_rebuilds_the_nested_objects(
    stack: Stack, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    job = await create_job(client, start_now=False)
    renamed = await client.patch("/api/v2/ml/pipelines/1/", json={"name": "Panama moths v2"})
    assert renamed.status_code == 200
    assert (await client.get(f"/api/v2/jobs/{job['id']}/")).json()["pipeline"]["name"] == (
        "Panama moths v2"
    )
    published = [
        (event.kind, event.object_id, event.type, event.actor)
        async for event in all_events(jetstream(stack.broker), 1, follow=False)
        if isinstance(event, CatalogEnvelope)
    ]
    assert published == [
        ("projects", 16, "CatalogObjectCreated", "operator"),
        ("collections", 5, "CatalogObjectCreated", "operator"),
        ("pipelines", 1, "CatalogObjectCreated", "operator"),
        ("pipelines", 1, "CatalogObjectChanged", ADMIN),
    ]
    assert verify(stack.event_store, stack.read_store).differences == []
    rebuilt = ReadStore(tmp_path / "rebuilt.sqlite3")
    replay(stack.event_store, rebuilt)
    assert differences(stack.read_store, rebuilt) == []
    with rebuilt.reading() as db:
        rows = db.execute(
            "SELECT kind, object_id, version FROM catalog ORDER BY position"
        ).fetchall()
    assert [tuple(row) for row in rows] == [
        ("projects", 16, 1),
        ("collections", 5, 1),
        ("pipelines", 1, 2),
    ]


async def test_objects_a_job_refers_to_must_belong_to_its_project(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/api/v2/catalog/", json={"projects": [{"id": 17, "name": "Elsewhere"}]})
    await client.post("/api/v2/deployments/", json={"name": "Far trap", "project_id": 17})
    response = await client.post(
        "/api/v2/jobs/", json={**SEED_JOB, "deployment_id": 1, "source_image_collection_id": 5}
    )
    assert (response.status_code, response.json()) == (
        400,
        {"deployment_id": ["Deployment 1 belongs to project 17, not 16."]},
    )


async def test_a_refusal_tells_nobody_of_what_lies_in_a_project_hidden_from_them(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    await stack.save_catalog(
        {
            "projects": [{"id": 17, "name": "Hidden", "draft": True}],
            "deployments": [{"id": 3, "name": "Hidden trap", "project_id": 17}],
        }
    )
    hidden_job = await create_job(
        client, start_now=False, project_id=17, pipeline_id=None, source_image_collection_id=None
    )
    stack.users.add("owner@example.org")
    stack.users.grant("owner@example.org", 16, ProjectRole.OWNER)
    async with in_process_client(stack, stack.users.new_token("owner@example.org")) as owner:
        export = {"user": 1, "project": 16, "format": "csv", "job": hidden_job["id"]}
        exported = await owner.post("/api/v2/exports/", json=export)
        created = await owner.post("/api/v2/jobs/", json={**SEED_JOB, "deployment_id": 3})

    assert (exported.status_code, exported.json()) == (
        400,
        {"job": [f'Invalid pk "{hidden_job["id"]}" - object does not exist.']},
    )
    assert (created.status_code, created.json()) == (
        400,
        {"deployment_id": ['Invalid pk "3" - object does not exist.']},
    )


async def test_a_deployment_lists_its_jobs_in_short(client: httpx.AsyncClient) -> None:
    await client.post("/api/v2/deployments/", json={"name": "Trap", "project_id": 16})
    job = await create_job(client, start_now=False, deployment_id=1)
    deployment = (await client.get("/api/v2/deployments/1/")).json()
    assert deployment["jobs"] == [
        {
            "id": job["id"],
            "details": f"http://127.0.0.1:8000/api/v2/jobs/{job['id']}/",
            "status": "CREATED",
            "job_type": {"name": "ML pipeline", "key": "ml"},
            "created_at": job["created_at"],
            "updated_at": job["updated_at"],
        }
    ]


async def test_a_job_shows_the_data_export_it_makes(client: httpx.AsyncClient) -> None:
    job = await create_job(client, start_now=False, job_type_key="data_export", delay=0)
    assert job["data_export"] is None
    export = {"user": 1, "project": 16, "format": "csv", "filters": {"taxon": 3}, "job": job["id"]}
    created = await client.post("/api/v2/exports/", json=export)
    assert created.status_code == 201
    shown = (await client.get(f"/api/v2/jobs/{job['id']}/")).json()["data_export"]
    assert shown == {
        "id": created.json()["id"],
        "user": 1,
        "project": 16,
        "format": "csv",
        "filters": {"taxon": 3},
        "file_url": None,
    }
    listed = (await client.get("/api/v2/jobs/", params={"job_type_key": "data_export"})).json()
    assert [item["data_export"] for item in listed["results"]] == [shown]


async def test_an_export_names_a_job_of_its_own_project(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    await stack.save_catalog({"projects": [{"id": 17, "name": "Elsewhere"}]})
    job = await create_job(client, start_now=False, job_type_key="data_export", delay=0)
    export = {"user": 1, "project": 16, "format": "csv"}

    unknown = await client.post("/api/v2/exports/", json={**export, "job": 999})
    elsewhere = await client.post(
        "/api/v2/exports/", json={**export, "project": 17, "job": job["id"]}
    )

    assert (unknown.status_code, unknown.json()) == (
        400,
        {"job": ['Invalid pk "999" - object does not exist.']},
    )
    assert (elsewhere.status_code, elsewhere.json()) == (
        400,
        {"job": [f"Job {job['id']} belongs to project 16, not 17."]},
    )
    assert (await client.get("/api/v2/exports/")).json()["count"] == 0


async def test_the_openapi_document_describes_each_kind_and_its_bodies(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    paths, schemas = document["paths"], document["components"]["schemas"]
    detail = paths["/api/v2/ml/pipelines/{object_id}/"]["get"]["responses"]["200"]
    assert detail["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PipelineDetail"
    }
    assert set(schemas["PipelineDetail"]["properties"]) == set(
        (await client.get("/api/v2/ml/pipelines/1/")).json()
    )
    body = paths["/api/v2/ml/pipelines/"]["post"]["requestBody"]["content"]
    assert set(body) == {
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    }
    assert body["application/json"]["schema"]["required"] == ["name", "slug"]
    assert set(paths) >= {f"/api/v2/{path}/" for path in PATHS.values()}


async def test_an_object_may_refer_only_to_its_own_projects_objects(
    client: httpx.AsyncClient,
) -> None:
    imported = await client.post(
        "/api/v2/catalog/",
        json={
            "projects": [{"id": 20, "name": "Other"}],
            "deployments": [{"id": 21, "name": "Far trap", "project_id": 20}],
            "captures": [{"id": 22, "url": "https://example.org/22.jpg", "project_id": 16}],
        },
    )
    assert imported.status_code == 200, imported.text
    cases = [
        (
            "captures/collections/",
            {"name": "Borrowed", "project_id": 20, "images": [22]},
            {"images": ["Capture 22 belongs to project 16, not 20."]},
        ),
        (
            "captures/collections/",
            {"name": "Missing", "project_id": 16, "images": [22, 999]},
            {"images": ['Invalid pk "999" - object does not exist.']},
        ),
        (
            "captures/",
            {"url": "https://example.org/23.jpg", "project_id": 16, "deployment_id": 21},
            {"deployment_id": ["Deployment 21 belongs to project 20, not 16."]},
        ),
    ]
    for path, body, errors in cases:
        response = await client.post(f"/api/v2/{path}", json=body)
        assert (response.status_code, response.json()) == (400, errors), body
    borrowed = {"collections": [{"id": 24, "name": "B", "project_id": 20, "images": [22]}]}
    response = await client.post("/api/v2/catalog/", json=borrowed)
    assert response.json() == ["collections 24: images: Capture 22 belongs to project 16, not 20."]


_methods = get_args(SamplingMethod)
METHODS = ", ".join(map(repr, _methods[:-1])) + f" or {_methods[-1]!r}"


@pytest.mark.parametrize(
    ("path", "body", "errors"),
    [
        (
            "ml/pipelines/",
            {"name": "Again", "slug": "panama_moths_2023"},
            {"slug": ["pipeline with this slug already exists."]},
        ),
        (
            "ml/processing_services/",
            {"name": "S", "endpoint_url": "not a url"},
            {"endpoint_url": ["Enter a valid URL."]},
        ),
        (
            "captures/",
            {"timestamp": "yesterday"},
            {
                "timestamp": [
                    "Datetime has wrong format. Use one of these formats instead:"
                    " YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
                ]
            },
        ),
        (
            "captures/collections/",
            {"name": "C", "images": "1,2"},
            {"images": ['Expected a list of items but got type "str".']},
        ),
        ("ml/pipelines/", {"name": "Two", "slug": "a,b"}, {"slug": [BAD_SLUG]}),
        (
            "captures/collections/",
            {"name": "Odd", "project_id": 16, "method": "bogus"},
            {"method": [f'"bogus" is not a valid choice. Allowed: {METHODS}.']},
        ),
    ],
)
async def test_fields_are_checked_for_what_they_hold(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], errors: dict[str, Any]
) -> None:
    response = await client.post(f"/api/v2/{path}", json=body)
    assert (response.status_code, response.json()) == (400, errors)


async def test_an_import_may_not_give_two_pipelines_one_slug(client: httpx.AsyncClient) -> None:
    twins = {
        "pipelines": [
            {"id": 7, "name": "A", "slug": "twin"},
            {"id": 8, "name": "B", "slug": "twin"},
        ]
    }
    response = await client.post("/api/v2/catalog/", json=twins)
    assert response.json() == ["pipelines 8: slug: pipeline with this slug already exists."]
    # The same pipeline imported again keeps its slug: no clash with itself.
    again = {"pipelines": [{"id": 1, "name": "Panama moths", "slug": "panama_moths_2023"}]}
    assert (await client.post("/api/v2/catalog/", json=again)).status_code == 200


async def test_an_object_stays_in_its_project(stack: Stack, client: httpx.AsyncClient) -> None:
    await stack.save_catalog({"projects": [{"id": 17, "name": "Elsewhere"}]})
    made = await client.post("/api/v2/deployments/", json={"name": "Trap", "project_id": 16})
    deployment = made.json()["id"]
    job = await create_job(client, start_now=False, deployment_id=deployment)

    moved = await client.patch(f"/api/v2/deployments/{deployment}/", json={"project_id": 17})

    assert (moved.status_code, moved.json()) == (
        400,
        {"project_id": [f"Deployment {deployment} stays in project 16."]},
    )
    renamed = await client.patch(f"/api/v2/jobs/{job['id']}/", json={"name": "Still fine"})
    assert renamed.status_code == 200
    on_the_bus = await stack.bus.send(
        SaveCatalogObject(
            kind="deployments", object_id=deployment, fields={"project_id": 17}, partial=True
        )
    )
    assert (on_the_bus.accepted, on_the_bus.reason) == (
        False,
        f"project_id: Deployment {deployment} stays in project 16.",
    )


async def test_an_import_names_an_id_out_of_range(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v2/catalog/", json={"projects": [{"id": -1, "name": "N"}]})
    assert (response.status_code, response.json()) == (
        400,
        [f"projects -1: id: not between 1 and {2**63 - 1}"],
    )


async def test_a_job_makes_one_data_export(stack: Stack, client: httpx.AsyncClient) -> None:
    job = await create_job(client, start_now=False, job_type_key="data_export", delay=0)
    export = {"user": 1, "project": 16, "format": "csv", "job": job["id"]}
    first = await client.post("/api/v2/exports/", json=export)
    second = await client.post("/api/v2/exports/", json={**export, "format": "json"})
    assert (second.status_code, second.json()) == (
        400,
        {"job": ["data export with this job already exists."]},
    )
    on_the_bus = await stack.bus.send(
        SaveCatalogObject(kind="exports", fields={**export, "format": "json"})
    )
    assert (on_the_bus.accepted, on_the_bus.reason) == (
        False,
        "job: data export with this job already exists.",
    )
    # Given up by the first, the job may be another export's.
    await client.patch(f"/api/v2/exports/{first.json()['id']}/", json={"job": None})
    third = await client.post("/api/v2/exports/", json=export)
    assert third.status_code == 201
    shown = (await client.get(f"/api/v2/jobs/{job['id']}/")).json()["data_export"]
    assert shown["id"] == third.json()["id"]


async def test_a_job_a_data_export_names_stays_in_the_exports_project(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    await stack.save_catalog({"projects": [{"id": 17, "name": "Elsewhere"}]})
    job = await create_job(client, start_now=False, job_type_key="data_export", delay=0)
    export = {"user": 1, "project": 16, "format": "csv", "job": job["id"]}
    export_id = (await client.post("/api/v2/exports/", json=export)).json()["id"]
    stays = (
        f"Job {job['id']} stays in project 16: data export {export_id} of that project names it."
    )

    moved = await client.patch(f"/api/v2/jobs/{job['id']}/", json={"project_id": 17})
    on_the_bus = await stack.bus.send(UpdateJob(job_id=job["id"], changes={"project_id": 17}))

    assert (moved.status_code, moved.json()) == (400, {"project_id": [stays]})
    assert (on_the_bus.accepted, on_the_bus.reason) == (False, f"project_id: {stays}")
    assert (await client.get(f"/api/v2/jobs/{job['id']}/")).json()["project"]["id"] == 16
