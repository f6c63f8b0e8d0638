"""NetBox as the resource store, through pynetbox (v2 tokens).

Every object we create carries two custom fields: ``netweave_subscription`` (who holds
it) and ``netweave_allocation`` (the order item that made it). A redelivered item finds
what it made by the second; a release gives back everything marked with the first; a
failure half-way deletes what the item had made before the error is reported.

NetBox has no conditional update, so exclusive use of something that is not unique by
itself (a customer interface, a VNI, an untagged port) is claimed with a tag whose slug
names the thing: creating an existing slug fails, so of two racing orders exactly one
gets the claim, in this process or in another replica.

pynetbox is synchronous; each store call runs in a worker thread. Calls time out and
are retried with back-off on connection errors and on 5xx; a store that stays
unreachable raises ``StoreUnavailable``.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

import pynetbox
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from netweave.contracts.resources import (
    CircuitResources,
    CoreLinkResources,
    CoreLinkSide,
    NodeResources,
    ObjectRef,
    PortResources,
    SapResources,
)
from netweave.inventory.config import InventorySettings
from netweave.inventory.domain.errors import AllocationError, StoreUnavailable
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

log = logging.getLogger(__name__)

T = TypeVar("T")

CF_SUBSCRIPTION = "netweave_subscription"
CF_ALLOCATION = "netweave_allocation"
CF_ISIS_METRIC = "netweave_isis_metric"
CF_SPEED = "netweave_speed_mbps"
LOOPBACK_INTERFACE = "lo"

_TRACKED_TYPES = [
    "dcim.device",
    "dcim.interface",
    "dcim.cable",
    "ipam.ipaddress",
    "ipam.prefix",
    "ipam.vlan",
    "ipam.vlangroup",
    "vpn.l2vpn",
    "vpn.l2vpntermination",
]
_INTERFACE_TYPE = {10_000: "10gbase-x-sfpp", 100_000: "100gbase-x-qsfp28"}
_SPEED_OF_TYPE = {v: k for k, v in _INTERFACE_TYPE.items()}
_MODE = {"untagged": "access", "tagged": "tagged"}
_MODE_BACK = {v: k for k, v in _MODE.items()}


class _TimeoutAdapter(HTTPAdapter):
    def __init__(self, timeout: float, retries: int) -> None:
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            backoff_factor=0.5,
            status_forcelist=(500, 502, 503, 504),
            # Reads and 5xx are retried only for requests that are safe to repeat;
            # connection failures (nothing reached NetBox) are retried for all.
            allowed_methods=frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"}),
            raise_on_status=False,
        )
        super().__init__(max_retries=retry)
        self.timeout = timeout

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:100]


def _error_text(exc: pynetbox.RequestError) -> str:
    return str(getattr(exc, "error", exc))


def _owned(sub: str, key: str) -> dict[str, Any]:
    return {"custom_fields": {CF_SUBSCRIPTION: sub, CF_ALLOCATION: key}}


def _id(value: Any) -> int:
    return int(value.id if hasattr(value, "id") else value)


class _NetBox:
    """The synchronous work; every public method runs in a worker thread."""

    def __init__(self, url: str, token: str, timeout: float, retries: int) -> None:
        self.url = url.rstrip("/")
        self.api = pynetbox.api(self.url, token=token)
        session = requests.Session()
        adapter = _TimeoutAdapter(timeout, retries)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self.api.http_session = session

    # --- plumbing ----------------------------------------------------------------------

    def ui(self, path: str, object_id: int) -> str:
        return f"{self.url}/{path}/{object_id}/"

    def ref(self, path: str, object_id: int) -> ObjectRef:
        return ObjectRef(id=object_id, url=self.ui(path, object_id))

    def ping(self) -> None:
        self.api.status()

    def by_key(self, endpoint: Any, key: str) -> list[Any]:
        return list(endpoint.filter(**{f"cf_{CF_ALLOCATION}": key}))

    def by_sub(self, endpoint: Any, sub: str) -> list[Any]:
        return list(endpoint.filter(**{f"cf_{CF_SUBSCRIPTION}": sub}))

    def claim(self, slug: str, holder: str) -> None:
        """Take exclusive use of ``slug``; AllocationError if another holder has it."""
        try:
            self.api.extras.tags.create({"name": slug, "slug": slug, "description": holder})
        except pynetbox.RequestError:
            existing = self.api.extras.tags.get(slug=slug)
            if existing is not None and existing.description == holder:
                return  # our own claim, made by an earlier delivery
            holder_now = existing.description if existing else "another order"
            raise AllocationError(
                "inUse", f"{slug.removeprefix('nw-claim-')} is held by {holder_now}"
            ) from None

    def unclaim(self, slug: str) -> None:
        tag = self.api.extras.tags.get(slug=slug)
        if tag is not None:
            tag.delete()

    def unclaim_held_by(self, holder_prefix: str) -> None:
        """Drop every claim and allocation marker whose holder starts with the prefix."""
        for tag in self.api.extras.tags.filter(q="nw-"):
            if tag.slug.startswith(("nw-claim-", "nw-alloc-")) and str(tag.description or "").startswith(
                holder_prefix
            ):
                tag.delete()

    # --- seed --------------------------------------------------------------------------

    def seed(self, spec: SeedSpec) -> list[str]:
        created: list[str] = []

        def ensure(endpoint: Any, what: str, lookup: dict[str, Any], values: dict[str, Any]) -> Any:
            found = endpoint.get(**lookup)
            if found is not None:
                return found
            created.append(f"{what} {next(iter(lookup.values()))}")
            return endpoint.create({**lookup, **values})

        # Exact filtering matters: NetBox matches text custom fields by substring
        # unless told otherwise, and key "o/l" must not find "o/lon-pe".
        fields = (
            (CF_SUBSCRIPTION, "text", _TRACKED_TYPES, "netweave subscription"),
            (CF_ALLOCATION, "text", _TRACKED_TYPES, "netweave allocation"),
            (CF_ISIS_METRIC, "integer", ["dcim.cable"], "IS-IS metric"),
            (CF_SPEED, "integer", ["vpn.l2vpn"], "speed (Mbit/s)"),
        )
        for name, kind, types, label in fields:
            field = ensure(
                self.api.extras.custom_fields,
                "custom field",
                {"name": name},
                {
                    "type": kind,
                    "object_types": types,
                    "label": label,
                    "filter_logic": "exact",
                    "description": "set by netweave",
                },
            )
            if getattr(field.filter_logic, "value", field.filter_logic) != "exact":
                field.update({"filter_logic": "exact"})
        for slug, name in spec.sites.items():
            ensure(self.api.dcim.sites, "site", {"slug": slug}, {"name": name, "status": "active"})
        for role in spec.roles:
            ensure(self.api.dcim.device_roles, "device role", {"slug": role.lower()}, {"name": role})
        manufacturers = {
            name: ensure(self.api.dcim.manufacturers, "manufacturer", {"slug": slug}, {"name": name})
            for name, slug in spec.manufacturers.items()
        }
        for dt in spec.device_types:
            found = self.api.dcim.device_types.get(slug=dt.slug)
            if found is None:
                found = self.api.dcim.device_types.create(
                    {"slug": dt.slug, "model": dt.model, "manufacturer": manufacturers[dt.manufacturer].id}
                )
                created.append(f"device type {dt.slug}")
                self.api.dcim.interface_templates.create(
                    [
                        {"device_type": found.id, "name": i.name, "type": _INTERFACE_TYPE[i.speed_mbps]}
                        for i in dt.interfaces
                    ]
                )
        for role in (LOOPBACK_ROLE, CORE_LINK_ROLE):
            ensure(self.api.ipam.roles, "IPAM role", {"slug": role}, {"name": role})
        for p in spec.prefixes:
            if self.api.ipam.prefixes.get(prefix=p.prefix) is None:
                role = self.api.ipam.roles.get(slug=p.role)
                self.api.ipam.prefixes.create(
                    {"prefix": p.prefix, "role": role.id, "description": p.description, "status": "active"}
                )
                created.append(f"prefix {p.prefix}")
        return created

    # --- node ------------------------------------------------------------------------------

    def loopbacks(self, device_id: int) -> tuple[str, str]:
        v4 = v6 = ""
        for ip in self.api.ipam.ip_addresses.filter(device_id=device_id, role="loopback"):
            if ipaddress.ip_interface(ip.address).version == 4:
                v4 = ip.address
            else:
                v6 = ip.address
        return v4, v6

    def node_resources(self, device: Any) -> NodeResources:
        interfaces = [
            i.name
            for i in self.api.dcim.interfaces.filter(device_id=device.id)
            if i.name != LOOPBACK_INTERFACE
        ]
        v4, v6 = self.loopbacks(device.id)
        dtype = self.api.dcim.device_types.get(device.device_type.id)
        return NodeResources(
            device_name=device.name,
            device=self.ref("dcim/devices", device.id),
            site=device.site.slug,
            role=device.role.name,
            vendor=dtype.manufacturer.name,
            device_type=dtype.model,
            loopback_v4=v4,
            loopback_v6=v6,
            interfaces=tuple(sorted(interfaces, key=_natural)),
        )

    def _prefix(self, role: str, version: int) -> Any:
        for p in self.api.ipam.prefixes.filter(role=role, family=version):
            if not (p.custom_fields or {}).get(CF_SUBSCRIPTION):
                return p
        raise AllocationError(
            "notSeeded", f"no IPv{version} {role} prefix: run `netweave inventory seed` first"
        )

    def _next_loopback(self, lo: Any, version: int, sub: str, key: str, name: str) -> None:
        prefix = self._prefix(LOOPBACK_ROLE, version)
        try:
            ip = prefix.available_ips.create(
                {
                    "assigned_object_type": "dcim.interface",
                    "assigned_object_id": lo.id,
                    "role": "loopback",
                    "description": f"{name} loopback",
                    **_owned(sub, key),
                }
            )
        except pynetbox.RequestError as exc:
            raise AllocationError(
                "prefixExhausted", f"no free loopback in {prefix.prefix}: {_error_text(exc)}"
            ) from exc
        host = ipaddress.ip_interface(ip.address).ip
        self.api.ipam.ip_addresses.get(ip.id).update({"address": f"{host}/{host.max_prefixlen}"})

    def finished(
        self, endpoint: Any, key: str, sub: str, build: Callable[[Any], T], complete: Callable[[T], bool]
    ) -> T | None:
        """What an earlier delivery of this item made, if it got to the end.

        A delivery that died half-way (or lost NetBox mid-allocation) left some objects
        with the key: they are removed so the item starts again from nothing.
        """
        marker = _marker(key)
        if self.api.extras.tags.get(slug=marker) is None:
            # Nothing was started for this item: mark the start, then allocate.
            self.api.extras.tags.create({"name": marker, "slug": marker, "description": f"{sub} {key}"})
            return None
        found = self.by_key(endpoint, key)
        if found:
            try:
                result = build(found[0])
            except Exception:
                log.warning("partial allocation found; removing it", extra={"key": key})
            else:
                if complete(result):
                    return result
        self.rollback(key, sub)
        self.api.extras.tags.create({"name": marker, "slug": marker, "description": f"{sub} {key}"})
        return None

    def allocate_node(self, key: str, sub: str, req: NodeRequest) -> NodeResources:
        done = self.finished(
            self.api.dcim.devices,
            key,
            sub,
            self.node_resources,
            lambda r: bool(r.loopback_v4 and r.loopback_v6),
        )
        if done is not None:
            return done
        taken = self.api.dcim.devices.get(name=req.node_name)
        if taken is not None:
            holder = (taken.custom_fields or {}).get(CF_SUBSCRIPTION) or "nobody known"
            raise AllocationError(
                "nodeNameTaken", f"a device named {req.node_name} exists (subscription {holder})"
            )
        site = self.api.dcim.sites.get(slug=req.site)
        role = self.api.dcim.device_roles.get(slug=req.role.lower())
        dtype = self.api.dcim.device_types.get(slug=device_type_slug(req.device_type))
        if site is None or role is None or dtype is None:
            raise AllocationError(
                "notSeeded",
                f"site {req.site}, role {req.role} or type {req.device_type} "
                "is missing: run `netweave inventory seed` first",
            )
        device = self.api.dcim.devices.create(
            {
                "name": req.node_name,
                "site": site.id,
                "role": role.id,
                "device_type": dtype.id,
                "status": "active",
                "description": req.description[:200],
                **_owned(sub, key),
            }
        )
        lo = self.api.dcim.interfaces.create(
            {
                "device": device.id,
                "name": LOOPBACK_INTERFACE,
                "type": "virtual",
                "description": "loopback",
                **_owned(sub, key),
            }
        )
        for version in (4, 6):
            self._next_loopback(lo, version, sub, key, req.node_name)
        return self.node_resources(self.api.dcim.devices.get(device.id))

    def modify_node(self, key: str, sub: str, req: NodeRequest) -> NodeResources:
        device = self.device_of_node(sub)
        current = self.node_resources(device)
        check_node_identity(current, req)
        device.update({"description": req.description[:200]})
        return current

    # --- interfaces and ports ------------------------------------------------------------

    def device_of_node(self, node_sub: str) -> Any:
        found = self.by_sub(self.api.dcim.devices, node_sub)
        if not found:
            raise AllocationError(
                "unknownNode", f"node subscription {node_sub} holds no device in the inventory"
            )
        return found[0]

    def interface(self, device: Any, name: str) -> Any:
        iface = self.api.dcim.interfaces.get(device_id=device.id, name=name)
        if iface is None:
            names = sorted(
                (
                    i.name
                    for i in self.api.dcim.interfaces.filter(device_id=device.id)
                    if i.name != LOOPBACK_INTERFACE
                ),
                key=_natural,
            )
            raise AllocationError(
                "unknownInterface", f"{device.name} has no interface {name}; it has {', '.join(names)}"
            )
        return iface

    def speed_of(self, iface: Any) -> int:
        return _SPEED_OF_TYPE.get(getattr(iface.type, "value", str(iface.type)), 0)

    def take_interface(
        self, device: Any, name: str, speed: int, sub: str, key: str, values: dict[str, Any]
    ) -> Any:
        iface = self.interface(device, name)
        holder = (iface.custom_fields or {}).get(CF_SUBSCRIPTION)
        if holder and holder != sub:
            raise AllocationError(
                "interfaceInUse", f"{device.name}:{name} is in use by subscription {holder}"
            )
        if self.speed_of(iface) != speed:
            raise AllocationError(
                "speedMismatch",
                f"{device.name}:{name} is a {self.speed_of(iface) // 1000}G "
                f"interface; the product needs {speed // 1000}G",
            )
        try:
            self.claim(f"nw-claim-if-{iface.id}", f"{sub} {key}")
        except AllocationError:
            raise AllocationError(
                "interfaceInUse", f"{device.name}:{name} was just taken by another order"
            ) from None
        iface.update({**values, **_owned(sub, key)})
        return iface

    def port_resources(self, iface: Any) -> PortResources:
        device = self.api.dcim.devices.get(iface.device.id)
        v4, v6 = self.loopbacks(device.id)
        return PortResources(
            node_subscription_id=(device.custom_fields or {}).get(CF_SUBSCRIPTION) or "",
            device_name=device.name,
            interface_name=iface.name,
            interface=self.ref("dcim/interfaces", iface.id),
            speed_mbps=self.speed_of(iface),
            description=iface.description or "",
            mode=_MODE_BACK.get(getattr(iface.mode, "value", None) or "access", "untagged"),
            mtu=iface.mtu or 1500,
            enabled=bool(iface.enabled),
            loopback_v4=v4,
            loopback_v6=v6,
        )

    def allocate_port(self, key: str, sub: str, req: PortRequest) -> PortResources:
        done = self.finished(self.api.dcim.interfaces, key, sub, self.port_resources, lambda _: True)
        if done is not None:
            return done
        device = self.device_of_node(req.node_subscription_id)
        iface = self.take_interface(
            device,
            req.interface,
            req.speed_mbps,
            sub,
            key,
            {
                "description": req.description[:200],
                "enabled": req.enabled,
                "mtu": req.mtu,
                "mode": _MODE[req.mode],
            },
        )
        return self.port_resources(self.api.dcim.interfaces.get(iface.id))

    def port_of(self, sub: str) -> Any:
        found = [i for i in self.by_sub(self.api.dcim.interfaces, sub) if i.mode is not None]
        if not found:
            raise AllocationError("unknownPort", f"port subscription {sub} holds no interface")
        return found[0]

    def modify_port(self, key: str, sub: str, req: PortRequest) -> PortResources:
        iface = self.port_of(sub)
        if self.speed_of(iface) != req.speed_mbps:
            raise AllocationError(
                "speedMismatch",
                f"{iface.device.name}:{iface.name} is a "
                f"{self.speed_of(iface) // 1000}G interface; it cannot carry {req.speed_mbps // 1000}G",
            )
        current_mode = _MODE_BACK.get(getattr(iface.mode, "value", None) or "access", "untagged")
        if current_mode != req.mode and self.sap_users(iface):
            raise AllocationError(
                "portInUse", f"{iface.device.name}:{iface.name} carries services; its mode cannot change"
            )
        iface.update(
            {
                "description": req.description[:200],
                "enabled": req.enabled,
                "mtu": req.mtu,
                "mode": _MODE[req.mode],
            }
        )
        return self.port_resources(self.api.dcim.interfaces.get(iface.id))

    # --- core links ------------------------------------------------------------------------

    def allocate_core_link(self, key: str, sub: str, req: CoreLinkRequest) -> CoreLinkResources:
        # The cable is made last: if it exists, the link is complete.
        done = self.finished(self.api.dcim.cables, key, sub, self.core_link_resources, lambda _: True)
        if done is not None:
            return done
        a_dev, b_dev = (
            self.device_of_node(req.a_node_subscription_id),
            self.device_of_node(req.b_node_subscription_id),
        )
        for dev, name in ((a_dev, req.a_interface), (b_dev, req.b_interface)):
            iface = self.interface(dev, name)
            holder = (iface.custom_fields or {}).get(CF_SUBSCRIPTION)
            if holder and holder != sub:
                raise AllocationError(
                    "interfaceInUse", f"{dev.name}:{name} is in use by subscription {holder}"
                )
        label = f"{a_dev.name}:{req.a_interface} <> {b_dev.name}:{req.b_interface}"
        a_if = self.take_interface(
            a_dev,
            req.a_interface,
            req.speed_mbps,
            sub,
            key,
            {"description": f"{req.description} {b_dev.name}:{req.b_interface}"[:200]},
        )
        b_if = self.take_interface(
            b_dev,
            req.b_interface,
            req.speed_mbps,
            sub,
            key,
            {"description": f"{req.description} {a_dev.name}:{req.a_interface}"[:200]},
        )
        for version, length in ((4, 31), (6, 127)):
            parent = self._prefix(CORE_LINK_ROLE, version)
            try:
                child = parent.available_prefixes.create(
                    {
                        "prefix_length": length,
                        "role": parent.role.id,
                        "description": label,
                        "status": "active",
                        **_owned(sub, key),
                    }
                )
            except pynetbox.RequestError as exc:
                raise AllocationError("prefixExhausted", f"no free /{length} in {parent.prefix}") from exc
            child = child[0] if isinstance(child, list) else child
            child = self.api.ipam.prefixes.get(child.id)
            for iface in (a_if, b_if):
                child.available_ips.create(
                    {
                        "assigned_object_type": "dcim.interface",
                        "assigned_object_id": iface.id,
                        "description": label,
                        **_owned(sub, key),
                    }
                )
        self.api.dcim.cables.create(
            {
                "a_terminations": [{"object_type": "dcim.interface", "object_id": a_if.id}],
                "b_terminations": [{"object_type": "dcim.interface", "object_id": b_if.id}],
                "label": label[:100],
                "status": "connected",
                "custom_fields": {CF_SUBSCRIPTION: sub, CF_ALLOCATION: key, CF_ISIS_METRIC: req.isis_metric},
            }
        )
        return self.core_link_resources(self.by_key(self.api.dcim.cables, key)[0])

    def core_link_resources(self, cable: Any) -> CoreLinkResources:
        cable = self.api.dcim.cables.get(cable.id)
        sides = []
        for term in (cable.a_terminations[0], cable.b_terminations[0]):
            iface = self.api.dcim.interfaces.get(
                term.object_id if hasattr(term, "object_id") else term["object_id"]
            )
            device = self.api.dcim.devices.get(iface.device.id)
            addresses = [ip.address for ip in self.api.ipam.ip_addresses.filter(interface_id=iface.id)]
            v4 = next(a for a in addresses if ipaddress.ip_interface(a).version == 4)
            v6 = next(a for a in addresses if ipaddress.ip_interface(a).version == 6)
            sides.append(
                CoreLinkSide(
                    node_subscription_id=(device.custom_fields or {}).get(CF_SUBSCRIPTION) or "",
                    device_name=device.name,
                    interface_name=iface.name,
                    interface=self.ref("dcim/interfaces", iface.id),
                    ipv4=v4,
                    ipv6=v6,
                    loopback_v4=self.loopbacks(device.id)[0],
                )
            )
        a, b = sorted(sides, key=lambda s: ipaddress.ip_interface(s.ipv4).ip)
        cf = cable.custom_fields or {}
        return CoreLinkResources(
            a=a,
            b=b,
            ipv4_prefix=str(ipaddress.ip_interface(a.ipv4).network),
            ipv6_prefix=str(ipaddress.ip_interface(a.ipv6).network),
            isis_metric=int(cf.get(CF_ISIS_METRIC) or 0),
            speed_mbps=self.speed_of(self.api.dcim.interfaces.get(a.interface.id)),
            cable=self.ref("dcim/cables", cable.id),
        )

    def modify_core_link(self, key: str, sub: str, req: CoreLinkRequest) -> CoreLinkResources:
        found = self.by_sub(self.api.dcim.cables, sub)
        if not found:
            raise AllocationError("unknownSubscription", f"subscription {sub} holds no core link")
        found[0].update({"custom_fields": {CF_ISIS_METRIC: req.isis_metric}})
        return self.core_link_resources(found[0])

    # --- L2 circuits -------------------------------------------------------------------------

    def sap_users(self, iface: Any) -> list[Any]:
        """L2VPN terminations on an interface directly or on one of its VLANs."""
        users = list(self.api.vpn.l2vpn_terminations.filter(interface_id=iface.id))
        for group in self._vlan_groups(f"nw-if-{iface.id}")[:1]:
            for vlan in self.api.ipam.vlans.filter(group_id=group.id):
                users += list(self.api.vpn.l2vpn_terminations.filter(vlan_id=vlan.id))
        return users

    def _vlan_groups(self, slug: str) -> list[Any]:
        """Oldest first: the oldest is the port's group if two orders made one at once."""
        return sorted(self.api.ipam.vlan_groups.filter(slug=slug), key=lambda g: int(g.id))

    def vlan_group(self, iface: Any) -> Any:
        """One VLAN group per customer port: NetBox keeps (group, vid) unique for us.

        NetBox does not keep an unscoped group's slug unique, so two orders on a new port
        can each create one: both then use the oldest and the other is deleted by its maker.
        """
        slug = f"nw-if-{iface.id}"
        existing = self._vlan_groups(slug)
        if existing:
            return existing[0]
        mine: Any = None
        refusal: pynetbox.RequestError | None = None
        try:
            mine = self.api.ipam.vlan_groups.create(
                {
                    "name": f"{iface.device.name} {iface.name} (nw-if-{iface.id})",
                    "slug": slug,
                    "description": "VLANs of one customer port (netweave)",
                }
            )
        except pynetbox.RequestError as exc:
            refusal = exc
        groups = self._vlan_groups(slug)
        if not groups:
            reason = _error_text(refusal) if refusal else "it vanished"
            raise AllocationError("storeRefused", f"NetBox refused the VLAN group: {reason}")
        if mine is not None and int(mine.id) != int(groups[0].id):
            mine.delete()
        return groups[0]

    def add_sap(self, l2vpn: Any, sap: SapRequest, sub: str, key: str) -> None:
        iface = self.port_of(sap.port_subscription_id)
        where = f"{iface.device.name}:{iface.name}"
        mode = _MODE_BACK.get(getattr(iface.mode, "value", None) or "access", "untagged")
        if mode == "untagged":
            if sap.vlan is not None:
                raise AllocationError("vlanOnUntaggedPort", f"{where} is untagged; a SAP on it takes no VLAN")
            if self.sap_users(iface):
                raise AllocationError("portInUse", f"{where} is untagged and already carries a service")
            try:
                self.claim(f"nw-claim-sap-{iface.id}", f"{sub} {key}")
            except AllocationError:
                raise AllocationError(
                    "portInUse", f"{where} is untagged and already carries a service"
                ) from None
            self.api.vpn.l2vpn_terminations.create(
                {
                    "l2vpn": l2vpn.id,
                    "assigned_object_type": "dcim.interface",
                    "assigned_object_id": iface.id,
                    **_owned(sub, key),
                }
            )
            return
        group = self.vlan_group(iface)
        used = {v.vid for v in self.api.ipam.vlans.filter(group_id=group.id)}
        if sap.vlan is not None and sap.vlan in used:
            raise AllocationError("vlanInUse", f"VLAN {sap.vlan} is already in use on {where}")
        candidates = (
            [sap.vlan] if sap.vlan is not None else [v for v in range(FIRST_AUTO_VLAN, 4095) if v not in used]
        )
        for vid in candidates:
            try:
                vlan = self.api.ipam.vlans.create(
                    {
                        "vid": vid,
                        "name": f"{l2vpn.name}-{vid}",
                        "group": group.id,
                        "status": "active",
                        **_owned(sub, key),
                    }
                )
            except pynetbox.RequestError:
                if sap.vlan is not None:
                    raise AllocationError("vlanInUse", f"VLAN {vid} is already in use on {where}") from None
                continue  # taken meanwhile by another order: next one
            self.api.vpn.l2vpn_terminations.create(
                {
                    "l2vpn": l2vpn.id,
                    "assigned_object_type": "ipam.vlan",
                    "assigned_object_id": vlan.id,
                    **_owned(sub, key),
                }
            )
            return
        raise AllocationError("vlanExhausted", f"no free VLAN left on {where}")

    def next_vni(self, sub: str, key: str) -> int:
        used = {int(x.identifier) for x in self.api.vpn.l2vpns.all() if x.identifier is not None}
        vni = FIRST_VNI
        while True:
            while vni in used:
                vni += 1
            try:
                self.claim(f"nw-claim-vni-{vni}", f"{sub} {key}")
                return vni
            except AllocationError:
                used.add(vni)

    def circuit_resources(self, l2vpn: Any) -> CircuitResources:
        saps = []
        terms = sorted(self.api.vpn.l2vpn_terminations.filter(l2vpn_id=l2vpn.id), key=lambda t: t.id)
        for term in terms:
            vid = None
            if term.assigned_object_type == "ipam.vlan":
                vlan = self.api.ipam.vlans.get(term.assigned_object_id)
                vid = vlan.vid
                group = self.api.ipam.vlan_groups.get(vlan.group.id)
                iface = self.api.dcim.interfaces.get(int(group.slug.removeprefix("nw-if-")))
            else:
                iface = self.api.dcim.interfaces.get(term.assigned_object_id)
            device = self.api.dcim.devices.get(iface.device.id)
            v4, v6 = self.loopbacks(device.id)
            saps.append(
                SapResources(
                    port_subscription_id=(iface.custom_fields or {}).get(CF_SUBSCRIPTION) or "",
                    device_name=device.name,
                    interface_name=iface.name,
                    vlan=vid,
                    loopback_v4=v4,
                    loopback_v6=v6,
                )
            )
        return CircuitResources(
            l2vpn_name=l2vpn.name,
            l2vpn=self.ref("vpn/l2vpns", l2vpn.id),
            l2vpn_type=getattr(l2vpn.type, "value", str(l2vpn.type)),
            vni=int(l2vpn.identifier),
            speed_mbps=int((l2vpn.custom_fields or {}).get(CF_SPEED) or 0),
            saps=tuple(saps),
        )

    def allocate_circuit(self, key: str, sub: str, req: CircuitRequest) -> CircuitResources:
        done = self.finished(
            self.api.vpn.l2vpns, key, sub, self.circuit_resources, lambda r: len(r.saps) == len(req.saps)
        )
        if done is not None:
            return done
        vni = self.next_vni(sub, key)
        l2vpn = self.api.vpn.l2vpns.create(
            {
                "name": req.name,
                "slug": _slug(req.name),
                "type": req.l2vpn_type,
                "identifier": vni,
                "status": "active",
                "description": req.description[:200],
                "custom_fields": {CF_SUBSCRIPTION: sub, CF_ALLOCATION: key, CF_SPEED: req.speed_mbps},
            }
        )
        for sap in req.saps:
            self.add_sap(l2vpn, sap, sub, key)
        return self.circuit_resources(self.api.vpn.l2vpns.get(l2vpn.id))

    def modify_circuit(self, key: str, sub: str, req: CircuitRequest) -> CircuitResources:
        found = self.by_sub(self.api.vpn.l2vpns, sub)
        if not found:
            raise AllocationError("unknownSubscription", f"subscription {sub} holds no L2VPN")
        l2vpn = found[0]
        current = self.circuit_resources(l2vpn)
        wanted = {(s.port_subscription_id, s.vlan) for s in req.saps}
        for sap, term in zip(
            current.saps,
            sorted(self.api.vpn.l2vpn_terminations.filter(l2vpn_id=l2vpn.id), key=lambda t: t.id),
            strict=True,
        ):
            if (sap.port_subscription_id, sap.vlan) in wanted or (sap.port_subscription_id, None) in wanted:
                continue
            self.drop_termination(term)
        present = {(s.port_subscription_id, s.vlan) for s in current.saps}
        present_ports = {s.port_subscription_id for s in current.saps}
        for wanted_sap in req.saps:
            if (wanted_sap.port_subscription_id, wanted_sap.vlan) in present or (
                wanted_sap.vlan is None and wanted_sap.port_subscription_id in present_ports
            ):
                continue
            self.add_sap(l2vpn, wanted_sap, sub, key)
        l2vpn.update({"custom_fields": {CF_SPEED: req.speed_mbps}})
        return self.circuit_resources(self.api.vpn.l2vpns.get(l2vpn.id))

    def drop_termination(self, term: Any) -> None:
        assigned_type, assigned_id = term.assigned_object_type, term.assigned_object_id
        term.delete()
        if assigned_type == "ipam.vlan":
            vlan = self.api.ipam.vlans.get(assigned_id)
            if vlan is not None:
                vlan.delete()
        else:
            self.unclaim(f"nw-claim-sap-{assigned_id}")

    # --- release and rollback ----------------------------------------------------------------

    def _reset_interface(self, iface: Any) -> None:
        iface.update(
            {
                "description": "",
                "mtu": None,
                "mode": None,
                "enabled": True,
                "custom_fields": {CF_SUBSCRIPTION: None, CF_ALLOCATION: None},
            }
        )
        self.unclaim(f"nw-claim-if-{iface.id}")

    def _remove(self, objects: Callable[[Any], list[Any]]) -> list[str]:
        """Give back everything ``objects(endpoint)`` finds, in dependency order."""
        released: list[str] = []

        def gone(endpoint: Any, what: str, before: Callable[[Any], None] | None = None) -> None:
            items = objects(endpoint)
            for item in items:
                if before:
                    before(item)
                item.delete()
            if items:
                released.append(f"{len(items)} {what}")

        def unclaim_sap(term: Any) -> None:
            if term.assigned_object_type == "dcim.interface":
                self.unclaim(f"nw-claim-sap-{term.assigned_object_id}")

        def unclaim_vni(l2vpn: Any) -> None:
            if l2vpn.identifier is not None:
                self.unclaim(f"nw-claim-vni-{l2vpn.identifier}")

        gone(self.api.vpn.l2vpn_terminations, "L2VPN termination(s)", unclaim_sap)
        gone(self.api.ipam.vlans, "VLAN(s)")
        gone(self.api.vpn.l2vpns, "L2VPN(s)", unclaim_vni)
        gone(self.api.dcim.cables, "cable(s)")
        devices = objects(self.api.dcim.devices)
        device_ids = {d.id for d in devices}
        link_ips = [
            ip
            for ip in objects(self.api.ipam.ip_addresses)
            if getattr(ip, "role", None) is None or getattr(ip.role, "value", None) != "loopback"
        ]
        for ip in link_ips:
            ip.delete()
        if link_ips:
            released.append(f"{len(link_ips)} link address(es)")
        gone(self.api.ipam.prefixes, "link prefix(es)")
        freed = [
            i
            for i in objects(self.api.dcim.interfaces)
            if i.device.id not in device_ids and i.name != LOOPBACK_INTERFACE
        ]
        for iface in freed:
            self._reset_interface(iface)
        if freed:
            released.append(f"{len(freed)} interface(s) freed")
        for device in devices:
            for iface in self.api.dcim.interfaces.filter(device_id=device.id):
                holder = (iface.custom_fields or {}).get(CF_SUBSCRIPTION)
                if holder and holder != (device.custom_fields or {}).get(CF_SUBSCRIPTION):
                    raise AllocationError(
                        "inUse",
                        f"{device.name} cannot be released: {iface.name} is held by subscription {holder}",
                    )
            for ip in self.api.ipam.ip_addresses.filter(device_id=device.id):
                ip.delete()
            for iface in self.api.dcim.interfaces.filter(device_id=device.id):
                self.unclaim(f"nw-claim-if-{iface.id}")
            device.delete()
            released.append(f"device {device.name} with its interfaces and loopbacks")
        return released

    def release(self, sub: str) -> tuple[str, ...]:
        released = self._remove(lambda endpoint: self.by_sub(endpoint, sub))
        self.unclaim_held_by(f"{sub} ")
        return tuple(released)

    def rollback(self, key: str, sub: str) -> None:
        """Undo what one order item made before it failed (best effort, logged)."""
        try:
            self._remove(lambda endpoint: self.by_key(endpoint, key))
            self.unclaim_held_by(f"{sub} {key}")
        except Exception:
            log.exception("rollback of a failed allocation left objects behind", extra={"key": key})


