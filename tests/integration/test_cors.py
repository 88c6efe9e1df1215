"""Antenna's UI, served from a host of its own, may call the API where CORS_ORIGINS allows it."""

import httpx

from api.app import in_process_client
from api.bootstrap import ALL_ROLES, Role, Stack, running_stack
from api.catalog_io import SEED_CATALOG
from infra.settings import Settings
from tests.conftest import admin_token

UI = "https://ui.example.org"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


async def test_the_uis_origin_may_call_the_api_and_read_the_version_headers(
    settings: Settings,
) -> None:
    allowing = settings.model_copy(update={"cors_origins": f"{UI}, http://localhost:3000"})
    async with running_stack(allowing, ALL_ROLES - {Role.RUNNER}) as stack:
        await stack.save_catalog(SEED_CATALOG)
        async with in_process_client(stack, admin_token(stack)) as client:
            asked = await client.options("/api/v2/jobs/", headers={"Origin": UI, **PREFLIGHT})
            assert asked.status_code == 200
            assert asked.headers["access-control-allow-origin"] == UI
            assert "POST" in asked.headers["access-control-allow-methods"]
            assert asked.headers["access-control-allow-headers"] == "authorization, content-type"

            created = await client.post(
                "/api/v2/jobs/",
                json={"name": "From the UI", "delay": 1, "project_id": 16},
                headers={"Origin": UI},
            )
            assert created.status_code == 201
            assert created.headers["access-control-allow-origin"] == UI
            exposed = created.headers["access-control-expose-headers"]
            assert exposed == "X-Job-Version, X-Projection-Position"

            other = "https://elsewhere.example.org"
            refused = await client.options("/api/v2/jobs/", headers={"Origin": other, **PREFLIGHT})
            assert (refused.status_code, refused.text) == (400, "Disallowed CORS origin")


async def test_without_cors_origins_no_page_elsewhere_may_call_it(
    idle: tuple[Stack, httpx.AsyncClient],
) -> None:
    _, client = idle
    page = await client.get("/api/v2/jobs/", headers={"Origin": UI})
    assert page.status_code == 200
    assert "access-control-allow-origin" not in page.headers
    asked = await client.options("/api/v2/jobs/", headers={"Origin": UI, **PREFLIGHT})
    assert asked.status_code == 405
