"""Settings from the environment (prefix JOBLEDGER_) or a .env file."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOBLEDGER_", env_file=".env", extra="ignore")

    nats_url: str | None = Field(default=None, description="unset: start an embedded nats-server")
    data_dir: Path = Path(".jobledger")
    event_store: str | None = Field(default=None, description="postgresql://… or unset for SQLite")
    read_store: str | None = Field(default=None, description="a SQLite file path, or unset")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    time_zone: str = "UTC"
    delay_tick: float = Field(
        default=1.0, gt=0, description="wall-clock seconds per second of a test job's delay"
    )
    runner_concurrency: int = Field(default=4, ge=1)
    stall_limit: float = Field(
        default=600.0, gt=0, description="seconds a started job may stay silent before it fails"
    )
    reap_interval: float = Field(default=60.0, gt=0, description="seconds between reaper rounds")
    command_timeout: float = Field(default=10.0, gt=0)
    task_ack_wait: float = Field(
        default=300.0, gt=0, description="seconds a task handed to a worker waits for its result"
    )
    token: str | None = Field(default=None, description="the CLI's API token for `serve`")
    cors_origins: str = Field(
        default="", description="comma-separated origins whose pages may call the API"
    )

    @property
    def allowed_origins(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def event_store_path(self) -> Path:
        return self.data_dir / "events.sqlite3"

    @property
    def read_store_path(self) -> Path:
        return Path(self.read_store) if self.read_store else self.data_dir / "views.sqlite3"

    @property
    def users_path(self) -> Path:
        return self.data_dir / "users.sqlite3"
