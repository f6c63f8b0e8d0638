"""Settings every service has; each service subclasses with its own env prefix."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from netweave.runtime.auth import AuthSettings


class ServiceSettings(BaseSettings):
    """Read from the environment (``NETWEAVE_<SERVICE>_*``) and an optional ``.env``."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None, env_nested_delimiter="__")

    database_url: str = Field(
        default="sqlite+aiosqlite:///./.netweave/service.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///file or postgresql+asyncpg://...",
    )
    nats_url: str = Field(default="nats://127.0.0.1:4222", description="comma-separated servers")
    nats_user: str | None = None
    nats_password: SecretStr | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    consumer_concurrency: int = Field(default=8, ge=1, le=256)
    shutdown_grace_seconds: float = Field(default=20.0, ge=0)
    auth: AuthSettings = Field(default_factory=AuthSettings, description="set with <PREFIX>AUTH__<FIELD>")

    def nats_servers(self) -> list[str]:
        return [s.strip() for s in self.nats_url.split(",") if s.strip()]
