"""The console's settings, from ``NETWEAVE_CONSOLE_*`` (nested with ``__``, as the services)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from netweave.runtime.auth import AuthSettings


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NETWEAVE_CONSOLE_", extra="ignore", env_file=None, env_nested_delimiter="__"
    )

    order_api_url: str = "http://127.0.0.1:8080"
    inventory_url: str = "http://127.0.0.1:8081"
    provisioner_url: str = "http://127.0.0.1:8082"
    subscriptions_url: str = "http://127.0.0.1:8083"
    nats_url: str | None = Field(
        default=None, description="comma-separated servers; the dashboard reads the dead-letter count there"
    )
    nats_user: str | None = None
    nats_password: SecretStr | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8084
    log_level: str = "INFO"
    log_format: str = "auto"
    request_timeout_seconds: float = Field(default=15.0, gt=0)
    auth: AuthSettings = Field(
        default_factory=AuthSettings, description="set with NETWEAVE_CONSOLE_AUTH__<FIELD>"
    )

    def nats_servers(self) -> list[str]:
        return [s.strip() for s in (self.nats_url or "").split(",") if s.strip()]

    def components(self) -> dict[str, str]:
        """Each service the dashboard checks, by name."""
        return {
            "order-api": self.order_api_url,
            "inventory": self.inventory_url,
            "provisioner": self.provisioner_url,
            "subscriptions": self.subscriptions_url,
        }
