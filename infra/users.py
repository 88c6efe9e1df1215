"""Users, their API tokens and their roles per project: a SQLite file in the data dir."""

import secrets
import sqlite3
from pathlib import Path

from domain.permissions import ProjectRole, User

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    is_superuser INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tokens (
    key TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS roles (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id INTEGER NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (user_id, project_id)
);
"""


OPERATOR = "operator@localhost"


def fingerprint(token: str) -> str:
    """What may be shown of a token in logs: its first 8 characters."""
    return f"{token[:8]}…"


class UserExists(Exception):
    pass


class Users:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.executescript(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA foreign_keys = ON")
        return db

    def add(self, email: str, superuser: bool = False) -> User:
        """Add the user, or set an existing one's superuser flag."""
        with self._db() as db:
            db.execute(
                "INSERT INTO users (email, is_superuser) VALUES (?, ?)"
                " ON CONFLICT (email) DO UPDATE SET is_superuser = excluded.is_superuser",
                (email, superuser),
            )
        return self.get(email)

    def add_new(self, email: str, superuser: bool = False) -> User:
        """Add a user that does not exist yet, in any letter case: UserExists leaves an
        existing one as it was."""
        with self._db() as db:
            # INSERT ... SELECT: checked and inserted as one statement.
            added = db.execute(
                "INSERT INTO users (email, is_superuser) SELECT ?, ?"
                " WHERE NOT EXISTS (SELECT 1 FROM users WHERE email = ? COLLATE NOCASE)",
                (email, superuser, email),
            )
        if added.rowcount == 0:
            raise UserExists(email)
        return self.get(email)

    def remove(self, email: str) -> None:
        """The user, its tokens and its roles."""
        user = self.get(email)
        with self._db() as db:
            db.execute("DELETE FROM users WHERE id = ?", (user.id,))

    def token_prefixes(self, email: str) -> list[str]:
        """The user's tokens as they may be shown: by their first characters."""
        user = self.get(email)
        with self._db() as db:
            keys = db.execute("SELECT key FROM tokens WHERE user_id = ? ORDER BY rowid", (user.id,))
            return [fingerprint(key) for (key,) in keys]

    def tokens_starting(self, prefix: str) -> list[str]:
        with self._db() as db:
            rows = db.execute(
                "SELECT key FROM tokens WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
            )
            return [key for (key,) in rows]

    def revoke_token(self, key: str) -> str:
        """Delete the token; the email of the user it was for."""
        with self._db() as db:
            row = db.execute(
                "SELECT email FROM tokens JOIN users ON users.id = tokens.user_id WHERE key = ?",
                (key,),
            ).fetchone()
            if row is None:
                raise KeyError(f"no token {fingerprint(key)}")
            db.execute("DELETE FROM tokens WHERE key = ?", (key,))
        return str(row[0])

    def get(self, email: str) -> User:
        with self._db() as db:
            row = db.execute(
                "SELECT id, email, is_superuser FROM users WHERE email = ?", (email,)
            ).fetchone()
            if row is None:
                raise KeyError(f"no user {email!r}")
            return self._user(db, row)

    def new_token(self, email: str) -> str:
        """A new 40-character key for the user; shown once, never logged in full."""
        user = self.get(email)
        key = secrets.token_hex(20)
        with self._db() as db:
            db.execute("INSERT INTO tokens (key, user_id) VALUES (?, ?)", (key, user.id))
        return key

    def operator_token(self) -> str:
        """The token of this data dir's local operator, a superuser, for the embedded CLI."""
        self.add(OPERATOR, superuser=True)
        with self._db() as db:
            row = db.execute(
                "SELECT key FROM tokens JOIN users ON users.id = tokens.user_id WHERE email = ?",
                (OPERATOR,),
            ).fetchone()
        return str(row[0]) if row else self.new_token(OPERATOR)

    def grant(self, email: str, project_id: int, role: ProjectRole) -> User:
        user = self.get(email)
        with self._db() as db:
            db.execute(
                "INSERT INTO roles (user_id, project_id, role) VALUES (?, ?, ?)"
                " ON CONFLICT (user_id, project_id) DO UPDATE SET role = excluded.role",
                (user.id, project_id, role.value),
            )
        return self.get(email)

    def revoke(self, email: str, project_id: int) -> User:
        user = self.get(email)
        with self._db() as db:
            db.execute(
                "DELETE FROM roles WHERE user_id = ? AND project_id = ?", (user.id, project_id)
            )
        return self.get(email)

    def by_token(self, key: str) -> User | None:
        with self._db() as db:
            row = db.execute(
                "SELECT users.id, email, is_superuser FROM tokens"
                " JOIN users ON users.id = tokens.user_id WHERE key = ?",
                (key,),
            ).fetchone()
            return self._user(db, row) if row else None

    def all(self) -> list[User]:
        with self._db() as db:
            rows = db.execute("SELECT id, email, is_superuser FROM users ORDER BY id").fetchall()
            return [self._user(db, row) for row in rows]

    @staticmethod
    def _user(db: sqlite3.Connection, row: tuple[int, str, int]) -> User:
        roles = db.execute("SELECT project_id, role FROM roles WHERE user_id = ?", (row[0],))
        return User(
            id=row[0],
            email=row[1],
            is_superuser=bool(row[2]),
            roles={project: ProjectRole(role) for project, role in roles},
        )
