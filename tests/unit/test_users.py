"""The users file: refusing a user twice, and revocations that every reader sees at once."""

from pathlib import Path

import pytest

from domain.permissions import ProjectRole
from infra.users import UserExists, Users


def test_adding_an_existing_user_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    users = Users(tmp_path / "users.sqlite3")
    users.add_new("root@example.org", superuser=True)
    with pytest.raises(UserExists):
        users.add_new("root@example.org")
    assert users.get("root@example.org").is_superuser is True


def test_a_revoked_token_is_unknown_to_a_reader_that_opened_the_file_before(
    tmp_path: Path,
) -> None:
    server, cli = Users(tmp_path / "users.sqlite3"), Users(tmp_path / "users.sqlite3")
    cli.add_new("ada@example.org")
    kept, revoked = cli.new_token("ada@example.org"), cli.new_token("ada@example.org")
    assert server.by_token(revoked) is not None

    assert cli.tokens_starting(revoked[:8]) == [revoked]
    assert cli.revoke_token(revoked) == "ada@example.org"
    assert server.by_token(revoked) is None
    assert cli.token_prefixes("ada@example.org") == [f"{kept[:8]}…"]


def test_removing_a_user_removes_its_tokens_and_roles(tmp_path: Path) -> None:
    users = Users(tmp_path / "users.sqlite3")
    users.add_new("ada@example.org")
    users.grant("ada@example.org", 16, ProjectRole.OWNER)
    token = users.new_token("ada@example.org")

    users.remove("ada@example.org")
    assert (users.by_token(token), users.all()) == (None, [])
    assert users.add_new("ada@example.org").roles == {}  # nothing of the removed one comes back
    assert users.token_prefixes("ada@example.org") == []


def test_an_address_differing_only_in_case_is_the_same_user(tmp_path: Path) -> None:
    users = Users(tmp_path / "users.sqlite3")
    users.add_new("root@example.org", superuser=True)
    with pytest.raises(UserExists):
        users.add_new("ROOT@Example.org")
    assert [user.email for user in users.all()] == ["root@example.org"]
