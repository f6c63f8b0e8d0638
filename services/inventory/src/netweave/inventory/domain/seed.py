"""What ``netweave inventory seed`` puts in the store: the lab's reference data."""

from __future__ import annotations

from dataclasses import dataclass

from netweave.contracts.catalog import PRODUCTS, SITES, ProductType


@dataclass(frozen=True)
class InterfaceTemplate:
    name: str
    speed_mbps: int


@dataclass(frozen=True)
class DeviceTypeSeed:
    slug: str
    model: str
    manufacturer: str
    interfaces: tuple[InterfaceTemplate, ...]


@dataclass(frozen=True)
class PrefixSeed:
    prefix: str
    role: str
    description: str


@dataclass(frozen=True)
class SeedSpec:
    sites: dict[str, str]
    roles: tuple[str, ...]
    manufacturers: dict[str, str]
    device_types: tuple[DeviceTypeSeed, ...]
    prefixes: tuple[PrefixSeed, ...]


LOOPBACK_ROLE = "loopback"
CORE_LINK_ROLE = "core-link"
FIRST_VNI = 10001
FIRST_AUTO_VLAN = 100


def _interfaces(style: str) -> tuple[InterfaceTemplate, ...]:
    # Lab convention: ten 10G ports then four 100G ports.
    def name(i: int) -> str:
        return f"eth{i}" if style == "frr" else f"ethernet-1/{i}"

    return tuple(InterfaceTemplate(name(i), 10_000 if i <= 10 else 100_000) for i in range(1, 15))


_MANUFACTURER_OF_VENDOR = {
    "FRR": "FRRouting",
    "Nokia SR Linux": "Nokia",
    "Cisco": "Cisco",
    "Cumulus": "NVIDIA",
}


def _device_types() -> tuple[DeviceTypeSeed, ...]:
    types = []
    for product in PRODUCTS:
        if product.product_type != ProductType.NODE:
            continue
        vendor = str(product.fixed("vendor"))
        slug = str(product.fixed("device_type"))
        types.append(
            DeviceTypeSeed(
                slug=slug.lower().replace(" ", "-"),
                model=slug,
                manufacturer=_MANUFACTURER_OF_VENDOR[vendor],
                interfaces=_interfaces("frr" if vendor in ("FRR", "Cumulus") else "srl"),
            )
        )
    return tuple(types)


def device_type_slug(device_type: str) -> str:
    return device_type.lower().replace(" ", "-")


DEFAULT_SEED = SeedSpec(
    sites=dict(SITES),
    roles=("PE", "P"),
    manufacturers={m: m.lower() for m in sorted(set(_MANUFACTURER_OF_VENDOR.values()))},
    device_types=_device_types(),
    prefixes=(
        PrefixSeed("10.0.127.0/24", LOOPBACK_ROLE, "router loopbacks (IPv4)"),
        PrefixSeed("fc00:0:0:127::/64", LOOPBACK_ROLE, "router loopbacks (IPv6)"),
        PrefixSeed("10.0.10.0/24", CORE_LINK_ROLE, "core links, a /31 each (IPv4)"),
        PrefixSeed("fc00:0:0:10::/64", CORE_LINK_ROLE, "core links, a /127 each (IPv6)"),
    ),
)
