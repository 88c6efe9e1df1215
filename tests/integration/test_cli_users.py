"""`jobledger users ...` and the other file-handling commands: one-line errors, tokens that can
be revoked, and the example catalog the README points to."""

import re
from pathlib import Path

import httpx
from typer.testing import CliRunner, Result

from api import cli
from api.app import in_process_client
from api.bootstrap import Stack
from api.catalog_io import read_catalog_file
from infra.settings import Settings
from tests.conftest import create_job

EXAMPLE_CATALOG = Path(__file__).parents[2] / "docs" / "catalog.example.yaml"


def jobledger(settings: Settings, *arguments: str) -> Result:
    env = {"JOBLEDGER_DATA_DIR": str(settings.data_dir), "COLUMNS": "200"}
    return CliRunner().invoke(cli.app, list(arguments), env=env)


def token_of(result: Result) -> str:
    found = re.search(r"token: ([0-9a-f]{40})", result.output)
    assert found, result.output
    return found.group(1)


def test_adding_a_user_twice_is_refused_and_keeps_it_as_it_was(settings: Settings) -> None:
    assert jobledger(settings, "users", "add", "root@example.org", "--superuser").exit_code == 0
    again = jobledger(settings, "users", "add", "root@example.org")
    assert (again.exit_code, again.output) == (
        1,
        "root@example.org exists already; `jobledger users token root@example.org` prints"
        " another token\n",
    )
    listed = jobledger(settings, "users", "ls").output
    assert "root@example.org (superuser)" in listed


def test_an_address_that_is_not_an_email_is_refused(settings: Settings) -> None:
    for address in ("", "notanemail", "@example.org", "ada@"):
        refused = jobledger(settings, "users", "add", address)
        assert (refused.exit_code, refused.output) == (
            1,
            f"{address!r} is not an email address (name@domain)\n",
        )
    assert jobledger(settings, "users", "ls").output == ""


async def test_a_revoked_token_is_401_at_once_and_ls_shows_tokens_by_prefix(
    stack: Stack, settings: Settings
) -> None:
    first = token_of(jobledger(settings, "users", "add", "ada@example.org"))
    second = jobledger(settings, "users", "token", "ada@example.org").output.strip()
    listed = jobledger(settings, "users", "ls").output
    assert listed == f"ada@example.org  \n  tokens: {first[:8]}…, {second[:8]}…\n"

    short = jobledger(settings, "users", "revoke-token", first[:7])
    assert (short.exit_code, short.output) == (1, "give the token's first 8 characters at least\n")
    unknown = jobledger(settings, "users", "revoke-token", "ffffffffff")
    assert unknown.exit_code == 1
    assert unknown.output == "no token start with 'ffffffffff'; revoke one token at a time\n"
    async with in_process_client(stack, first) as ada:
        assert (await ada.get("/api/v2/jobs/")).status_code == 200
        revoked = jobledger(settings, "users", "revoke-token", first[:10])
        assert (revoked.exit_code, revoked.output) == (
            0,
            f"revoked {first[:8]}… of ada@example.org\n",
        )
        refused = await ada.get("/api/v2/jobs/")
        assert (refused.status_code, refused.json()) == (401, {"detail": "Invalid token."})
    async with in_process_client(stack, second) as still:
        assert (await still.get("/api/v2/jobs/")).status_code == 200
        assert jobledger(settings, "users", "remove", "ada@example.org").exit_code == 0
        assert (await still.get("/api/v2/jobs/")).status_code == 401
    gone = jobledger(settings, "users", "remove", "ada@example.org")
    assert (gone.exit_code, gone.output) == (
        1,
        "no user 'ada@example.org'; add it first with `jobledger users add`\n",
    )


async def test_an_export_to_a_path_that_cannot_be_written_is_one_line(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    job = await create_job(client, start_now=False)
    target = tmp_path / "no" / "such" / "dir.jsonl"
    result = jobledger(settings, "export-history", str(job["id"]), "--output", str(target))
    assert (result.exit_code, result.output) == (
        1,
        f"Cannot write {target}: No such file or directory\n",
    )


async def test_the_example_catalog_imports_as_it_is(stack: Stack) -> None:
    counts = await stack.save_catalog(read_catalog_file(EXAMPLE_CATALOG))  # over the seed's
    assert counts == {
        "projects": 2,
        "deployments": 1,
        "captures": 3,
        "collections": 1,
        "pipelines": 1,
        "services": 1,
        "exports": 1,
    }
