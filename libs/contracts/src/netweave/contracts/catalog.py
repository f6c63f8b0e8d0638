"""The product catalog, declared once.

A *product type* (Node, Port, ...) says what a customer fills in (its order form), what
a subscription of it holds (its root product block) and which other products it
points at. A *product* is a sellable variant of a type with its fixed inputs
(``speed=10000``). Adding a variant is one ``Product(...)`` line in ``PRODUCTS``; the
order API, the subscriptions service, the console and the AsyncAPI document read
everything else from here.

References to other subscriptions are form fields made with :func:`subscription_ref`.
They are the dependency model: a Port's ``node`` points at a Node subscription, an
L2 circuit's SAPs point at Ports. Inside one order a reference may also name another
item as ``#<itemId>``; the order API resolves it to that item's subscription id.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

REF_KEY = "x-netweave-ref"
ITEM_REF_PREFIX = "#"
_REF_PATTERN = r"^(#[A-Za-z0-9_.:-]{1,64}|[0-9a-fA-F-]{36})$"
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class ProductType(StrEnum):
    NODE = "Node"
    PORT = "Port"
    CORE_LINK = "CoreLink"
    L2VPN = "L2VPN"
    L2_POINT_TO_POINT = "L2PointToPoint"


class LifecycleStatus(StrEnum):
    """Subscription lifecycle (Workflow Orchestrator's vocabulary)."""

    INITIAL = "initial"
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    DISABLED = "disabled"
    MIGRATING = "migrating"
    TERMINATED = "terminated"


def subscription_ref(product_type: ProductType, description: str) -> Any:
    """A form field that points at a subscription of ``product_type``."""
    return Field(
        description=f"{description} (a {product_type.value} subscription id, or #itemId)",
        pattern=_REF_PATTERN,
        json_schema_extra={REF_KEY: product_type.value},
    )


def is_item_ref(value: str) -> bool:
    return value.startswith(ITEM_REF_PREFIX)


class FormModel(BaseModel):
    """An order form: the characteristics a customer gives for one item."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class BlockModel(BaseModel):
    """A product block instance, as the subscription holds it.

    Fields named in ``RESOURCE_FIELDS`` are required from ``provisioning`` on and those
    in ``EXTERNAL_ID_FIELDS`` from ``active`` on: requirements tighten along the
    lifecycle.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    RESOURCE_FIELDS: ClassVar[tuple[str, ...]] = ()
    EXTERNAL_ID_FIELDS: ClassVar[tuple[str, ...]] = ("ims_id",)

    ims_id: int | None = Field(default=None, description="the object's id in the inventory")
    nrm_id: str | None = Field(default=None, description="the network job that configured it")


@dataclass(frozen=True)
class Reference:
    """One reference found in a filled-in form."""

    path: str
    product_type: ProductType
    value: str


def references_in(form: BaseModel, prefix: str = "") -> Iterator[Reference]:
    """Every subscription reference in a validated form, with where it sits."""
    for name, field in type(form).model_fields.items():
        value = getattr(form, name)
        path = f"{prefix}{name}"
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if REF_KEY in extra and isinstance(value, str):
            yield Reference(path, ProductType(str(extra[REF_KEY])), value)
        elif isinstance(value, BaseModel):
            yield from references_in(value, f"{path}.")
        elif isinstance(value, list | tuple):
            for index, element in enumerate(value):
                if isinstance(element, BaseModel):
                    yield from references_in(element, f"{path}[{index}].")


def referenced_types(form: type[BaseModel]) -> tuple[ProductType, ...]:
    """Which product types a form can point at, read from its JSON Schema."""
    found: list[ProductType] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if REF_KEY in node:
                found.append(ProductType(node[REF_KEY]))
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(form.model_json_schema())
    return tuple(dict.fromkeys(found))


def service_description(tag: str, subscription_id: str, customer: str, peer: str) -> str:
    """The one description pattern on every interface and object we create.

    ``<product tag> <subscription short id> <customer> <peer>`` so an engineer reading
    a router's interfaces knows what each one is for and whom to call.
    """
    return f"{tag} {subscription_id[:8]} {customer} {peer or '-'}"


# --- Node ---------------------------------------------------------------------------

SITES: dict[str, str] = {
    "ams": "Amsterdam",
    "par": "Paris",
    "lon": "London",
    "fra": "Frankfurt",
    "bru": "Brussels",
}
SiteCode = Literal["ams", "par", "lon", "fra", "bru"]


class NodeForm(FormModel):
    node_name: str = Field(
        description="hostname of the router, e.g. ams-pe",
        pattern=r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$",
    )
    role: Literal["PE", "P"] = Field(description="provider edge or core router")
    site: SiteCode = Field(description="site code: " + ", ".join(f"{k}={v}" for k, v in SITES.items()))
    description: str | None = Field(default=None, max_length=200)


class NodeBlock(BlockModel):
    RESOURCE_FIELDS = ("loopback_v4", "loopback_v6")

    node_name: str
    role: str
    site: str
    vendor: str
    device_type: str
    loopback_v4: str | None = None
    loopback_v6: str | None = None


# --- Port ---------------------------------------------------------------------------


class PortForm(FormModel):
    node: str = subscription_ref(ProductType.NODE, "the router the port is on")
    interface: str = Field(
        description="interface name on that router, e.g. eth3 or ethernet-1/3",
        pattern=r"^[A-Za-z][A-Za-z0-9/._-]{0,63}$",
    )
    description: str | None = Field(
        default=None, max_length=100, description="who or what is connected (the peer)"
    )
    mode: Literal["untagged", "tagged"] = Field(
        default="untagged", description="untagged: one service on the port; tagged: a VLAN per service"
    )
    auto_negotiation: bool = False
    lldp: bool = True
    enabled: bool = True
    mtu: int = Field(default=1500, ge=1280, le=9216)


class PortBlock(BlockModel):
    RESOURCE_FIELDS = ("node_name", "interface_name")

    node: str = Field(json_schema_extra={REF_KEY: ProductType.NODE.value})
    node_name: str | None = None
    interface_name: str
    description: str
    mode: str
    auto_negotiation: bool
    lldp: bool
    enabled: bool
    mtu: int
    speed_mbps: int


# --- Core link ----------------------------------------------------------------------


class CoreLinkForm(FormModel):
    a_node: str = subscription_ref(ProductType.NODE, "the router at side A")
    a_interface: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9/._-]{0,63}$")
    b_node: str = subscription_ref(ProductType.NODE, "the router at side B")
    b_interface: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9/._-]{0,63}$")
    isis_metric: int = Field(default=10, ge=1, le=16_777_215, description="IS-IS wide metric")

    @model_validator(mode="after")
    def _two_different_routers(self) -> CoreLinkForm:
        if self.a_node == self.b_node:
            raise ValueError("a core link joins two different routers: a_node equals b_node")
        return self


