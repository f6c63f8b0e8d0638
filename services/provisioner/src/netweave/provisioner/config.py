"""Provisioner settings, from ``NETWEAVE_PROVISIONER_*`` environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from netweave.runtime.settings import ServiceSettings


class ProvisionerSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="NETWEAVE_PROVISIONER_", extra="ignore", env_nested_delimiter="__"
    )

    database_url: str = "sqlite+aiosqlite:///./.netweave/provisioner.db"
    http_port: int = 8082
    driver: Literal["sim", "lso"] = Field(
        default="sim", description="sim: the simulated network; lso: LSO running Ansible on the lab"
    )
    lso_url: str | None = None
    lso_api_key: SecretStr | None = None
    callback_url: str | None = Field(
        default=None, description="URL LSO reaches this service at (defaults to http://host:port)"
    )
    job_timeout_seconds: float = Field(
        default=300.0, gt=0, description="a job with no callback by then is reconciled by validate"
    )
    lab_name: str = Field(default="netweave", description="the namespace lab the playbooks configure")
