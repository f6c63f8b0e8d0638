"""Order API settings, from ``NETWEAVE_ORDER_API_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from netweave.runtime.settings import ServiceSettings


class OrderApiSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="NETWEAVE_ORDER_API_", extra="ignore", env_nested_delimiter="__"
    )

    database_url: str = "sqlite+aiosqlite:///./.netweave/order-api.db"
    http_port: int = 8080
    public_url: str | None = Field(
        default=None, description="base URL clients reach this API at; used in href and Location"
    )
    subscriptions_url: str = Field(
        default="http://127.0.0.1:8083", description="the subscriptions service's read API"
    )
    max_items_per_order: int = Field(default=100, ge=1, le=1000)
    subscriptions_api_key: str | None = Field(
        default=None, description="API key for the subscriptions read API, when it requires one"
    )
    jeopardy_factor: float = Field(
        default=1.0, gt=0, description="an item is in jeopardy after factor x its product's expected duration"
    )
    jeopardy_after_seconds: float | None = Field(
        default=None, gt=0, description="one expected duration for every product (overrides the catalog's)"
    )
    jeopardy_check_seconds: float = Field(default=5.0, gt=0)