class CorePortBlock(BlockModel):
    node: str = Field(json_schema_extra={REF_KEY: ProductType.NODE.value})
    node_name: str | None = None
    interface_name: str
    ipv4: str | None = None
    ipv6: str | None = None


class CoreLinkBlock(BlockModel):
    RESOURCE_FIELDS = ("ipv4_prefix", "ipv6_prefix")

    ports: tuple[CorePortBlock, CorePortBlock]
    isis_metric: int
    speed_mbps: int
    ipv4_prefix: str | None = None
    ipv6_prefix: str | None = None


# --- L2 circuits --------------------------------------------------------------------


class SapForm(FormModel):
    port: str = subscription_ref(ProductType.PORT, "the customer port")
    vlan: int | None = Field(
        default=None,
        ge=1,
        le=4094,
        description="VLAN on a tagged port; leave empty to have one allocated. Untagged ports take none.",
    )


def _distinct_saps(saps: list[SapForm]) -> None:
    seen: set[tuple[str, int | None]] = set()
    for sap in saps:
        key = (sap.port, sap.vlan)
        if key in seen:
            vlan = "untagged" if sap.vlan is None else f"VLAN {sap.vlan}"
            raise ValueError(f"two SAPs on the same port and {vlan}: {sap.port}")
        seen.add(key)


class L2VpnForm(FormModel):
    saps: list[SapForm] = Field(min_length=2, max_length=8, description="2 to 8 service access points")
    speed_mbps: int = Field(default=1000, ge=1, le=100_000, description="policed rate per SAP")
    speed_policer: bool = True
    bum_filter: bool = Field(default=False, description="drop broadcast/unknown/multicast floods")

    @model_validator(mode="after")
    def _saps_distinct(self) -> L2VpnForm:
        _distinct_saps(self.saps)
        return self


class L2PointToPointForm(FormModel):
    saps: list[SapForm] = Field(min_length=2, max_length=2, description="exactly two SAPs")

    @model_validator(mode="after")
    def _saps_distinct(self) -> L2PointToPointForm:
        _distinct_saps(self.saps)
        return self


class SapBlock(BlockModel):
    port: str = Field(json_schema_extra={REF_KEY: ProductType.PORT.value})
    node_name: str | None = None
    interface_name: str | None = None
    vlan: int | None = None


class VirtualCircuitBlock(BlockModel):
    RESOURCE_FIELDS = ("vni",)

    saps: tuple[SapBlock, ...]
    speed_mbps: int
    speed_policer: bool
    bum_filter: bool = False
    protection_type: str = "unprotected"
    l2vpn_type: str
    vni: int | None = None


# --- the catalog ----------------------------------------------------------------------


@dataclass(frozen=True)
class ProductTypeDefinition:
    product_type: ProductType
    tag: str
    description: str
    form: type[FormModel]
    block: type[BlockModel]
    expected_seconds: float

    @property
    def depends_on(self) -> tuple[ProductType, ...]:
        return referenced_types(self.form)


