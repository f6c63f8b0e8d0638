"""Where the CLI's commands find the stack: flags, then environment, then a TOML file.

Pure resolution (no network): the commands pass the flags they were given and the
process environment; tests pass their own. Defaults are the local embedded stack that
``netweave up`` starts.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from netweave.contracts.permissions import ADMIN_USER

DEFAULTS: dict[str, str] = {
    "order_api": "http://127.0.0.1:8080",
    "subscriptions": "http://127.0.0.1:8083",
    "nats": "nats://127.0.0.1:4322",
    "data_dir": ".netweave",
}
ENV_VARS: dict[str, str] = {
    "order_api": "NETWEAVE_ORDER_API_URL",
    "subscriptions": "NETWEAVE_SUBSCRIPTIONS_URL",
    "nats": "NETWEAVE_NATS_URL",
    "token": "NETWEAVE_TOKEN",
    "data_dir": "NETWEAVE_DATA_DIR",
    "nats_user": "NETWEAVE_NATS_USER",
    "nats_password": "NETWEAVE_NATS_PASSWORD",
}
CONFIG_ENV = "NETWEAVE_CONFIG"


class ConfigError(ValueError):
    """The configuration file cannot be used as it is."""


@dataclass(frozen=True)
class Endpoints:
    order_api: str
    subscriptions: str
    nats: str
    token: str | None
    data_dir: Path
    nats_user: str | None
    nats_password: str | None

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def config_path(environ: Mapping[str, str]) -> tuple[Path | None, bool]:
    """The config file and whether the user named it (then it must exist)."""
    named = environ.get(CONFIG_ENV)
    if named:
        return Path(named).expanduser(), True
    base = environ.get("XDG_CONFIG_HOME") or (
        str(Path(environ["HOME"]) / ".config") if environ.get("HOME") else None
    )
    return (Path(base) / "netweave" / "config.toml", False) if base else (None, False)


def read_config(path: Path | None, required: bool) -> dict[str, str]:
    if path is None:
        return {}
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        if required:
            raise ConfigError(f"{path} ({CONFIG_ENV}) does not exist") from None
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    # A misspelt key would otherwise silently fall back to the local stack.
    unknown = sorted(set(raw) - set(ENV_VARS))
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r}; keys: {', '.join(ENV_VARS)}")
    wrong = sorted(k for k, v in raw.items() if not isinstance(v, str))
    if wrong:
        raise ConfigError(f"{path}: {wrong[0]} must be a string")
    return {k: str(v) for k, v in raw.items()}


def resolve(flags: Mapping[str, str | None], environ: Mapping[str, str]) -> Endpoints:
    """Each setting from the first of: its flag, its environment variable, the file, the default."""
    path, required = config_path(environ)
    from_file = read_config(path, required)

    def pick(key: str) -> str | None:
        flag = flags.get(key)
        if flag:
            return flag
        return environ.get(ENV_VARS[key]) or from_file.get(key) or DEFAULTS.get(key)

    return Endpoints(
        order_api=str(pick("order_api")).rstrip("/"),
        subscriptions=str(pick("subscriptions")).rstrip("/"),
        nats=str(pick("nats")),
        token=pick("token"),
        data_dir=Path(str(pick("data_dir"))),
        nats_user=pick("nats_user"),
        nats_password=pick("nats_password"),
    )


def admin_credentials(data_dir: Path) -> tuple[str, str] | None:
    """The embedded stack's bus-admin login, when that stack runs from ``data_dir``."""
    path = data_dir / "nats" / "credentials.json"
    try:
        passwords = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    password = passwords.get(ADMIN_USER)
    return (ADMIN_USER, str(password)) if password else None


def bus_login(endpoints: Endpoints) -> tuple[str, str] | None:
    """An explicit login wins; otherwise the admin login of the stack in ``data_dir``, if any."""
    if endpoints.nats_user and endpoints.nats_password:
        return endpoints.nats_user, endpoints.nats_password
    return admin_credentials(endpoints.data_dir)
