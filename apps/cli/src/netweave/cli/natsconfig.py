"""Render a nats-server configuration from the bus permissions in contracts.

One renderer for every place netweave runs NATS, so the embedded launcher, docker
compose and Kubernetes grant exactly the same rights:

- the launcher writes it into its data directory with generated passwords;
- ``deploy/compose/nats.conf`` and the Kubernetes ConfigMaps are this renderer's output
  with passwords taken from environment variables (``$NATS_PASSWORD_ORDER_API``),
  which nats-server resolves when it loads the file (a unit test keeps them in sync);
  regenerate them with ``python -m netweave.cli.natsconfig compose|k8s|k8s-cluster``.

All users live in one account with JetStream enabled: the streams are shared, and
permissions, not accounts, separate the services.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from netweave.contracts.permissions import OBSERVER_USER, UserPermissions, all_permissions

ACCOUNT = "NETWEAVE"


@dataclass(frozen=True)
class EnvRef:
    """A value nats-server reads from its environment when it loads the file."""

    name: str


Secret = str | EnvRef


@dataclass(frozen=True)
class ClusterBlock:
    name: str
    port: int
    routes: tuple[str, ...]
    host: str = "0.0.0.0"


@dataclass(frozen=True)
class JetStreamBlock:
    store_dir: str
    max_file_store: str | None = None


@dataclass(frozen=True)
class NatsConfig:
    passwords: Mapping[str, Secret]
    permissions: tuple[UserPermissions, ...] = field(default_factory=all_permissions)
    no_auth_user: str | None = None
    server_name: Secret | None = None
    port: int | None = None
    http_port: int | None = None
    jetstream: JetStreamBlock | None = None
    cluster: ClusterBlock | None = None
    pid_file: str | None = None
    lame_duck: bool = False
    header: str = ""


def password_env_var(user: str) -> str:
    """NATS_PASSWORD_ORDER_API for order-api: the variable compose and k8s set."""
    return "NATS_PASSWORD_" + re.sub(r"[^A-Z0-9]", "_", user.upper())


def env_passwords(users: Iterable[str] | None = None) -> dict[str, Secret]:
    names = users if users is not None else [p.user for p in all_permissions()]
    return {u: EnvRef(password_env_var(u)) for u in names}


def generate_passwords(users: Iterable[str] | None = None) -> dict[str, str]:
    # URL-safe, so a password can also travel inside nats://user:password@host URLs.
    names = users if users is not None else [p.user for p in all_permissions()]
    return {u: secrets.token_urlsafe(24) for u in names}


def _value(v: Secret | str | int) -> str:
    if isinstance(v, EnvRef):
        return f"${v.name}"
    if isinstance(v, int):
        return str(v)
    # Quoted strings are literal to nats-server: "$JS.API.INFO" is a subject, not a variable.
    return json.dumps(v)


def _list(values: Iterable[str], indent: str) -> str:
    """One subject a line: the allow-lists are what a reviewer reads."""
    inner = "".join(f"\n{indent}  {_value(v)}" for v in values)
    return f"[{inner}\n{indent}]"


def _user_block(p: UserPermissions, password: Secret) -> list[str]:
    return [
        f"      # {p.description}",
        "      {",
        f"        user: {_value(p.user)}",
        f"        password: {_value(password)}",
        "        permissions: {",
        f"          publish: {{ allow: {_list(p.publish, '          ')} }}",
        f"          subscribe: {{ allow: {_list(p.subscribe, '          ')} }}",
        "        }",
        "      }",
    ]


def _accounts(cfg: NatsConfig) -> list[str]:
    lines = ["accounts {", f"  {ACCOUNT} {{", "    jetstream: enabled", "    users: ["]
    for p in cfg.permissions:
        if p.user not in cfg.passwords:
            raise KeyError(f"no password for bus user {p.user!r}")
        lines += _user_block(p, cfg.passwords[p.user])
    lines += ["    ]", "  }", "}"]
    return lines


def accounts_block(cfg: NatsConfig) -> str:
    """Only the users and permissions: what the Helm chart's values include into its config."""
    return "\n".join(_accounts(cfg)) + "\n"


