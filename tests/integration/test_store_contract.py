"""One contract, every resource store: same inputs, same allocations, same refusals.

Runs against the built-in store on SQLite and on PostgreSQL, and against a real NetBox.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import pytest

from netweave.contracts.resources import CircuitResources, NodeResources, PortResources
from netweave.inventory.adapters.builtin_store import BuiltinStore
from netweave.inventory.adapters.db import inbox, outbox
from netweave.inventory.app import MIGRATIONS
from netweave.inventory.domain.errors import AllocationError
from netweave.inventory.domain.requests import (
    CircuitRequest,
    CoreLinkRequest,
    NodeRequest,
    PortRequest,
    SapRequest,
)
from netweave.inventory.domain.seed import DEFAULT_SEED
from netweave.inventory.ports import ResourceStore
from netweave.runtime.db import Database, upgrade
from netweave.runtime.outbox import UnitOfWork

T = TypeVar("T")
Run = Callable[[Callable[[ResourceStore], Awaitable[T]]], Awaitable[T]]


class StoreUnderTest:
    """Runs a step against a store in its own transaction, as a handler would."""

    def __init__(self, run: Callable[[Callable[[ResourceStore], Awaitable[Any]]], Awaitable[Any]]) -> None:
        self._run = run

    async def __call__(self, step: Callable[[ResourceStore], Awaitable[T]]) -> T:
        return await self._run(step)  # type: ignore[no-any-return]


async def _builtin(url: str) -> tuple[StoreUnderTest, Database]:
    await upgrade(MIGRATIONS, url)
    db = Database(url)

    async def run(step: Callable[[ResourceStore], Awaitable[Any]]) -> Any:
        async with UnitOfWork(db, inbox, outbox) as uow:
            return await step(BuiltinStore(uow.session))

    return StoreUnderTest(run), db


@pytest.fixture(params=["builtin-sqlite", "builtin-postgres", "netbox"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StoreUnderTest]:
    if request.param == "netbox":
        netbox_store = request.getfixturevalue("netbox_store")

        async def run(step: Callable[[ResourceStore], Awaitable[Any]]) -> Any:
            return await step(netbox_store)

        under_test = StoreUnderTest(run)
        await under_test(lambda s: s.seed(DEFAULT_SEED))
        yield under_test
        return
    fixture = "sqlite_database" if request.param == "builtin-sqlite" else "postgres_database"
    under_test, db = await _builtin(request.getfixturevalue(fixture))
    await under_test(lambda s: s.seed(DEFAULT_SEED))
    try:
        yield under_test
    finally:
        await db.dispose()


def sid() -> str:
    return str(uuid.uuid4())


def node_req(name: str, role: str = "PE", site: str = "ams") -> NodeRequest:
    return NodeRequest(name, role, site, "FRR", "frr-router", f"NODE {name}")


async def add_node(store: StoreUnderTest, name: str, sub: str | None = None) -> tuple[str, NodeResources]:
    sub = sub or sid()
    res = await store(lambda s: s.allocate_node(f"o/{name}", sub, node_req(name)))
    return sub, res


def port_req(
    node_sub: str, interface: str = "eth3", mode: str = "untagged", speed: int = 10_000
) -> PortRequest:
    return PortRequest(node_sub, interface, speed, f"PORT x acme {interface}", mode, 1500, True)


async def add_port(
    store: StoreUnderTest, node_sub: str, interface: str = "eth3", mode: str = "untagged"
) -> tuple[str, PortResources]:
    sub = sid()
    res = await store(lambda s: s.allocate_port(f"o/{sub}", sub, port_req(node_sub, interface, mode)))
    return sub, res


async def _release(s: ResourceStore, *, sub: str) -> tuple[str, ...]:
    return await s.release(sub)


async def refusal(store: StoreUnderTest, step: Callable[[ResourceStore], Awaitable[Any]]) -> AllocationError:
    with pytest.raises(AllocationError) as info:
        await store(step)
    return info.value


async def test_seeding_twice_creates_nothing_the_second_time(store: StoreUnderTest) -> None:
    assert await store(lambda s: s.seed(DEFAULT_SEED)) == []


async def test_a_node_gets_its_device_interfaces_and_the_next_free_loopbacks(store: StoreUnderTest) -> None:
    _, first = await add_node(store, "ams-pe")
    _, second = await add_node(store, "lon-pe")
    assert first.loopback_v4 == "10.0.127.1/32"
    assert first.loopback_v6 == "fc00:0:0:127::1/128"
    assert second.loopback_v4 == "10.0.127.2/32"
    assert first.interfaces[:3] == ("eth1", "eth2", "eth3")
    assert len(first.interfaces) == 14
    assert first.site == "ams"
    assert first.device_name == "ams-pe"


async def test_allocating_again_with_the_same_key_finds_what_was_made(store: StoreUnderTest) -> None:
    sub = sid()
    first = await store(lambda s: s.allocate_node("order/item", sub, node_req("par-p", "P", "par")))
    again = await store(lambda s: s.allocate_node("order/item", sub, node_req("par-p", "P", "par")))
    assert again == first
    _, next_node = await add_node(store, "lon-pe")
    assert next_node.loopback_v4 == "10.0.127.2/32", "the redelivery took no second address"


async def test_a_device_name_is_taken_once(store: StoreUnderTest) -> None:
    await add_node(store, "ams-pe")
    err = await refusal(store, lambda s: s.allocate_node("other/key", sid(), node_req("ams-pe")))
    assert err.code == "nodeNameTaken"


async def test_twenty_concurrent_nodes_get_twenty_distinct_loopbacks(store: StoreUnderTest) -> None:
    results = await asyncio.gather(*(add_node(store, f"r{i:02d}-pe") for i in range(20)))
    loopbacks = {res.loopback_v4 for _, res in results}
    assert len(loopbacks) == 20
    assert loopbacks == {f"10.0.127.{i}/32" for i in range(1, 21)}


async def test_a_port_takes_its_interface_with_the_description(store: StoreUnderTest) -> None:
    node_sub, node = await add_node(store, "ams-pe")
    _, port = await add_port(store, node_sub)
    assert (port.device_name, port.interface_name, port.speed_mbps) == ("ams-pe", "eth3", 10_000)
    assert port.description == "PORT x acme eth3"
    assert port.loopback_v4 == node.loopback_v4
    assert port.node_subscription_id == node_sub


async def test_a_port_refuses_what_the_interface_cannot_be(store: StoreUnderTest) -> None:
    node_sub, _ = await add_node(store, "ams-pe")
    err = await refusal(store, lambda s: s.allocate_port("k1", sid(), port_req(node_sub, "eth99")))
    assert err.code == "unknownInterface"
    assert "eth1" in err.reason
    err = await refusal(
        store, lambda s: s.allocate_port("k2", sid(), port_req(node_sub, "eth3", speed=100_000))
    )
    assert err.code == "speedMismatch"
    err = await refusal(store, lambda s: s.allocate_port("k3", sid(), port_req(sid(), "eth3")))
    assert err.code == "unknownNode"


async def test_two_orders_for_the_same_interface_one_wins_the_other_fails_with_a_reason(
    store: StoreUnderTest,
) -> None:
    node_sub, _ = await add_node(store, "ams-pe")
    outcomes = await asyncio.gather(
        add_port(store, node_sub, "eth5"), add_port(store, node_sub, "eth5"), return_exceptions=True
    )
    errors = [o for o in outcomes if isinstance(o, AllocationError)]
    assert len(errors) == 1, outcomes
    assert errors[0].code == "interfaceInUse"
    assert "ams-pe:eth5" in errors[0].reason


async def test_a_core_link_gets_a_31_and_a_127_one_address_per_side(store: StoreUnderTest) -> None:
    a_sub, a = await add_node(store, "ams-pe")
    b_sub, _ = await add_node(store, "par-p")
    req = CoreLinkRequest(a_sub, "eth1", b_sub, "eth2", 10, 10_000, "CORE x noc backbone")
    link = await store(lambda s: s.allocate_core_link("o/l1", sid(), req))
    assert link.ipv4_prefix == "10.0.10.0/31"
    assert (link.a.ipv4, link.b.ipv4) == ("10.0.10.0/31", "10.0.10.1/31")
    assert (link.a.ipv6, link.b.ipv6) == ("fc00:0:0:10::/127", "fc00:0:0:10::1/127")
    assert link.isis_metric == 10
    assert link.a.loopback_v4 == a.loopback_v4
    c_sub, _ = await add_node(store, "lon-pe")
    req2 = CoreLinkRequest(b_sub, "eth1", c_sub, "eth2", 20, 10_000, "CORE y noc backbone")
    link2 = await store(lambda s: s.allocate_core_link("o/l2", sid(), req2))
    assert link2.ipv4_prefix == "10.0.10.2/31"
    err = await refusal(store, lambda s: s.allocate_core_link("o/l3", sid(), req))
    assert err.code == "interfaceInUse"


async def test_a_circuit_gets_a_vni_and_a_vlan_per_tagged_sap(store: StoreUnderTest) -> None:
    a_sub, _ = await add_node(store, "ams-pe")
    b_sub, _ = await add_node(store, "lon-pe")
    pa, _ = await add_port(store, a_sub, "eth3")
    pb, _ = await add_port(store, b_sub, "eth4", mode="tagged")
    req = CircuitRequest("L2P2P-1", "vpws", 10_000, (SapRequest(pa, None), SapRequest(pb, None)), "L2P2P x")
    circuit = await store(lambda s: s.allocate_circuit("o/c1", sid(), req))
    assert isinstance(circuit, CircuitResources)
    assert circuit.vni == 10001
    assert [(s.device_name, s.interface_name, s.vlan) for s in circuit.saps] == [
        ("ams-pe", "eth3", None),
        ("lon-pe", "eth4", 100),
    ]
    again = CircuitRequest("L2P2P-2", "vpws", 10_000, (SapRequest(pa, None), SapRequest(pb, 7)), "L2P2P y")
    err = await refusal(store, lambda s: s.allocate_circuit("o/c2", sid(), again))
    assert err.code == "portInUse"
    vlan_taken = CircuitRequest("L2P2P-3", "vpws", 10_000, (SapRequest(pb, 100), SapRequest(pb, 200)), "z")
    err = await refusal(store, lambda s: s.allocate_circuit("o/c3", sid(), vlan_taken))
    assert err.code == "vlanInUse"
    tagged_vlan = CircuitRequest("L2P2P-4", "vpws", 10_000, (SapRequest(pa, 5), SapRequest(pb, None)), "w")
    err = await refusal(store, lambda s: s.allocate_circuit("o/c4", sid(), tagged_vlan))
    assert err.code == "vlanOnUntaggedPort"


async def test_concurrent_circuits_get_distinct_vnis_and_vlans(store: StoreUnderTest) -> None:
    a_sub, _ = await add_node(store, "ams-pe")
    b_sub, _ = await add_node(store, "lon-pe")
    pa, _ = await add_port(store, a_sub, "eth4", mode="tagged")
    pb, _ = await add_port(store, b_sub, "eth4", mode="tagged")

    def circuit(n: int) -> Callable[[ResourceStore], Awaitable[CircuitResources]]:
        req = CircuitRequest(f"L2P2P-{n}", "vpws", 10_000, (SapRequest(pa, None), SapRequest(pb, None)), "c")
        return lambda s: s.allocate_circuit(f"o/c{n}", sid(), req)

    circuits = await asyncio.gather(*(store(circuit(n)) for n in range(8)))
    assert len({c.vni for c in circuits}) == 8
    assert len({c.saps[0].vlan for c in circuits}) == 8
    assert len({c.saps[1].vlan for c in circuits}) == 8


async def test_two_circuits_on_one_untagged_port_at_once_one_wins(store: StoreUnderTest) -> None:
    a_sub, _ = await add_node(store, "ams-pe")
    b_sub, _ = await add_node(store, "lon-pe")
    pa, _ = await add_port(store, a_sub, "eth3")
    pb, _ = await add_port(store, b_sub, "eth4", mode="tagged")
    saps = (SapRequest(pa, None), SapRequest(pb, None))
    first = CircuitRequest("L2P2P-1", "vpws", 10_000, saps, "c1")
    second = CircuitRequest("L2P2P-2", "vpws", 10_000, saps, "c2")
    outcomes = await asyncio.gather(
        store(lambda s: s.allocate_circuit("o/c1", sid(), first)),
        store(lambda s: s.allocate_circuit("o/c2", sid(), second)),
        return_exceptions=True,
    )
    errors = [o for o in outcomes if isinstance(o, AllocationError)]
    assert len(errors) == 1, outcomes
    assert errors[0].code == "portInUse"


async def test_releasing_everything_gives_every_resource_back(store: StoreUnderTest) -> None:
    a_sub, _ = await add_node(store, "ams-pe")
    b_sub, _ = await add_node(store, "lon-pe")
    link_sub = sid()
    await store(
        lambda s: s.allocate_core_link(
            "o/l", link_sub, CoreLinkRequest(a_sub, "eth1", b_sub, "eth2", 10, 10_000, "CORE")
        )
    )
    pa, _ = await add_port(store, a_sub)
    pb, _ = await add_port(store, b_sub)
    circuit_sub = sid()
    req = CircuitRequest("L2P2P-r", "vpws", 10_000, (SapRequest(pa, None), SapRequest(pb, None)), "x")
    await store(lambda s: s.allocate_circuit("o/c", circuit_sub, req))
    err = await refusal(store, lambda s: s.release(a_sub))
    assert err.code == "inUse"
    for sub in (circuit_sub, pa, pb, link_sub, a_sub, b_sub):
        released = await store(partial(_release, sub=sub))
        assert released, f"{sub} released nothing"
    assert await store(lambda s: s.release(a_sub)) == ()
    # Everything is back: the same orders get the same first resources again.
    a2, node = await add_node(store, "ams-pe")
    assert node.loopback_v4 == "10.0.127.1/32"
    b2, _ = await add_node(store, "lon-pe")
    link = await store(
        lambda s: s.allocate_core_link(
            "o/l2", sid(), CoreLinkRequest(a2, "eth1", b2, "eth2", 10, 10_000, "CORE")
        )
    )
    assert link.ipv4_prefix == "10.0.10.0/31"
    pa2, _ = await add_port(store, a2)
    pb2, _ = await add_port(store, b2)
    req2 = CircuitRequest("L2P2P-r2", "vpws", 10_000, (SapRequest(pa2, None), SapRequest(pb2, None)), "x")
    assert (await store(lambda s: s.allocate_circuit("o/c2", sid(), req2))).vni == 10001


async def test_modifying_a_port_changes_its_description_not_its_speed(store: StoreUnderTest) -> None:
    node_sub, _ = await add_node(store, "ams-pe")
    port_sub, _ = await add_port(store, node_sub)
    changed = PortRequest(node_sub, "eth3", 10_000, "PORT x acme new-peer", "untagged", 9000, False)
    port = await store(lambda s: s.modify_port("o2/m", port_sub, changed))
    assert (port.description, port.mtu, port.enabled) == ("PORT x acme new-peer", 9000, False)
    faster = PortRequest(node_sub, "eth3", 100_000, "PORT", "untagged", 1500, True)
    err = await refusal(store, lambda s: s.modify_port("o3/m", port_sub, faster))
    assert err.code == "speedMismatch"


async def test_modifying_a_node_keeps_its_resources_and_refuses_a_new_identity(store: StoreUnderTest) -> None:
    sub, node = await add_node(store, "ams-pe")
    again = await store(
        lambda s: s.modify_node(
            "o2/m", sub, NodeRequest("ams-pe", "PE", "ams", "FRR", "frr-router", "NODE re-provisioned")
        )
    )
    assert again == node
    err = await refusal(store, lambda s: s.modify_node("o3/m", sub, node_req("ams-pe2")))
    assert err.code == "notModifiable"
    assert "name" in err.reason


async def test_modifying_a_core_link_changes_its_metric(store: StoreUnderTest) -> None:
    a_sub, _ = await add_node(store, "ams-pe")
    b_sub, _ = await add_node(store, "par-p")
    link_sub = sid()
    req = CoreLinkRequest(a_sub, "eth1", b_sub, "eth2", 10, 10_000, "CORE")
    before = await store(lambda s: s.allocate_core_link("o/l", link_sub, req))
    heavier = CoreLinkRequest(a_sub, "eth1", b_sub, "eth2", 300, 10_000, "CORE")
    after = await store(lambda s: s.modify_core_link("o2/l", link_sub, heavier))
    assert after.isis_metric == 300
    assert (after.a.ipv4, after.b.ipv4) == (before.a.ipv4, before.b.ipv4)


async def test_an_l2vpn_gains_and_loses_saps_on_modify(store: StoreUnderTest) -> None:
    a_sub, _ = await add_node(store, "ams-pe")
    b_sub, _ = await add_node(store, "lon-pe")
    pa, _ = await add_port(store, a_sub, "eth4", mode="tagged")
    pb, _ = await add_port(store, b_sub, "eth4", mode="tagged")
    pc, _ = await add_port(store, b_sub, "eth5")
    vpn_sub = sid()
    two = CircuitRequest("L2VPN-m", "vxlan-evpn", 1000, (SapRequest(pa, 10), SapRequest(pb, 20)), "L2VPN")
    first = await store(lambda s: s.allocate_circuit("o/v", vpn_sub, two))
    three = CircuitRequest(
        "L2VPN-m", "vxlan-evpn", 2000, (SapRequest(pa, 10), SapRequest(pb, 20), SapRequest(pc, None)), "L2VPN"
    )
    grown = await store(lambda s: s.modify_circuit("o2/v", vpn_sub, three))
    assert {(x.interface_name, x.device_name, x.vlan) for x in grown.saps} == {
        ("eth4", "ams-pe", 10),
        ("eth4", "lon-pe", 20),
        ("eth5", "lon-pe", None),
    }
    assert grown.vni == first.vni
    assert grown.speed_mbps == 2000
    shrunk_req = CircuitRequest(
        "L2VPN-m", "vxlan-evpn", 2000, (SapRequest(pa, 10), SapRequest(pc, None)), "L2VPN"
    )
    shrunk = await store(lambda s: s.modify_circuit("o3/v", vpn_sub, shrunk_req))
    assert {(x.device_name, x.interface_name) for x in shrunk.saps} == {
        ("ams-pe", "eth4"),
        ("lon-pe", "eth5"),
    }
    # The SAP given back frees its VLAN: another circuit can take VLAN 20 on that port.
    other = CircuitRequest("L2VPN-o", "vxlan-evpn", 1000, (SapRequest(pb, 20), SapRequest(pa, 11)), "x")
    assert {x.vlan for x in (await store(lambda s: s.allocate_circuit("o4/v", sid(), other))).saps} == {
        20,
        11,
    }
