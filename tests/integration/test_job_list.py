"""The job list: its filters, their validation, order, search and paging (CONTRACT.md 3, 11, 16).

Every test lists the same seven jobs, made through the API on a stack without runners (so each
stays where it was put) and moved on by runner reports sent over the bus:

    id  name            status   type         dispatch   project pipeline deploy. coll. capture
    1   Trest           CREATED  ml           internal   16      1        -       5     -
    2   Quebec survey   CREATED  ml           async_api  18      2        3       6     -
    3   Données export  CREATED  data_export  internal   16      -        -       -     7
    4   Panama night    STARTED  ml           async_api  16      1        4       5     -
    5   Panama day      FAILURE  ml           async_api  16      1        -       5     -
    6   Cancelled       REVOKED  ml           internal   16      -        -       -     -
    7   Panama dawn     PENDING  ml           async_api  16      1        -       5     -

Job 4's `results` stage has finished (SUCCESS) while the job still runs, and job 4 is the one
updated last. Only jobs 4 and 5 have started, only jobs 5 and 6 have finished (5 first).
"""

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio

from api.app import in_process_client
from api.bootstrap import ALL_ROLES, Role, Stack, running_stack
from api.catalog_io import SEED_CATALOG
from domain.commands import ClaimJob, FinishJob, ReportProgress, RunnerReport
from domain.statuses import JobStatus
from infra.settings import Settings
from tests.conftest import admin_token, create_job, settled

# The tests share one stack with the seven jobs and only read them (but one, which has its own).
pytestmark = pytest.mark.asyncio(loop_scope="module")

TREST, QUEBEC, EXPORT, NIGHT, DAY, CANCELLED, DAWN = range(1, 8)
NEWEST_FIRST = [DAWN, CANCELLED, DAY, NIGHT, EXPORT, QUEBEC, TREST]
NOT_FAILED = [DAWN, NIGHT, EXPORT, QUEBEC, TREST]  # neither FAILURE, REVOKED nor UNKNOWN
RUNNER = "test-runner"
BASE_URL = "http://127.0.0.1:8000/api/v2/jobs/"
PANAMA, QUEBEC_VERMONT = "panama_moths_2023", "quebec_vermont_moths_2023"
UNKNOWN_OBJECT = "Select a valid choice. That choice is not one of the available choices."
WHOLE_NUMBER = "Enter a whole number."
NOT_NEGATIVE = "Ensure this value is greater than or equal to 0."

CATALOG: dict[str, list[dict[str, Any]]] = {
    "projects": [{"id": 18, "name": "Vermont Atlas of Life"}],
    "deployments": [
        {"id": 3, "name": "Quebec trap", "project_id": 18},
        {"id": 4, "name": "Panama trap", "project_id": 16},
    ],
    "collections": [{"id": 6, "name": "Quebec nights", "method": "full", "project_id": 18}],
    "captures": [{"id": 7, "url": "https://example.org/7.jpg", "width": 4096, "height": 2160}],
    "pipelines": [
        {"id": 2, "name": "Quebec & Vermont moths", "slug": QUEBEC_VERMONT},
        {"id": 3, "name": "Global moths", "slug": "global_moths_2024"},
    ],
}


