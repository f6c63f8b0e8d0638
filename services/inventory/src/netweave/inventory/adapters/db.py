"""The inventory's own tables: allocations, and the built-in store's objects.

The built-in store models what NetBox holds for us (sites, device types, devices,
interfaces, prefixes, IP addresses, cables, VLANs, L2VPNs and their terminations),
each object marked with the subscription and the order item that made it.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from netweave.runtime.db import UtcDateTime, json_column, messaging_tables, new_metadata

metadata = new_metadata()
inbox, outbox = messaging_tables(metadata)

allocations = Table(
    "allocations",
    metadata,
    Column("subscription_id", String(36), primary_key=True),
    Column("allocation_key", String(120), nullable=False),
    Column("product_id", String(100), nullable=False),
    Column("store", String(20), nullable=False),
    Column("state", String(20), nullable=False),
    json_column("resources"),
    Column("allocated_at", UtcDateTime(), nullable=False),
    Column("released_at", UtcDateTime()),
)


def _owned() -> list[Column[str]]:
    return [
        Column("subscription_id", String(36), index=True),
        Column("allocation_key", String(120), index=True),
    ]


sites = Table(
    "bi_sites",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(50), nullable=False, unique=True),
    Column("name", String(100), nullable=False),
)
device_roles = Table(
    "bi_device_roles",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(50), nullable=False, unique=True),
    Column("name", String(100), nullable=False),
)
manufacturers = Table(
    "bi_manufacturers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(50), nullable=False, unique=True),
    Column("name", String(100), nullable=False),
)
device_types = Table(
    "bi_device_types",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(100), nullable=False, unique=True),
    Column("model", String(100), nullable=False),
    Column("manufacturer_id", Integer, ForeignKey("bi_manufacturers.id"), nullable=False),
    json_column("interfaces", nullable=False),
)
devices = Table(
    "bi_devices",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("site_id", Integer, ForeignKey("bi_sites.id"), nullable=False),
    Column("role_id", Integer, ForeignKey("bi_device_roles.id"), nullable=False),
    Column("device_type_id", Integer, ForeignKey("bi_device_types.id"), nullable=False),
    Column("description", Text),
    *_owned(),
)
interfaces = Table(
    "bi_interfaces",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("device_id", Integer, ForeignKey("bi_devices.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("speed_mbps", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("description", Text, nullable=False, default=""),
    Column("mtu", Integer),
    Column("mode", String(20)),
    UniqueConstraint("device_id", "name"),
    *_owned(),
)
prefixes = Table(
    "bi_prefixes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("prefix", String(64), nullable=False, unique=True),
    Column("role", String(50)),
    Column("description", Text),
    *_owned(),
)
ip_addresses = Table(
    "bi_ip_addresses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("address", String(64), nullable=False),
    Column("host", String(64), nullable=False, unique=True),
    Column("interface_id", Integer, ForeignKey("bi_interfaces.id", ondelete="SET NULL")),
    Column("device_id", Integer, ForeignKey("bi_devices.id", ondelete="CASCADE")),
    Column("role", String(20)),
    Column("description", Text),
    *_owned(),
)
cables = Table(
    "bi_cables",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("a_interface_id", Integer, ForeignKey("bi_interfaces.id"), nullable=False, unique=True),
    Column("b_interface_id", Integer, ForeignKey("bi_interfaces.id"), nullable=False, unique=True),
    Column("label", String(100)),
    json_column("custom"),
    *_owned(),
)
l2vpns = Table(
    "bi_l2vpns",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("type", String(30), nullable=False),
    Column("identifier", Integer, nullable=False, unique=True),
    Column("description", Text),
    json_column("custom"),
    *_owned(),
)
vlans = Table(
    "bi_vlans",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("interface_id", Integer, ForeignKey("bi_interfaces.id"), nullable=False),
    Column("vid", Integer, nullable=False),
    Column("name", String(100), nullable=False),
    UniqueConstraint("interface_id", "vid"),
    *_owned(),
)
l2vpn_terminations = Table(
    "bi_l2vpn_terminations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("l2vpn_id", Integer, ForeignKey("bi_l2vpns.id", ondelete="CASCADE"), nullable=False),
    Column("interface_id", Integer, ForeignKey("bi_interfaces.id"), nullable=False),
    Column("vlan_id", Integer, ForeignKey("bi_vlans.id", ondelete="CASCADE")),
    *_owned(),
)
