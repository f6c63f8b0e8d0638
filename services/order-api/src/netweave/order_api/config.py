"""Order API settings, from ``NETWEAVE_ORDER_API_*`` environment variables."""

from __future__ import annotations

from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

from netweave.runtime.settings import ServiceSettings


class HubSettings(BaseModel):
    """Webhook delivery of TMF630 hub notifications (``NETWEAVE_ORDER_API_HUB__<FIELD>``)."""

    max_attempts: int = Field(default=10, ge=1, le=100, description="then the delivery is failed")
    backoff_first_seconds: float = Field(default=1.0, gt=0, description="doubles after each attempt")
    backoff_max_seconds: float = Field(default=300.0, gt=0)
    timeout_seconds: float = Field(default=10.0, gt=0, description="per HTTP request to a callback")
    poll_seconds: float = Field(default=1.0, gt=0, description="how often due retries are looked for")
    concurrency: int = Field(default=16, ge=1, le=256, description="requests to callbacks at the same time")
    settle_seconds: float = Field(
        default=0.5,
        ge=0,
        description="a new notification waits this long, so those of one change go in order",
    )
    keep_finished_hours: float = Field(default=168.0, gt=0, description="delivery log retention")
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0, description="comment line on an idle stream")


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
    hub: HubSettings = Field(default_factory=HubSettings, description="set with HUB__<FIELD>")