def _marker(key: str) -> str:
    """Slug of the tag that says an allocation for ``key`` was started."""
    return "nw-alloc-" + hashlib.sha1(key.encode()).hexdigest()[:20]


def _natural(name: str) -> tuple[Any, ...]:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


class NetBoxStore:
    """The ResourceStore port on NetBox; each call in a worker thread."""

    name = "netbox"

    def __init__(self, url: str, token: str, *, timeout: float = 10.0, retries: int = 3) -> None:
        self._nb = _NetBox(url, token, timeout, retries)

    @classmethod
    def from_settings(cls, settings: InventorySettings) -> NetBoxStore:
        if not settings.netbox_url or settings.netbox_token is None:
            raise ValueError(
                "NETWEAVE_INVENTORY_NETBOX_URL and NETWEAVE_INVENTORY_NETBOX_TOKEN are required "
                "when NETWEAVE_INVENTORY_STORE=netbox"
            )
        return cls(
            settings.netbox_url,
            settings.netbox_token.get_secret_value(),
            timeout=settings.netbox_timeout_seconds,
            retries=settings.netbox_retries,
        )

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args)
        except AllocationError:
            raise
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise StoreUnavailable(f"NetBox at {self._nb.url} unreachable: {type(exc).__name__}") from exc
        except pynetbox.RequestError as exc:
            status = getattr(getattr(exc, "req", None), "status_code", 0)
            if status >= 500 or status in (401, 403):
                raise StoreUnavailable(f"NetBox answered {status}: {_error_text(exc)[:200]}") from exc
            raise AllocationError("storeRefused", f"NetBox refused: {_error_text(exc)[:300]}") from exc

    async def _allocate(self, fn: Callable[[str, str, Any], T], key: str, sub: str, req: Any) -> T:
        try:
            return await self._call(fn, key, sub, req)
        except (AllocationError, StoreUnavailable):
            await asyncio.to_thread(self._nb.rollback, key, sub)
            raise

    async def ping(self) -> None:
        await self._call(self._nb.ping)

    async def seed(self, spec: SeedSpec) -> list[str]:
        return await self._call(self._nb.seed, spec)

    async def allocate_node(self, key: str, subscription_id: str, req: NodeRequest) -> NodeResources:
        return await self._allocate(self._nb.allocate_node, key, subscription_id, req)

    async def allocate_port(self, key: str, subscription_id: str, req: PortRequest) -> PortResources:
        return await self._allocate(self._nb.allocate_port, key, subscription_id, req)

    async def allocate_core_link(
        self, key: str, subscription_id: str, req: CoreLinkRequest
    ) -> CoreLinkResources:
        return await self._allocate(self._nb.allocate_core_link, key, subscription_id, req)

    async def allocate_circuit(self, key: str, subscription_id: str, req: CircuitRequest) -> CircuitResources:
        return await self._allocate(self._nb.allocate_circuit, key, subscription_id, req)

    async def modify_node(self, key: str, subscription_id: str, req: NodeRequest) -> NodeResources:
        return await self._call(self._nb.modify_node, key, subscription_id, req)

    async def modify_port(self, key: str, subscription_id: str, req: PortRequest) -> PortResources:
        return await self._call(self._nb.modify_port, key, subscription_id, req)

    async def modify_core_link(
        self, key: str, subscription_id: str, req: CoreLinkRequest
    ) -> CoreLinkResources:
        return await self._call(self._nb.modify_core_link, key, subscription_id, req)

    async def modify_circuit(self, key: str, subscription_id: str, req: CircuitRequest) -> CircuitResources:
        return await self._call(self._nb.modify_circuit, key, subscription_id, req)

    async def release(self, subscription_id: str) -> tuple[str, ...]:
        return await self._call(self._nb.release, subscription_id)