def _jetstream(js: JetStreamBlock) -> list[str]:
    lines = ["jetstream {", f"  store_dir: {_value(js.store_dir)}"]
    if js.max_file_store:
        lines.append(f"  max_file_store: {js.max_file_store}")
    return [*lines, "}"]


def _cluster(c: ClusterBlock) -> list[str]:
    return [
        "cluster {",
        f"  name: {_value(c.name)}",
        f"  listen: {_value(f'{c.host}:{c.port}')}",
        f"  routes: {_list(c.routes, '  ')}",
        "}",
    ]


def render(cfg: NatsConfig) -> str:
    lines = [f"# {line}" if line else "#" for line in cfg.header.splitlines()]
    if cfg.server_name is not None:
        lines.append(f"server_name: {_value(cfg.server_name)}")
    if cfg.port is not None:
        lines.append(f"port: {cfg.port}")
    if cfg.http_port is not None:
        lines.append(f"http_port: {cfg.http_port}")
    if cfg.pid_file is not None:
        lines.append(f"pid_file: {_value(cfg.pid_file)}")
    if cfg.lame_duck:
        # On SIGTERM/ldm, stop accepting clients and move them away over 30 s, not all at once.
        lines += ["lame_duck_grace_period: 10s", "lame_duck_duration: 30s"]
    if cfg.jetstream is not None:
        lines += _jetstream(cfg.jetstream)
    if cfg.cluster is not None:
        lines += _cluster(cfg.cluster)
    lines += _accounts(cfg)
    if cfg.no_auth_user is not None:
        # Clients that present no credentials act as this (read-only) user.
        lines.append(f"no_auth_user: {_value(cfg.no_auth_user)}")
    return "\n".join(lines) + "\n"


GENERATED = "Generated by `python -m netweave.cli.natsconfig {target}` from netweave.contracts.permissions;\n"
GENERATED += "do not edit: change the permissions there and regenerate (a unit test compares)."

K8S_NODES = 3


def compose_config() -> NatsConfig:
    return NatsConfig(
        passwords=env_passwords(),
        port=4222,
        http_port=8222,
        jetstream=JetStreamBlock("/data/jetstream"),
        header=GENERATED.format(target="compose")
        + "\nPasswords come from the environment of the nats service (see .env.example).",
    )


def k8s_config(*, clustered: bool) -> NatsConfig:
    target = "k8s-cluster" if clustered else "k8s"
    cluster = None
    if clustered:
        # Short names resolve inside the namespace the overlay deploys to.
        routes = tuple(f"nats://nats-{i}.nats-headless:6222" for i in range(K8S_NODES))
        cluster = ClusterBlock(name="netweave", port=6222, routes=routes)
    return NatsConfig(
        passwords=env_passwords(),
        server_name=EnvRef("POD_NAME"),
        port=4222,
        http_port=8222,
        jetstream=JetStreamBlock("/data/jetstream", max_file_store="10Gi" if clustered else "1Gi"),
        cluster=cluster,
        pid_file="/var/run/nats/nats.pid",
        lame_duck=True,
        header=GENERATED.format(target=target)
        + "\nPasswords come from the Secret netweave-nats-users; POD_NAME from the downward API.",
    )


def k8s_single_config() -> NatsConfig:
    return k8s_config(clustered=False)


def k8s_cluster_config() -> NatsConfig:
    return k8s_config(clustered=True)


TARGETS: dict[str, Callable[[], NatsConfig]] = {
    "compose": compose_config,
    "k8s": k8s_single_config,
    "k8s-cluster": k8s_cluster_config,
}


def embedded_config(passwords: Mapping[str, str], *, observer_without_credentials: bool = True) -> NatsConfig:
    """The launcher's: literal passwords; unauthenticated local clients may watch."""
    return NatsConfig(
        passwords=dict(passwords),
        no_auth_user=OBSERVER_USER if observer_without_credentials else None,
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in TARGETS:
        print(f"usage: python -m netweave.cli.natsconfig {{{'|'.join(TARGETS)}}}", file=sys.stderr)
        return 2
    sys.stdout.write(render(TARGETS[args[0]]()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
