"""The built-in store: NetBox's allocation semantics in the inventory's own database.

It works inside the caller's transaction, so an allocation, the inbox record and the
answering event commit together and a failure half-way leaves nothing behind.
Concurrent allocations from one prefix are serialised by locking the prefix row
(PostgreSQL) or by SQLite's single writer.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import and_, delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from netweave.contracts.resources import (
    CircuitResources,
    CoreLinkResources,
    CoreLinkSide,
    NodeResources,
    ObjectRef,
    PortResources,
    SapResources,
)
from netweave.inventory.adapters import db
from netweave.inventory.domain.addressing import (
    first_free_address,
    first_free_subnet,
    host_with_length,
    side_addresses,
)
from netweave.inventory.domain.errors import AllocationError
from netweave.inventory.domain.requests import (
    CircuitRequest,
    CoreLinkRequest,
    NodeRequest,
    PortRequest,
    SapRequest,
)
from netweave.inventory.domain.rules import check_node_identity
from netweave.inventory.domain.seed import (
    CORE_LINK_ROLE,
    FIRST_AUTO_VLAN,
    FIRST_VNI,
    LOOPBACK_ROLE,
    SeedSpec,
    device_type_slug,
)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _ref(object_id: int) -> ObjectRef:
    return ObjectRef(id=object_id)


class BuiltinStore:
    name = "builtin"

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def ping(self) -> None:
        await self.s.execute(select(1))

    # --- helpers -------------------------------------------------------------------

    async def _one(self, query: Any) -> Any:
        return (await self.s.execute(query)).first()

    async def _id_by_slug(self, table: Any, slug: str, what: str) -> int:
        row = await self._one(select(table.c.id).where(table.c.slug == slug))
        if row is None:
            raise AllocationError(
                "notSeeded", f"unknown {what} {slug!r}: run `netweave inventory seed` first"
            )
        return int(row.id)

    async def _insert(self, table: Any, **values: Any) -> int:
        result = await self.s.execute(insert(table).values(**values).returning(table.c.id))
        return int(result.scalar_one())

    async def _lock_pool(self, pool: str) -> None:
        """Serialise picks from a pool that has no row to lock (VNIs, the SAPs of a port).

        Without it two inventory processes on PostgreSQL pick the same free number and one
        fails on the unique constraint; SQLite's BEGIN IMMEDIATE serialises writers already.
        """
        if self.s.get_bind().dialect.name == "postgresql":
            await self.s.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:pool))"), {"pool": f"netweave-inventory:{pool}"}
            )

    async def _locked_prefix(self, role: str, version: int) -> str:
        rows = (
            await self.s.execute(
                select(db.prefixes.c.prefix)
                .where(db.prefixes.c.role == role, db.prefixes.c.subscription_id.is_(None))
                .with_for_update()
            )
        ).all()
        for row in rows:
            if ipaddress.ip_network(row.prefix).version == version:
                return str(row.prefix)
        raise AllocationError(
            "notSeeded", f"no IPv{version} {role} prefix: run `netweave inventory seed` first"
        )

    async def _hosts_in(self, prefix: str) -> list[str]:
        net = ipaddress.ip_network(prefix)
        rows = (await self.s.execute(select(db.ip_addresses.c.host))).all()
        return [r.host for r in rows if ipaddress.ip_address(r.host) in net]

    async def _next_loopback(self, device_id: int, version: int, key: str, sub: str, name: str) -> None:
        prefix = await self._locked_prefix(LOOPBACK_ROLE, version)
        address = first_free_address(prefix, await self._hosts_in(prefix))
        if address is None:
            raise AllocationError("prefixExhausted", f"no free loopback address left in {prefix}")
        await self._insert(
            db.ip_addresses,
            address=host_with_length(address),
            host=str(address),
            device_id=device_id,
            role="loopback",
            description=f"{name} loopback",
            subscription_id=sub,
            allocation_key=key,
        )

    async def _loopbacks(self, device_id: int) -> tuple[str, str]:
        rows = (
            await self.s.execute(
                select(db.ip_addresses.c.address).where(
                    db.ip_addresses.c.device_id == device_id, db.ip_addresses.c.role == "loopback"
                )
            )
        ).all()
        v4 = next((r.address for r in rows if ipaddress.ip_interface(r.address).version == 4), "")
        v6 = next((r.address for r in rows if ipaddress.ip_interface(r.address).version == 6), "")
        return v4, v6

    async def _device_of_node(self, node_subscription_id: str) -> Any:
        row = await self._one(select(db.devices).where(db.devices.c.subscription_id == node_subscription_id))
        if row is None:
            raise AllocationError(
                "unknownNode", f"node subscription {node_subscription_id} holds no device in the inventory"
            )
        return row

    async def _free_interface(self, device: Any, name: str, speed_mbps: int) -> Any:
        row = await self._one(
            select(db.interfaces).where(db.interfaces.c.device_id == device.id, db.interfaces.c.name == name)
        )
        if row is None:
            names = (
                (
                    await self.s.execute(
                        select(db.interfaces.c.name)
                        .where(db.interfaces.c.device_id == device.id)
                        .order_by(db.interfaces.c.id)
                    )
                )
                .scalars()
                .all()
            )
            raise AllocationError(
                "unknownInterface", f"{device.name} has no interface {name}; it has {', '.join(names)}"
            )
        if row.subscription_id is not None:
            raise AllocationError(
                "interfaceInUse", f"{device.name}:{name} is in use by subscription {row.subscription_id}"
            )
        if row.speed_mbps != speed_mbps:
            raise AllocationError(
                "speedMismatch",
                f"{device.name}:{name} is a {row.speed_mbps // 1000}G interface; the product needs "
                f"{speed_mbps // 1000}G",
            )
        return row

    async def _take_interface(self, iface: Any, device_name: str, values: dict[str, Any]) -> None:
        # Conditional on the interface still being free: of two orders racing for the
        # same customer interface exactly one gets it.
        result = await self.s.execute(
            update(db.interfaces)
            .where(db.interfaces.c.id == iface.id, db.interfaces.c.subscription_id.is_(None))
            .values(**values)
        )
        if _rowcount(result) != 1:
            raise AllocationError(
                "interfaceInUse", f"{device_name}:{iface.name} was just taken by another order"
            )

    # --- seed ------------------------------------------------------------------------

    async def seed(self, spec: SeedSpec) -> list[str]:
        created: list[str] = []

        async def ensure(table: Any, slug: str, **values: Any) -> int:
            row = await self._one(select(table.c.id).where(table.c.slug == slug))
            if row is not None:
                return int(row.id)
            created.append(f"{table.name.removeprefix('bi_')} {slug}")
            return await self._insert(table, slug=slug, **values)

        for slug, name in spec.sites.items():
            await ensure(db.sites, slug, name=name)
        for role in spec.roles:
            await ensure(db.device_roles, role.lower(), name=role)
        manufacturer_ids = {
            name: await ensure(db.manufacturers, slug, name=name) for name, slug in spec.manufacturers.items()
        }
        for dt in spec.device_types:
            await ensure(
                db.device_types,
                dt.slug,
                model=dt.model,
                manufacturer_id=manufacturer_ids[dt.manufacturer],
                interfaces=[{"name": i.name, "speed_mbps": i.speed_mbps} for i in dt.interfaces],
            )
        for p in spec.prefixes:
            if await self._one(select(db.prefixes.c.id).where(db.prefixes.c.prefix == p.prefix)) is None:
                await self._insert(db.prefixes, prefix=p.prefix, role=p.role, description=p.description)
                created.append(f"prefix {p.prefix}")
        return created

    # --- node ------------------------------------------------------------------------

    async def _node_resources(self, device_id: int) -> NodeResources:
        d, s, r, t, m = db.devices, db.sites, db.device_roles, db.device_types, db.manufacturers
        row = await self._one(
            select(
                d.c.id,
                d.c.name,
                s.c.slug.label("site"),
                r.c.name.label("role"),
                t.c.model,
                m.c.name.label("manufacturer"),
            )
            .join(s, s.c.id == d.c.site_id)
            .join(r, r.c.id == d.c.role_id)
            .join(t, t.c.id == d.c.device_type_id)
            .join(m, m.c.id == t.c.manufacturer_id)
            .where(d.c.id == device_id)
        )
        names = (
            (
                await self.s.execute(
                    select(db.interfaces.c.name)
                    .where(db.interfaces.c.device_id == device_id)
                    .order_by(db.interfaces.c.id)
                )
            )
            .scalars()
            .all()
        )
        v4, v6 = await self._loopbacks(device_id)
        return NodeResources(
            device_name=row.name,
            device=_ref(row.id),
            site=row.site,
            role=row.role,
            vendor=row.manufacturer,
            device_type=row.model,
            loopback_v4=v4,
            loopback_v6=v6,
            interfaces=tuple(names),
        )

    async def allocate_node(self, key: str, subscription_id: str, req: NodeRequest) -> NodeResources:
        existing = await self._one(select(db.devices.c.id).where(db.devices.c.allocation_key == key))
        if existing is not None:
            return await self._node_resources(existing.id)
        taken = await self._one(
            select(db.devices.c.subscription_id).where(db.devices.c.name == req.node_name)
        )
        if taken is not None:
            raise AllocationError(
                "nodeNameTaken",
                f"a device named {req.node_name} exists (subscription {taken.subscription_id})",
            )
        type_row = await self._one(
            select(db.device_types).where(db.device_types.c.slug == device_type_slug(req.device_type))
        )
        if type_row is None:
            raise AllocationError(
                "notSeeded", f"unknown device type {req.device_type!r}: run `netweave inventory seed` first"
            )
        device_id = await self._insert(
            db.devices,
            name=req.node_name,
            site_id=await self._id_by_slug(db.sites, req.site, "site"),
            role_id=await self._id_by_slug(db.device_roles, req.role.lower(), "device role"),
            device_type_id=type_row.id,
            description=req.description,
            subscription_id=subscription_id,
            allocation_key=key,
        )
        await self.s.execute(
            insert(db.interfaces),
            [
                {
                    "device_id": device_id,
                    "name": i["name"],
                    "speed_mbps": i["speed_mbps"],
                    "enabled": True,
                    "description": "",
                }
                for i in type_row.interfaces
            ],
        )
        for version in (4, 6):
            await self._next_loopback(device_id, version, key, subscription_id, req.node_name)
        return await self._node_resources(device_id)

    async def modify_node(self, key: str, subscription_id: str, req: NodeRequest) -> NodeResources:
        device = await self._device_of_node(subscription_id)
        current = await self._node_resources(device.id)
        check_node_identity(current, req)
        await self.s.execute(
            update(db.devices).where(db.devices.c.id == device.id).values(description=req.description)
        )
        return current

    # --- port ------------------------------------------------------------------------

    async def _port_resources(self, iface_id: int) -> PortResources:
        i, d = db.interfaces, db.devices
        row = await self._one(
            select(i, d.c.name.label("device_name"), d.c.subscription_id.label("node_subscription_id"))
            .join(d, d.c.id == i.c.device_id)
            .where(i.c.id == iface_id)
        )
        v4, v6 = await self._loopbacks(row.device_id)
        return PortResources(
            node_subscription_id=row.node_subscription_id,
            device_name=row.device_name,
            interface_name=row.name,
            interface=_ref(row.id),
            speed_mbps=row.speed_mbps,
            description=row.description,
            mode=row.mode or "untagged",
            mtu=row.mtu or 1500,
            enabled=row.enabled,
            loopback_v4=v4,
            loopback_v6=v6,
        )

    async def allocate_port(self, key: str, subscription_id: str, req: PortRequest) -> PortResources:
        existing = await self._one(select(db.interfaces.c.id).where(db.interfaces.c.allocation_key == key))
        if existing is not None:
            return await self._port_resources(existing.id)
        device = await self._device_of_node(req.node_subscription_id)
        iface = await self._free_interface(device, req.interface, req.speed_mbps)
        await self._take_interface(
            iface,
            device.name,
            {
                "description": req.description,
                "enabled": req.enabled,
                "mtu": req.mtu,
                "mode": req.mode,
                "subscription_id": subscription_id,
                "allocation_key": key,
            },
        )
        return await self._port_resources(iface.id)

    async def modify_port(self, key: str, subscription_id: str, req: PortRequest) -> PortResources:
        row = await self._one(
            select(db.interfaces, db.devices.c.name.label("device_name"))
            .join(db.devices, db.devices.c.id == db.interfaces.c.device_id)
            .where(db.interfaces.c.subscription_id == subscription_id)
        )
        if row is None:
            raise AllocationError("unknownSubscription", f"subscription {subscription_id} holds no port")
        if row.speed_mbps != req.speed_mbps:
            raise AllocationError(
                "speedMismatch",
                f"{row.device_name}:{row.name} is a {row.speed_mbps // 1000}G interface; it cannot carry "
                f"{req.speed_mbps // 1000}G",
            )
        if row.mode != req.mode and await self._terminations_on(row.id):
            raise AllocationError(
                "portInUse", f"{row.device_name}:{row.name} carries services; its mode cannot change"
            )
        await self.s.execute(
            update(db.interfaces)
            .where(db.interfaces.c.id == row.id)
            .values(description=req.description, enabled=req.enabled, mtu=req.mtu, mode=req.mode)
        )
        return await self._port_resources(row.id)

    # --- core link -------------------------------------------------------------------

    async def _next_subnet(self, version: int, length: int, key: str, sub: str, label: str) -> Any:
        parent = await self._locked_prefix(CORE_LINK_ROLE, version)
        net = ipaddress.ip_network(parent)
        used = [
            r.prefix
            for r in (await self.s.execute(select(db.prefixes.c.prefix))).all()
            if r.prefix != parent
            and ipaddress.ip_network(r.prefix).version == version
            and ipaddress.ip_network(r.prefix).subnet_of(net)  # type: ignore[arg-type]
        ]
        subnet = first_free_subnet(parent, length, used)
        if subnet is None:
            raise AllocationError("prefixExhausted", f"no free /{length} left in {parent}")
        await self._insert(
            db.prefixes,
            prefix=str(subnet),
            role=CORE_LINK_ROLE,
            description=label,
            subscription_id=sub,
            allocation_key=key,
        )
        return subnet

    async def _core_link_resources(self, cable_id: int) -> CoreLinkResources:
        cable = await self._one(select(db.cables).where(db.cables.c.id == cable_id))
        sides = []
        for iface_id in (cable.a_interface_id, cable.b_interface_id):
            row = await self._one(
                select(
                    db.interfaces,
                    db.devices.c.name.label("device_name"),
                    db.devices.c.subscription_id.label("node_subscription_id"),
                )
                .join(db.devices, db.devices.c.id == db.interfaces.c.device_id)
                .where(db.interfaces.c.id == iface_id)
            )
            addresses = (
                (
                    await self.s.execute(
                        select(db.ip_addresses.c.address).where(db.ip_addresses.c.interface_id == iface_id)
                    )
                )
                .scalars()
                .all()
            )
            v4 = next(a for a in addresses if ipaddress.ip_interface(a).version == 4)
            v6 = next(a for a in addresses if ipaddress.ip_interface(a).version == 6)
            loop_v4, _ = await self._loopbacks(row.device_id)
            sides.append(
                CoreLinkSide(
                    node_subscription_id=row.node_subscription_id,
                    device_name=row.device_name,
                    interface_name=row.name,
                    interface=_ref(row.id),
                    ipv4=v4,
                    ipv6=v6,
                    loopback_v4=loop_v4,
                )
            )
        return CoreLinkResources(
            a=sides[0],
            b=sides[1],
            ipv4_prefix=str(ipaddress.ip_interface(sides[0].ipv4).network),
            ipv6_prefix=str(ipaddress.ip_interface(sides[0].ipv6).network),
            isis_metric=int(cable.custom["isis_metric"]),
            speed_mbps=int(cable.custom["speed_mbps"]),
            cable=_ref(cable.id),
        )

    async def allocate_core_link(
        self, key: str, subscription_id: str, req: CoreLinkRequest
    ) -> CoreLinkResources:
        existing = await self._one(select(db.cables.c.id).where(db.cables.c.allocation_key == key))
        if existing is not None:
            return await self._core_link_resources(existing.id)
        a_dev = await self._device_of_node(req.a_node_subscription_id)
        b_dev = await self._device_of_node(req.b_node_subscription_id)
        a_if = await self._free_interface(a_dev, req.a_interface, req.speed_mbps)
        b_if = await self._free_interface(b_dev, req.b_interface, req.speed_mbps)
        label = f"{a_dev.name}:{a_if.name} <> {b_dev.name}:{b_if.name}"
        v4 = await self._next_subnet(4, 31, key, subscription_id, label)
        v6 = await self._next_subnet(6, 127, key, subscription_id, label)
        owned = {"subscription_id": subscription_id, "allocation_key": key}
        for iface, dev, peer, index in (
            (a_if, a_dev, f"{b_dev.name}:{b_if.name}", 0),
            (b_if, b_dev, f"{a_dev.name}:{a_if.name}", 1),
        ):
            await self._take_interface(
                iface, dev.name, {"description": f"{req.description} {peer}", "mode": None, **owned}
            )
            for subnet in (v4, v6):
                address = side_addresses(subnet)[index]
                await self._insert(
                    db.ip_addresses,
                    address=address,
                    host=address.split("/")[0],
                    interface_id=iface.id,
                    role=None,
                    description=label,
                    **owned,
                )
        cable_id = await self._insert(
            db.cables,
            a_interface_id=a_if.id,
            b_interface_id=b_if.id,
            label=label,
            custom={"isis_metric": req.isis_metric, "speed_mbps": req.speed_mbps},
            **owned,
        )
        return await self._core_link_resources(cable_id)

    async def modify_core_link(
        self, key: str, subscription_id: str, req: CoreLinkRequest
    ) -> CoreLinkResources:
        cable = await self._one(select(db.cables).where(db.cables.c.subscription_id == subscription_id))
        if cable is None:
            raise AllocationError("unknownSubscription", f"subscription {subscription_id} holds no core link")
        await self.s.execute(
            update(db.cables)
            .where(db.cables.c.id == cable.id)
            .values(custom={**(cable.custom or {}), "isis_metric": req.isis_metric})
        )
        return await self._core_link_resources(cable.id)

    # --- L2 circuits -------------------------------------------------------------------

    async def _terminations_on(self, iface_id: int) -> list[Any]:
        return list(
            (
                await self.s.execute(
                    select(db.l2vpn_terminations, db.vlans.c.vid)
                    .outerjoin(db.vlans, db.vlans.c.id == db.l2vpn_terminations.c.vlan_id)
                    .where(db.l2vpn_terminations.c.interface_id == iface_id)
                )
            ).all()
        )

    async def _circuit_resources(self, l2vpn_id: int) -> CircuitResources:
        l2 = await self._one(select(db.l2vpns).where(db.l2vpns.c.id == l2vpn_id))
        t, i, d, v = db.l2vpn_terminations, db.interfaces, db.devices, db.vlans
        rows = (
            await self.s.execute(
                select(
                    t.c.id,
                    i.c.name.label("iface"),
                    i.c.subscription_id.label("port_sub"),
                    d.c.id.label("device_id"),
                    d.c.name.label("device_name"),
                    v.c.vid,
                )
                .join(i, i.c.id == t.c.interface_id)
                .join(d, d.c.id == i.c.device_id)
                .outerjoin(v, v.c.id == t.c.vlan_id)
                .where(t.c.l2vpn_id == l2vpn_id)
                .order_by(t.c.id)
            )
        ).all()
        saps = []
        for r in rows:
            v4, v6 = await self._loopbacks(r.device_id)
            saps.append(
                SapResources(
                    port_subscription_id=r.port_sub,
                    device_name=r.device_name,
                    interface_name=r.iface,
                    vlan=r.vid,
                    loopback_v4=v4,
                    loopback_v6=v6,
                )
            )
        return CircuitResources(
            l2vpn_name=l2.name,
            l2vpn=_ref(l2.id),
            l2vpn_type=l2.type,
            vni=l2.identifier,
            speed_mbps=int(l2.custom["speed_mbps"]),
            saps=tuple(saps),
        )

    async def _port_interface(self, port_subscription_id: str) -> Any:
        row = await self._one(
            select(db.interfaces, db.devices.c.name.label("device_name"))
            .join(db.devices, db.devices.c.id == db.interfaces.c.device_id)
            .where(db.interfaces.c.subscription_id == port_subscription_id, db.interfaces.c.mode.is_not(None))
        )
        if row is None:
            raise AllocationError(
                "unknownPort", f"port subscription {port_subscription_id} holds no interface"
            )
        return row

    async def _sap_vlan(self, iface: Any, sap: SapRequest) -> int | None:
        await self._lock_pool(f"interface:{iface.id}")
        existing = await self._terminations_on(iface.id)
        where = f"{iface.device_name}:{iface.name}"
        if iface.mode == "untagged":
            if sap.vlan is not None:
                raise AllocationError("vlanOnUntaggedPort", f"{where} is untagged; a SAP on it takes no VLAN")
            if existing:
                raise AllocationError("portInUse", f"{where} is untagged and already carries a service")
            return None
        used = {r.vid for r in existing}
        if sap.vlan is not None:
            if sap.vlan in used:
                raise AllocationError("vlanInUse", f"VLAN {sap.vlan} is already in use on {where}")
            return sap.vlan
        return next(vid for vid in range(FIRST_AUTO_VLAN, 4095) if vid not in used)

    async def _next_vni(self) -> int:
        await self._lock_pool("vni")
        used = set((await self.s.execute(select(db.l2vpns.c.identifier))).scalars().all())
        candidate = FIRST_VNI
        while candidate in used:
            candidate += 1
        return candidate

    async def _add_sap(self, l2vpn_id: int, sap: SapRequest, name: str, owned: dict[str, Any]) -> None:
        iface = await self._port_interface(sap.port_subscription_id)
        vid = await self._sap_vlan(iface, sap)
        vlan_id = None
        if vid is not None:
            vlan_id = await self._insert(
                db.vlans, interface_id=iface.id, vid=vid, name=f"{name}-{vid}", **owned
            )
        await self._insert(
            db.l2vpn_terminations, l2vpn_id=l2vpn_id, interface_id=iface.id, vlan_id=vlan_id, **owned
        )

    async def allocate_circuit(self, key: str, subscription_id: str, req: CircuitRequest) -> CircuitResources:
        existing = await self._one(select(db.l2vpns.c.id).where(db.l2vpns.c.allocation_key == key))
        if existing is not None:
            return await self._circuit_resources(existing.id)
        owned = {"subscription_id": subscription_id, "allocation_key": key}
        l2vpn_id = await self._insert(
            db.l2vpns,
            name=req.name,
            type=req.l2vpn_type,
            identifier=await self._next_vni(),
            description=req.description,
            custom={"speed_mbps": req.speed_mbps},
            **owned,
        )
        for sap in req.saps:
            await self._add_sap(l2vpn_id, sap, req.name, owned)
        return await self._circuit_resources(l2vpn_id)

    async def modify_circuit(self, key: str, subscription_id: str, req: CircuitRequest) -> CircuitResources:
        l2 = await self._one(select(db.l2vpns).where(db.l2vpns.c.subscription_id == subscription_id))
        if l2 is None:
            raise AllocationError("unknownSubscription", f"subscription {subscription_id} holds no L2VPN")
        current = await self._circuit_resources(l2.id)
        wanted = {(s.port_subscription_id, s.vlan) for s in req.saps}
        keep = {(s.port_subscription_id, s.vlan) for s in current.saps}
        t = db.l2vpn_terminations
        for sap in current.saps:
            if (sap.port_subscription_id, sap.vlan) in wanted or (sap.port_subscription_id, None) in wanted:
                continue
            iface = await self._port_interface(sap.port_subscription_id)
            rows = [
                r for r in await self._terminations_on(iface.id) if r.l2vpn_id == l2.id and r.vid == sap.vlan
            ]
            for r in rows:
                await self.s.execute(delete(t).where(t.c.id == r.id))
                if r.vlan_id is not None:
                    await self.s.execute(delete(db.vlans).where(db.vlans.c.id == r.vlan_id))
        present_ports = {s.port_subscription_id for s in current.saps}
        owned = {"subscription_id": subscription_id, "allocation_key": key}
        for wanted_sap in req.saps:
            if (wanted_sap.port_subscription_id, wanted_sap.vlan) in keep or (
                wanted_sap.vlan is None and wanted_sap.port_subscription_id in present_ports
            ):
                continue
            await self._add_sap(l2.id, wanted_sap, l2.name, owned)
        await self.s.execute(
            update(db.l2vpns).where(db.l2vpns.c.id == l2.id).values(custom={"speed_mbps": req.speed_mbps})
        )
        return await self._circuit_resources(l2.id)

    # --- release -----------------------------------------------------------------------

    async def release(self, subscription_id: str) -> tuple[str, ...]:
        released: list[str] = []

        def owned(table: Any) -> Any:
            return table.c.subscription_id == subscription_id

        async def count(statement: Any, what: str) -> None:
            n = _rowcount(await self.s.execute(statement))
            if n:
                released.append(f"{n} {what}")

        for table, what in (
            (db.l2vpn_terminations, "L2VPN termination(s)"),
            (db.vlans, "VLAN(s)"),
            (db.l2vpns, "L2VPN(s)"),
            (db.cables, "cable(s)"),
        ):
            await count(delete(table).where(owned(table)), what)
        ips = db.ip_addresses
        await count(delete(ips).where(owned(ips), ips.c.interface_id.is_not(None)), "link address(es)")
        await count(delete(db.prefixes).where(owned(db.prefixes)), "link prefix(es)")
        own_devices = select(db.devices.c.id).where(owned(db.devices))
        await count(
            update(db.interfaces)
            .where(owned(db.interfaces), db.interfaces.c.device_id.not_in(own_devices))
            .values(
                subscription_id=None, allocation_key=None, description="", mtu=None, mode=None, enabled=True
            ),
            "interface(s) freed",
        )
        for device in (await self.s.execute(select(db.devices).where(owned(db.devices)))).all():
            held = await self._one(
                select(db.interfaces.c.name, db.interfaces.c.subscription_id).where(
                    and_(
                        db.interfaces.c.device_id == device.id,
                        db.interfaces.c.subscription_id.is_not(None),
                        db.interfaces.c.subscription_id != subscription_id,
                    )
                )
            )
            if held is not None:
                raise AllocationError(
                    "inUse",
                    f"{device.name} cannot be released: {held.name} is held by subscription "
                    f"{held.subscription_id}",
                )
            await self.s.execute(delete(db.ip_addresses).where(db.ip_addresses.c.device_id == device.id))
            await self.s.execute(delete(db.interfaces).where(db.interfaces.c.device_id == device.id))
            await self.s.execute(delete(db.devices).where(db.devices.c.id == device.id))
            released.append(f"device {device.name} with its interfaces and loopbacks")
        return tuple(released)
