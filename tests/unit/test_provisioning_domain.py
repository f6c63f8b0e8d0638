"""Intents: what the network should carry for each subscription."""

from __future__ import annotations

from netweave.contracts.resources import CircuitResources, ObjectRef, SapResources
from netweave.provisioner.domain.intent import CircuitIntent, configuration, intent_for, isis_net


def test_the_isis_net_is_derived_from_the_loopback() -> None:
    assert isis_net("10.0.127.1/32") == "49.0001.0100.0012.7001.00"
    assert isis_net("10.0.127.12/32") == "49.0001.0100.0012.7012.00"


def test_a_circuit_is_vxlan_between_the_pe_loopbacks() -> None:
    res = CircuitResources(
        l2vpn_name="L2P2P-x",
        l2vpn=ObjectRef(id=1),
        l2vpn_type="vpws",
        vni=10001,
        speed_mbps=10_000,
        saps=(
            SapResources(
                port_subscription_id="a",
                device_name="ams-pe",
                interface_name="eth3",
                vlan=None,
                loopback_v4="10.0.127.1/32",
                loopback_v6="fc00::1/128",
            ),
            SapResources(
                port_subscription_id="b",
                device_name="lon-pe",
                interface_name="eth3",
                vlan=100,
                loopback_v4="10.0.127.3/32",
                loopback_v6="fc00::3/128",
            ),
        ),
    )
    intent = intent_for(res)
    assert isinstance(intent, CircuitIntent)
    config = configuration(intent)
    assert config["ams-pe"]["vxlan 10001"]["remotes"] == ["10.0.127.3"]
    assert config["lon-pe"]["vxlan 10001"]["attachments"] == ["eth3.100"]
    assert config["ams-pe"]["vxlan 10001"]["local"] == "10.0.127.1"
