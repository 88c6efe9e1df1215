"""`jobledger users ...` and the other file-handling commands: one-line errors, tokens that can
be revoked, and the example catalog the README points to."""

import re
import sys
from pathlib import Path

import httpx
import pytest
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
    assert unknown.output == "no token starts with 'ffffffffff'; `jobledger users ls` shows them\n"
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


def test_a_prefix_of_several_tokens_revokes_none(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = iter(["3f2a9c1e" + "0" * 32, "3f2a9c1e" + "1" * 32])
    monkeypatch.setattr("infra.users.secrets.token_hex", lambda size: next(keys))
    jobledger(settings, "users", "add", "ada@example.org")
    jobledger(settings, "users", "token", "ada@example.org")
    both = jobledger(settings, "users", "revoke-token", "3f2a9c1e")
    assert (both.exit_code, both.output) == (
        1,
        "2 tokens start with '3f2a9c1e'; give more of the token to revoke one\n",
    )
    one = jobledger(settings, "users", "revoke-token", "3f2a9c1e1")
    assert (one.exit_code, one.output) == (0, "revoked 3f2a9c1e… of ada@example.org\n")
    assert jobledger(settings, "users", "ls").output == "ada@example.org  \n  tokens: 3f2a9c1e…\n"


def test_files_that_cannot_be_read_are_one_line(settings: Settings, tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    for arguments, message in (
        (("verify-export", str(missing)), f"Cannot read {missing}: No such file or directory"),
        (("verify-export", str(tmp_path)), f"Cannot read {tmp_path}: Is a directory"),
        (("catalog", "import", str(missing)), f"Cannot read {missing}: No such file or directory"),
    ):
        result = jobledger(settings, *arguments)
        assert (result.exit_code, result.output) == (1, message + "\n")
    unclosed = tmp_path / "unclosed.yaml"
    unclosed.write_text("projects: [\n")
    result = jobledger(settings, "catalog", "import", str(unclosed))
    assert (result.exit_code, result.output) == (
        1,
        f"{unclosed}: not valid YAML: expected the node content, but found '<stream end>'"
        " (line 2, column 1)\n",
    )


def test_a_data_dir_that_cannot_be_made_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").touch()
    data_dir = tmp_path / "a-file" / "data"
    monkeypatch.setenv("JOBLEDGER_DATA_DIR", str(data_dir))
    monkeypatch.setattr(sys, "argv", ["jobledger", "users", "ls"])
    with pytest.raises(SystemExit) as exit:
        cli.main()
    assert (exit.value.code, capsys.readouterr().err) == (
        1,
        f"Cannot use {data_dir}: Not a directory\n",
    )


def test_revoking_a_role_the_user_does_not_have_says_so(settings: Settings) -> None:
    jobledger(settings, "users", "add", "ada@example.org")
    jobledger(settings, "users", "grant", "ada@example.org", "16", "member")

    missing = jobledger(settings, "users", "revoke", "ada@example.org", "18")
    assert (missing.exit_code, missing.output) == (1, "ada@example.org has no role on project 18\n")
    revoked = jobledger(settings, "users", "revoke", "ada@example.org", "16")
    assert (revoked.exit_code, revoked.output) == (0, "ada@example.org  \n")
