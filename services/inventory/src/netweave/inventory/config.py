"""Inventory settings, from ``NETWEAVE_INVENTORY_*`` environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from netweave.runtime.settings import ServiceSettings


class InventorySettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="NETWEAVE_INVENTORY_", extra="ignore", env_nested_delimiter="__"
    )

    database_url: str = "sqlite+aiosqlite:///./.netweave/inventory.db"
    http_port: int = 8081
    store: Literal["builtin", "netbox"] = Field(
        default="builtin", description="where resources are allocated: the built-in store or NetBox"
    )
    netbox_url: str | None = None
    netbox_token: SecretStr | None = None
    netbox_timeout_seconds: float = Field(default=10.0, gt=0)
    netbox_retries: int = Field(
        default=3, ge=0, description="retries of one NetBox call on 5xx/connection errors"
    )
    unreachable_deadline_seconds: float = Field(
        default=300.0,
        gt=0,
        description="how long an item keeps retrying while the store is unreachable before it fails",
    )
