"""Live choices for order forms and the dashboard's counts, computed from subscriptions.

Pure functions over the subscriptions read API's JSON: no I/O here.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from netweave.contracts.catalog import LifecycleStatus

Subscription = dict[str, Any]
# Not places to plug a customer or a link into.
_NOT_A_PORT = re.compile(r"^(lo\d*|system\d*|mgmt.*|management.*)$")
_DIGITS = re.compile(r"(\d+)")


def _natural(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in _DIGITS.split(name)]


def live(subs: Iterable[Subscription]) -> list[Subscription]:
    return [s for s in subs if s.get("status") != LifecycleStatus.TERMINATED.value]


def node_interfaces(node: Subscription) -> list[str]:
    """The interfaces the inventory reported for a node subscription."""
    resources = node.get("resources") or {}
    names = resources.get("interfaces") or []
    return sorted((str(n) for n in names if not _NOT_A_PORT.match(str(n))), key=_natural)


def interfaces_used(subs: Iterable[Subscription], node_id: str) -> set[str]:
    """Interfaces of ``node_id`` held by live port and core-link subscriptions.

    Read from the order inputs, which a subscription has from its first moment, and
    from its block, which the inventory fills in later.
    """
    used: set[str] = set()
    for sub in live(subs):
        inputs = sub.get("inputs") or {}
        block = sub.get("block") or {}
        if sub.get("product_type") == "Port":
            if inputs.get("node") == node_id and inputs.get("interface"):
                used.add(str(inputs["interface"]))
            if block.get("node") == node_id and block.get("interface_name"):
                used.add(str(block["interface_name"]))
        elif sub.get("product_type") == "CoreLink":
            for side in ("a", "b"):
                if inputs.get(f"{side}_node") == node_id and inputs.get(f"{side}_interface"):
                    used.add(str(inputs[f"{side}_interface"]))
            for port in block.get("ports") or []:
                if port.get("node") == node_id and port.get("interface_name"):
                    used.add(str(port["interface_name"]))
    return used


def free_ports(node: Subscription, subs: Iterable[Subscription], *, keep: str | None = None) -> list[str]:
    """A node's interfaces minus those ports and core links use.

    ``keep`` is a subscription being modified: what it holds stays on offer to it.
    """
    others = [s for s in subs if s.get("id") != keep]
    used = interfaces_used(others, str(node["id"]))
    return [name for name in node_interfaces(node) if name not in used]


def _node_names(subs: Iterable[Subscription]) -> dict[str, str]:
    return {
        str(s["id"]): str((s.get("block") or {}).get("node_name") or (s.get("inputs") or {}).get("node_name"))
        for s in subs
        if s.get("product_type") == "Node"
    }


def _end(node_names: dict[str, str], node_id: Any, name: Any, interface: Any) -> str:
    return f"{name or node_names.get(str(node_id), '?')}:{interface or '?'}"


def label(sub: Subscription, node_names: dict[str, str] | None = None) -> str:
    """How a person recognises a subscription: router, router:interface, or its two ends."""
    names = node_names or {}
    block = sub.get("block") or {}
    inputs = sub.get("inputs") or {}
    kind = sub.get("product_type")
    if kind == "Node":
        return str(block.get("node_name") or inputs.get("node_name") or sub["id"][:8])
    if kind == "Port":
        return _end(
            names,
            inputs.get("node"),
            block.get("node_name"),
            block.get("interface_name") or inputs.get("interface"),
        )
    if kind == "CoreLink":
        ports = block.get("ports") or []
        if ports:
            return " ⇄ ".join(
                _end(names, p.get("node"), p.get("node_name"), p.get("interface_name")) for p in ports
            )
        return " ⇄ ".join(
            _end(names, inputs.get(f"{s}_node"), None, inputs.get(f"{s}_interface")) for s in ("a", "b")
        )
    saps = block.get("saps") or []
    ends = " ⇄ ".join(f"{s.get('node_name') or '?'}:{s.get('interface_name') or '?'}" for s in saps)
    vni = block.get("vni")
    return f"VNI {vni} {ends}".strip() if vni else (ends or sub["id"][:8])


def labels(subs: list[Subscription]) -> dict[str, str]:
    names = _node_names(subs)
    return {str(s["id"]): label(s, names) for s in subs}


def port_speed(sub: Subscription) -> int | None:
    speed = (sub.get("block") or {}).get("speed_mbps")
    return int(speed) if isinstance(speed, int) else None


def reference_choices(
    subs: list[Subscription], product_type: str, *, min_speed_mbps: int | None = None
) -> list[dict[str, Any]]:
    """Subscriptions a form field may point at, the active ones first.

    Ports too slow for the product are left out. Subscriptions not active yet are
    offered with their status: the order API has the last word and says why.
    """
    names = _node_names(subs)
    found = []
    for sub in live(subs):
        if sub.get("product_type") != product_type:
            continue
        speed = port_speed(sub) if product_type == "Port" else None
        if min_speed_mbps is not None and speed is not None and speed < min_speed_mbps:
            continue
        found.append(
            {
                "id": sub["id"],
                "label": label(sub, names),
                "status": sub.get("status"),
                "customer": sub.get("customer_id"),
                "product_id": sub.get("product_id"),
                "speed_mbps": speed,
            }
        )
    found.sort(key=lambda c: (c["status"] != LifecycleStatus.ACTIVE.value, _natural(c["label"])))
    return found


def counts(subs: Iterable[Subscription], key: str) -> dict[str, int]:
    return dict(sorted(Counter(str(s.get(key)) for s in subs).items()))


def impacted(subs: Iterable[Subscription]) -> list[Subscription]:
    return [s for s in live(subs) if s.get("dependency_state") == "impacted"]