@contextlib.asynccontextmanager
async def seven_jobs(settings: Settings) -> AsyncIterator[tuple[Stack, httpx.AsyncClient]]:
    """A stack without runners holding the jobs of the table above, and a superuser's client."""
    async with running_stack(settings, ALL_ROLES - {Role.RUNNER}) as stack:
        await stack.save_catalog(SEED_CATALOG)
        await stack.save_catalog(CATALOG)
        async with in_process_client(stack, admin_token(stack)) as client:
            await add_the_seven_jobs(client, stack)
            yield stack, client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    """A superuser's client of the stack with the seven jobs, for all tests of this module."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        nats_url=None,
        data_dir=tmp_path_factory.mktemp("data"),
        event_store=None,
        read_store=None,
    )
    async with seven_jobs(settings) as (_, shared):
        yield shared


async def report(stack: Stack, command: RunnerReport) -> None:
    outcome = await stack.bus.send(command)
    assert outcome.accepted, outcome.reason


async def add_the_seven_jobs(client: httpx.AsyncClient, stack: Stack) -> None:
    """Made and moved on in this order, so that the times order them as the table says."""
    no_pipeline = {"pipeline_id": None, "source_image_collection_id": None}
    await create_job(client, start_now=False)
    await create_job(
        client,
        start_now=False,
        name="Quebec survey",
        delay=0,
        project_id=18,
        pipeline_id=2,
        deployment_id=3,
        source_image_collection_id=6,
    )
    await create_job(
        client,
        start_now=False,
        name="Données export",
        delay=0,
        job_type_key="data_export",
        source_image_single_id=7,
        **no_pipeline,
    )
    await create_job(client, name="Panama night", delay=0, deployment_id=4)
    await report(stack, ClaimJob(job_id=NIGHT, attempt=1, runner=RUNNER))
    results_done = {"stage": "results", "status": JobStatus.SUCCESS, "progress": 1.0}
    await report(stack, ReportProgress(job_id=NIGHT, attempt=1, runner=RUNNER, **results_done))
    await create_job(client, name="Panama day", delay=0)
    await report(stack, ClaimJob(job_id=DAY, attempt=1, runner=RUNNER))
    await report(stack, FinishJob(job_id=DAY, attempt=1, runner=RUNNER, status=JobStatus.FAILURE))
    await create_job(client, start_now=False, name="Cancelled", delay=5, **no_pipeline)
    assert (await client.post(f"/api/v2/jobs/{CANCELLED}/cancel/")).json()["status"] == "REVOKED"
    created = await create_job(client, name="Panama dawn", delay=0)
    assert created["id"] == DAWN
    await report(stack, ReportProgress(job_id=NIGHT, attempt=1, runner=RUNNER, stage="process"))
    await settled(stack)


async def listing(client: httpx.AsyncClient, **params: str) -> Any:
    response = await client.get("/api/v2/jobs/", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def ids_of(page: dict[str, Any]) -> list[int]:
    return [item["id"] for item in page["results"]]


async def test_the_seven_jobs_are_as_the_table_says(client: httpx.AsyncClient) -> None:
    page = await listing(client)
    assert page["count"] == 7
    assert [(job["id"], job["status"], job["dispatch_mode"]) for job in page["results"]] == [
        (DAWN, "PENDING", "async_api"),
        (CANCELLED, "REVOKED", "internal"),
        (DAY, "FAILURE", "async_api"),
        (NIGHT, "STARTED", "async_api"),
        (EXPORT, "CREATED", "internal"),
        (QUEBEC, "CREATED", "async_api"),
        (TREST, "CREATED", "internal"),
    ]
    night = page["results"][3]
    assert [stage["status"] for stage in night["progress"]["stages"]] == [
        "CREATED",
        "CREATED",
        "SUCCESS",
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, NEWEST_FIRST),
        ({"project_id": "16"}, [DAWN, CANCELLED, DAY, NIGHT, EXPORT, TREST]),
        ({"project_id": ""}, NEWEST_FIRST),
        ({"project": "18"}, [QUEBEC]),
        ({"project_id": "16", "project": "18"}, []),
        ({"deployment": "3"}, [QUEBEC]),
        ({"deployment": "4"}, [NIGHT]),
        ({"source_image_collection": "5"}, [DAWN, DAY, NIGHT, TREST]),
        ({"source_image_collection": "6"}, [QUEBEC]),
        ({"source_image_single": "7"}, [EXPORT]),
        ({"pipeline": "1"}, [DAWN, DAY, NIGHT, TREST]),
        ({"pipeline": " 2 "}, [QUEBEC]),
        ({"pipeline": "3"}, []),
        ({"status": "CREATED"}, [EXPORT, QUEBEC, TREST]),
        ({"status": "REVOKED"}, [CANCELLED]),
        ({"status": "RECEIVED"}, []),
        ({"status": ""}, NEWEST_FIRST),
        ({"job_type_key": "data_export"}, [EXPORT]),
        ({"job_type_key": "ml"}, [DAWN, CANCELLED, DAY, NIGHT, QUEBEC, TREST]),
        ({"job_type_key": "unknown"}, []),
        ({"dispatch_mode": "async_api"}, [DAWN, DAY, NIGHT, QUEBEC]),
        ({"dispatch_mode": "internal"}, [CANCELLED, EXPORT, TREST]),
        ({"dispatch_mode": "sync_api"}, []),
        ({"status": "CREATED", "dispatch_mode": "internal"}, [EXPORT, TREST]),
        ({"pipeline__slug": PANAMA}, [DAWN, DAY, NIGHT, TREST]),
        ({"pipeline__slug": "Panama_Moths_2023"}, []),
        ({"pipeline__slug": "global_moths_2024"}, []),
        ({"pipeline__slug": "no such slug; not even 400"}, []),
        ({"pipeline__slug__in": f"{QUEBEC_VERMONT},,global_moths_2024"}, [QUEBEC]),
        ({"pipeline__slug__in": f"{PANAMA},{QUEBEC_VERMONT}"}, [DAWN, DAY, NIGHT, QUEBEC, TREST]),
        ({"pipeline__slug__in": ","}, NEWEST_FIRST),
        ({"pipeline__slug__in": ""}, NEWEST_FIRST),
        ({"pipeline__slug": PANAMA, "pipeline__slug__in": QUEBEC_VERMONT}, []),
        (
            {"pipeline": "1", "pipeline__slug__in": f"{PANAMA},{QUEBEC_VERMONT}"},
            [DAWN, DAY, NIGHT, TREST],
        ),
    ],
)
async def test_each_filter_keeps_exactly_the_matching_jobs(
    client: httpx.AsyncClient, params: dict[str, str], expected: list[int]
) -> None:
    page = await listing(client, **params, limit="100")
    assert ids_of(page) == expected
    assert page["count"] == len(expected)


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ({"project_id": "sixteen"}, {"project_id": [WHOLE_NUMBER]}),
        ({"project_id": "1.5"}, {"project_id": [WHOLE_NUMBER]}),
        ({"project_id": "-16"}, {"project_id": [NOT_NEGATIVE]}),
        ({"project": "sixteen"}, {"project": [WHOLE_NUMBER]}),
        ({"project": "99"}, {"project": [UNKNOWN_OBJECT]}),
        ({"project": "-16"}, {"project": [UNKNOWN_OBJECT]}),
        ({"deployment": "99"}, {"deployment": [UNKNOWN_OBJECT]}),
        ({"source_image_collection": "99"}, {"source_image_collection": [UNKNOWN_OBJECT]}),
        ({"source_image_single": "x"}, {"source_image_single": [WHOLE_NUMBER]}),
        ({"source_image_single": "99"}, {"source_image_single": [UNKNOWN_OBJECT]}),
        ({"pipeline": "panama"}, {"pipeline": [WHOLE_NUMBER]}),
        ({"pipeline": "99"}, {"pipeline": [UNKNOWN_OBJECT]}),
        (
            {"status": "started"},
            {"status": ["Select a valid choice. started is not one of the available choices."]},
        ),
        (
            {"job_type_key": "bake"},
            {"job_type_key": ["Select a valid choice. bake is not one of the available choices."]},
        ),
        (
            {"dispatch_mode": "ASYNC_API"},
            {
                "dispatch_mode": [
                    "Select a valid choice. ASYNC_API is not one of the available choices."
                ]
            },
        ),
        ({"cutoff_hours": "soon"}, {"cutoff_hours": [WHOLE_NUMBER]}),
        ({"cutoff_hours": "1.5"}, {"cutoff_hours": [WHOLE_NUMBER]}),
        ({"cutoff_hours": "-1"}, {"cutoff_hours": [NOT_NEGATIVE]}),
        (
            {"pipeline": "x", "status": "done", "cutoff_hours": "-1", "limit": "x"},
            {
                "pipeline": [WHOLE_NUMBER],
                "status": ["Select a valid choice. done is not one of the available choices."],
                "cutoff_hours": [NOT_NEGATIVE],
            },
        ),
    ],
)
async def test_a_bad_filter_value_is_400_naming_each_parameter(
    client: httpx.AsyncClient, params: dict[str, str], errors: dict[str, list[str]]
) -> None:
    response = await client.get("/api/v2/jobs/", params=params)
    assert response.status_code == 400
    assert response.json() == errors


@pytest.mark.parametrize("project_id", ["99", "0"])
async def test_a_project_id_not_in_the_catalog_is_404_not_no_filtering(
    client: httpx.AsyncClient, project_id: str
) -> None:
    response = await client.get("/api/v2/jobs/", params={"project_id": project_id})
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "many", "offset": "-3"},
        {"ordering": "colour,-size"},
        {"ids_only": "perhaps", "incomplete_only": "no", "limit": "10"},
        {"pipeline__slug__in": ",,", "search": ""},
    ],
)
async def test_these_parameters_never_give_400(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await client.get("/api/v2/jobs/", params=params)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", [DAWN, EXPORT, QUEBEC, TREST]),
        ("", [DAWN, EXPORT, QUEBEC, TREST]),
        ("no", [DAWN, EXPORT, QUEBEC, TREST]),
        ("False", NEWEST_FIRST),
        ("0", NEWEST_FIRST),
    ],
)
async def test_incomplete_only_drops_final_jobs_and_jobs_whose_results_stage_ended(
    client: httpx.AsyncClient, value: str, expected: list[int]
) -> None:
    # Day (FAILURE) and Cancelled (REVOKED) are final; Night runs, but its results stage is
    # SUCCESS. Trest (a delay stage) and Données export (no stages) have no results stage.
    page = await listing(client, incomplete_only=value, limit="100")
    assert ids_of(page) == expected
    assert page["count"] == len(expected)


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("name", [CANCELLED, EXPORT, DAWN, DAY, NIGHT, QUEBEC, TREST]),
        ("-name", [TREST, QUEBEC, NIGHT, DAY, DAWN, EXPORT, CANCELLED]),
        ("created_at", [TREST, QUEBEC, EXPORT, NIGHT, DAY, CANCELLED, DAWN]),
        ("-created_at", NEWEST_FIRST),
        ("-updated_at", [NIGHT, DAWN, CANCELLED, DAY, EXPORT, QUEBEC, TREST]),
        ("status", [EXPORT, QUEBEC, TREST, DAY, DAWN, CANCELLED, NIGHT]),
        ("started_at", [NIGHT, DAY, DAWN, CANCELLED, EXPORT, QUEBEC, TREST]),
        ("-started_at", [DAY, NIGHT, DAWN, CANCELLED, EXPORT, QUEBEC, TREST]),
        ("finished_at", [DAY, CANCELLED, DAWN, NIGHT, EXPORT, QUEBEC, TREST]),
        ("-finished_at", [CANCELLED, DAY, DAWN, NIGHT, EXPORT, QUEBEC, TREST]),
        ("deployment", [QUEBEC, NIGHT, DAWN, CANCELLED, DAY, EXPORT, TREST]),
        ("-deployment", [NIGHT, QUEBEC, DAWN, CANCELLED, DAY, EXPORT, TREST]),
        ("source_image_collection", [DAWN, DAY, NIGHT, TREST, QUEBEC, CANCELLED, EXPORT]),
        ("pipeline", [DAWN, DAY, NIGHT, TREST, QUEBEC, CANCELLED, EXPORT]),
        ("-pipeline", [QUEBEC, DAWN, DAY, NIGHT, TREST, CANCELLED, EXPORT]),
        ("-project", [QUEBEC, DAWN, CANCELLED, DAY, NIGHT, EXPORT, TREST]),
        ("project,created_at", [TREST, EXPORT, NIGHT, DAY, CANCELLED, DAWN, QUEBEC]),
        ("colour", NEWEST_FIRST),
        ("colour, -name", [TREST, QUEBEC, NIGHT, DAY, DAWN, EXPORT, CANCELLED]),
    ],
)
async def test_ordering_by_a_field_either_way_with_nulls_last(
    client: httpx.AsyncClient, ordering: str, expected: list[int]
) -> None:
    # Ties, and the nulls at the end, keep the newest job first.
    assert ids_of(await listing(client, ordering=ordering, limit="100")) == expected


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("panama", [DAWN, DAY, NIGHT, TREST]),  # Trest by its pipeline's name
        ("VERMONT", [QUEBEC]),  # only in the pipeline's name
        ("données", [EXPORT]),  # case-insensitive beyond ASCII
        ("DONNÉES", [EXPORT]),
        ("anama nig", [NIGHT]),  # every word must match
        ("moths,trest", [TREST]),
        ("global", []),  # a pipeline no job uses
        ("  ", NEWEST_FIRST),
    ],
)
async def test_search_finds_words_in_the_job_or_pipeline_name(
    client: httpx.AsyncClient, search: str, expected: list[int]
) -> None:
    page = await listing(client, search=search, limit="100")
    assert ids_of(page) == expected
    assert page["count"] == len(expected)


async def test_pages_link_to_their_neighbours_with_the_query_kept(
    client: httpx.AsyncClient,
) -> None:
    page = await listing(client, status="CREATED", limit="1", offset="1")
    assert page == {
        "count": 3,
        "next": f"{BASE_URL}?status=CREATED&limit=1&offset=2",
        "previous": f"{BASE_URL}?status=CREATED&limit=1",
        "results": [page["results"][0]],
        "user_permissions": ["create"],  # the caller is a superuser
    }
    assert ids_of(page) == [QUEBEC]
    last = await listing(client, limit="3", offset="6")
    assert (ids_of(last), last["next"], last["previous"]) == (
        [TREST],
        None,
        f"{BASE_URL}?limit=3&offset=3",
    )
    first = await listing(client, limit="3")
    assert (first["next"], first["previous"]) == (f"{BASE_URL}?limit=3&offset=3", None)


@pytest.mark.parametrize(
    ("params", "size"),
    [
        ({"limit": "0"}, 7),  # falls back to 10
        ({"limit": "x", "offset": "-1"}, 7),
        ({"limit": "2", "offset": "x"}, 2),
        ({"limit": "99999999999999999999999"}, 7),
        ({"offset": "5"}, 2),
        ({"offset": "99999999999999999999999"}, 0),
    ],
)
async def test_bad_limit_and_offset_fall_back_to_the_defaults(
    client: httpx.AsyncClient, params: dict[str, str], size: int
) -> None:
    page = await listing(client, **params)
    assert (page["count"], len(page["results"])) == (7, size)


async def test_ids_only_lists_one_random_matching_job_with_its_pipeline_slug(
    client: httpx.AsyncClient,
) -> None:
    seen = set()
    for _ in range(30):
        page = await listing(client, ids_only="1")
        assert page["count"] == 7
        [item] = page["results"]
        assert list(item) == ["id", "pipeline_slug", "user_permissions"]
        seen.add(item["id"])
    assert len(seen) > 1
    [export] = (await listing(client, ids_only="", source_image_single="7"))["results"]
    assert export == {"id": EXPORT, "pipeline_slug": None, "user_permissions": []}
    [quebec] = (await listing(client, ids_only="yes", deployment="3"))["results"]
    assert quebec == {"id": QUEBEC, "pipeline_slug": QUEBEC_VERMONT, "user_permissions": []}


@pytest.mark.parametrize(
    ("params", "size"),
    [
        ({}, 1),
        ({"limit": "3"}, 3),
        ({"limit": "nonsense"}, 7),  # present, so the default of 10 applies
        ({"page_size": "3"}, 7),  # not a paging parameter: the default of 10 (a quirk)
        ({"ids_only": "false"}, 7),
    ],
)
async def test_ids_only_pages_hold_one_job_unless_limit_or_page_size_is_given(
    client: httpx.AsyncClient, params: dict[str, str], size: int
) -> None:
    page = await listing(client, **{"ids_only": "1", **params})
    assert (page["count"], len(page["results"])) == (7, size)


async def test_ids_only_keeps_an_order_the_client_asks_for(client: httpx.AsyncClient) -> None:
    page = await listing(client, ids_only="1", ordering="name", limit="2")
    assert ids_of(page) == [CANCELLED, EXPORT]


async def test_the_workers_poll_without_a_slash_is_redirected_with_its_query(
    client: httpx.AsyncClient,
) -> None:
    query = (
        f"pipeline__slug__in={PANAMA},{QUEBEC_VERMONT}"
        "&ids_only=1&incomplete_only=1&dispatch_mode=async_api"
    )
    response = await client.get(f"/api/v2/jobs?{query}")
    assert response.status_code == 301
    assert response.headers["location"] == f"/api/v2/jobs/?{query}"

    followed = await client.get(f"/api/v2/jobs?{query}", follow_redirects=True)
    assert followed.status_code == 200
    assert str(followed.url) == f"{BASE_URL}?{query}"
    page = followed.json()
    # Quebec survey (CREATED) and Panama dawn (PENDING): async, unfinished, of those pipelines.
    assert page["count"] == 2
    [item] = page["results"]
    assert item in (
        {"id": QUEBEC, "pipeline_slug": QUEBEC_VERMONT, "user_permissions": []},
        {"id": DAWN, "pipeline_slug": PANAMA, "user_permissions": []},
    )


@pytest.mark.parametrize(
    ("method", "path", "location"),
    [
        ("GET", "/api/v2/jobs", "/api/v2/jobs/"),
        ("HEAD", "/api/v2/jobs?limit=2", "/api/v2/jobs/?limit=2"),
        ("GET", "/api/v2/jobs/1", "/api/v2/jobs/1/"),
        ("GET", "/api/v2/jobs/1/history?x=%2C", "/api/v2/jobs/1/history/?x=%2C"),
    ],
)
async def test_a_get_without_the_trailing_slash_is_a_301_to_it(
    client: httpx.AsyncClient, method: str, path: str, location: str
) -> None:
    response = await client.request(method, path)
    assert (response.status_code, response.headers["location"]) == (301, location)


def age(stack: Stack, job_id: int, hours: float) -> None:
    """Make the job look last updated `hours` ago (a test cannot wait days for it)."""
    updated_at = (datetime.now(UTC) - timedelta(hours=hours)).isoformat()
    with stack.read_store.reading() as db, db:
        db.execute("UPDATE jobs SET updated_at = ? WHERE job_id = ?", (updated_at, job_id))


async def test_failed_jobs_not_updated_for_cutoff_hours_are_left_out(settings: Settings) -> None:
    async with seven_jobs(settings) as (stack, client):  # its own: it ages jobs
        # Fresh: cutoff_hours=0 leaves out every failed job (FAILURE, REVOKED, UNKNOWN).
        assert ids_of(await listing(client, cutoff_hours="0")) == NOT_FAILED
        assert ids_of(await listing(client)) == NEWEST_FIRST

        age(stack, DAY, 73)  # FAILURE
        age(stack, CANCELLED, 71)  # REVOKED
        age(stack, TREST, 1000)  # CREATED: not a failed job, so never left out
        for default in ({}, {"cutoff_hours": ""}, {"cutoff_hours": "72"}):
            page = await listing(client, **default)
            assert ids_of(page) == [DAWN, CANCELLED, NIGHT, EXPORT, QUEBEC, TREST]
            assert page["count"] == 6
        assert ids_of(await listing(client, cutoff_hours="70")) == NOT_FAILED
        assert ids_of(await listing(client, cutoff_hours="74")) == NEWEST_FIRST
        assert ids_of(await listing(client, cutoff_hours="9" * 30)) == NEWEST_FIRST
        # Only lists leave it out: the job itself is still there.
        assert (await client.get(f"/api/v2/jobs/{DAY}/")).json()["status"] == "FAILURE"