PRODUCT_TYPES: dict[ProductType, ProductTypeDefinition] = {
    d.product_type: d
    for d in (
        ProductTypeDefinition(
            ProductType.NODE,
            "NODE",
            "A router in the backbone: hostname, loopbacks, IS-IS.",
            NodeForm,
            NodeBlock,
            expected_seconds=60,
        ),
        ProductTypeDefinition(
            ProductType.PORT,
            "PORT",
            "A customer-facing interface on a node.",
            PortForm,
            PortBlock,
            expected_seconds=60,
        ),
        ProductTypeDefinition(
            ProductType.CORE_LINK,
            "CORE",
            "A backbone link between two nodes: link addresses and IS-IS.",
            CoreLinkForm,
            CoreLinkBlock,
            expected_seconds=90,
        ),
        ProductTypeDefinition(
            ProductType.L2VPN,
            "L2VPN",
            "A multipoint layer-2 VPN between 2 to 8 customer SAPs.",
            L2VpnForm,
            VirtualCircuitBlock,
            expected_seconds=120,
        ),
        ProductTypeDefinition(
            ProductType.L2_POINT_TO_POINT,
            "L2P2P",
            "A layer-2 circuit between exactly two customer SAPs.",
            L2PointToPointForm,
            VirtualCircuitBlock,
            expected_seconds=120,
        ),
    )
}

FixedValue = str | int | bool


class Product(BaseModel):
    """A sellable variant of a product type."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    product_type: ProductType
    description: str
    status: Literal["active", "phase out", "end of life"] = "active"
    fixed_inputs: dict[str, FixedValue] = Field(default_factory=dict)

    @property
    def definition(self) -> ProductTypeDefinition:
        return PRODUCT_TYPES[self.product_type]

    def validate_form(self, characteristics: dict[str, Any]) -> FormModel:
        """Parse an order item's characteristics; raises pydantic's ValidationError."""
        return self.definition.form.model_validate(characteristics)

    def form_schema(self) -> dict[str, Any]:
        schema = self.definition.form.model_json_schema()
        schema["title"] = self.name
        schema["description"] = self.description
        schema["x-netweave-product"] = self.id
        schema["x-netweave-fixed-inputs"] = dict(self.fixed_inputs)
        return schema

    def fixed(self, name: str) -> FixedValue:
        try:
            return self.fixed_inputs[name]
        except KeyError:
            raise KeyError(f"product {self.id} has no fixed input {name!r}") from None


def _node(vendor: str, device_type: str, status: Literal["active", "phase out"] = "active") -> Product:
    slug = vendor.lower().replace(" ", "-")
    return Product(
        id=f"node-{slug}",
        name=f"{vendor} node",
        product_type=ProductType.NODE,
        description=f"A {vendor} router ({device_type}).",
        status=status,
        fixed_inputs={"vendor": vendor, "device_type": device_type},
    )


def _by_speed(ptype: ProductType, stem: str, name: str, speed_gbps: int) -> Product:
    return Product(
        id=f"{stem}-{speed_gbps}g",
        name=f"{name} {speed_gbps}G",
        product_type=ptype,
        description=f"{PRODUCT_TYPES[ptype].description} {speed_gbps} Gbit/s.",
        fixed_inputs={"speed_mbps": speed_gbps * 1000},
    )


def _l2p2p(speed_gbps: int, protection: Literal["unprotected", "protected"]) -> Product:
    suffix = "" if protection == "unprotected" else "-protected"
    return Product(
        id=f"l2-p2p-{speed_gbps}g{suffix}",
        name=f"L2 point-to-point {speed_gbps}G {protection}",
        product_type=ProductType.L2_POINT_TO_POINT,
        description=f"A layer-2 circuit between two SAPs, {speed_gbps} Gbit/s, {protection}.",
        fixed_inputs={
            "speed_mbps": speed_gbps * 1000,
            "speed_policer": True,
            "protection_type": protection,
        },
    )


PRODUCTS: tuple[Product, ...] = (
    _node("FRR", "frr-router"),
    _node("Nokia SR Linux", "7220 IXR-D2"),
    _node("Cisco", "NCS-5501", status="phase out"),
    _node("Cumulus", "cumulus-vx"),
    _by_speed(ProductType.PORT, "port", "Port", 10),
    _by_speed(ProductType.PORT, "port", "Port", 100),
    _by_speed(ProductType.CORE_LINK, "core-link", "Core link", 10),
    _by_speed(ProductType.CORE_LINK, "core-link", "Core link", 100),
    Product(
        id="l2vpn",
        name="L2VPN",
        product_type=ProductType.L2VPN,
        description="A multipoint layer-2 VPN (EVPN) between 2 to 8 SAPs.",
        fixed_inputs={"l2vpn_type": "evpn"},
    ),
    _l2p2p(1, "unprotected"),
    _l2p2p(10, "unprotected"),
    _l2p2p(10, "protected"),
)

_BY_ID = {p.id: p for p in PRODUCTS}


class UnknownProduct(LookupError):
    pass


def get_product(product_id: str) -> Product:
    try:
        return _BY_ID[product_id]
    except KeyError:
        known = ", ".join(sorted(_BY_ID))
        raise UnknownProduct(f"no product {product_id!r}; the catalog has: {known}") from None


def products_of_type(product_type: ProductType) -> tuple[Product, ...]:
    return tuple(p for p in PRODUCTS if p.product_type == product_type)
