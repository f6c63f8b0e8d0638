"""Subscriptions settings, from ``NETWEAVE_SUBSCRIPTIONS_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from netweave.runtime.settings import ServiceSettings


class SubscriptionsSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="NETWEAVE_SUBSCRIPTIONS_", extra="ignore", env_nested_delimiter="__"
    )

    database_url: str = "sqlite+aiosqlite:///./.netweave/subscriptions.db"
    http_port: int = 8083
    public_url: str | None = None
    reconcile_interval_seconds: float = Field(
        default=0, ge=0, description="validate every active subscription this often; 0 turns it off"
    )
