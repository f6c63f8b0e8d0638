"""The web console in a real headless Chromium, on a real stack started by ``netweave up``.

What a user sees: the dashboard, an L2 point-to-point ordered through the form and
followed live to completed, its subscription's dependency graph, refusals next to the
field they concern, and the subscriptions that depend on ams-pe. Every page is
screenshotted to test-artifacts/screenshots/ and must log no JavaScript error.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from netweave.cli.scenario import backbone_order, order_item, subscription_of
from tests.e2e.conftest import ORDERS, RunningStack, complete_order, stack_up
from tests.fixtures.prereq import missing

pytestmark = [pytest.mark.e2e]

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parents[2] / "test-artifacts" / "screenshots"
L2P2P = "L2 point-to-point 10G unprotected"


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium; installed with apt-get on a fresh CI machine where we are root."""
    if not CHROMIUM.exists() and shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        wait = ["-o", "DPkg::Lock::Timeout=600"]  # another apt-get may hold the lock
        subprocess.run(["apt-get", *wait, "update"], check=False, env=env, timeout=900)
        subprocess.run(["apt-get", *wait, "install", "-y", "chromium"], check=False, env=env, timeout=1800)
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is missing: apt-get install -y chromium (as root)")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed (it is in the dev dependency group)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(chromium), headless=True)
        try:
            yield launched
        finally:
            launched.close()


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} never answered 200")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningStack, dict[str, str]]]:
    """``netweave up`` (console included), seeded, with the demo's backbone ordered."""
    with stack_up(tmp_path_factory.mktemp("console")) as stack:
        _wait_http(f"{stack.console}/health/ready")
        httpx.post(f"{stack.inventory}/inventory/seed", timeout=30).raise_for_status()
        with httpx.Client(base_url=stack.order_api, timeout=30) as client:
            backbone = complete_order(client, backbone_order())
        subs = {
            k: subscription_of(backbone, k) for k in ("ams-pe", "par-p", "lon-pe", "host1-port", "host2-port")
        }
        yield stack, subs


class Page:
    """A browser tab on the console that records every console error and uncaught exception."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        self.opened = False
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console error: {message.text}")

    def open(self, route: str) -> Any:
        """Go to a route and wait until it has rendered (also when only the fragment changes)."""
        before = (
            self.page.evaluate("document.getElementById('main')?.dataset.ready || ''") if self.opened else ""
        )
        self.page.goto(f"{self.base}/#{route}")
        self.page.locator(f"#main[data-ready]:not([data-ready='{before}'])").wait_for(state="attached")
        self.opened = True
        return self.page

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def tab(browser: Any, lab: tuple[RunningStack, dict[str, str]]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = Page(context.new_page(), lab[0].console)
    page.page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()
    assert page.errors == [], "\n".join(page.errors)


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def _sap(page: Any, number: int) -> Any:
    return page.get_by_role("group", name=f"SAP {number}", exact=True)


def _fill_l2p2p(page: Any, customer: str, port_a: str, port_b: str) -> None:
    page.get_by_label("Product", exact=True).select_option(label=L2P2P)
    expect = _expect()
    expect(page.get_by_role("heading", name=L2P2P)).to_be_visible()
    page.get_by_label("Customer").fill(customer)
    _sap(page, 1).get_by_label("Port").select_option(label=port_a)
    _sap(page, 2).get_by_label("Port").select_option(label=port_b)


def test_the_dashboard_shows_health_orders_and_subscriptions(tab: Page) -> None:
    page = tab.open("/")
    expect = _expect()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    health = page.get_by_test_id("health")
    for component in ("order-api", "inventory", "provisioner", "subscriptions", "bus", "console"):
        expect(health.get_by_role("listitem").filter(has_text=component).first).to_contain_text("ok")
    orders = page.get_by_role("region", name="Orders by state")
    expect(orders.get_by_role("row", name=re.compile(r"completed\s+\d+"))).to_be_visible()
    by_product = page.get_by_role("region", name="Subscriptions by product")
    expect(by_product.get_by_role("row", name=re.compile(r"node-frr\s+3"))).to_be_visible()
    expect(page.get_by_test_id("dead-letters")).to_have_text("0")
    tab.shot("dashboard")


def test_the_catalog_page_lists_products_fixed_inputs_and_blocks(tab: Page) -> None:
    page = tab.open("/catalog")
    expect = _expect()
    section = page.locator("[data-type=L2PointToPoint]")
    expect(section.get_by_role("row", name=re.compile("l2-p2p-10g-protected"))).to_contain_text(
        "protection_type=protected"
    )
    expect(section).to_contain_text("Product block VirtualCircuitBlock")
    expect(page.locator("[data-type=Port]")).to_contain_text("Uses: Node.")
    tab.shot("catalog")


def test_an_l2_point_to_point_ordered_in_the_form_completes_live(
    tab: Page, lab: tuple[RunningStack, dict[str, str]]
) -> None:
    stack, _ = lab
    page = tab.open("/new")
    expect = _expect()
    _fill_l2p2p(page, "globex", "ams-pe:eth3", "lon-pe:eth3")
    tab.shot("new-order")
    # A slow change on ams-pe keeps the order in progress long enough to watch it move.
    httpx.post(
        f"{stack.provisioner}/provisioning/sim/devices/ams-pe/delays", json={"seconds": 4, "times": 1}
    ).raise_for_status()
    page.evaluate("window.__sameDocument = true")
    page.get_by_role("button", name="Submit the order").click()
    expect(page).to_have_url(re.compile(r"#/orders/[0-9a-f-]{36}$"))
    state = page.get_by_test_id("order-state")
    expect(state).to_have_text("inProgress", timeout=15_000)
    expect(page.get_by_test_id("live")).to_have_text("live")
    expect(state).to_have_text("completed", timeout=60_000)
    item = page.locator("[data-item='1']")
    expect(item.get_by_test_id("item-state")).to_have_text("completed")
    expect(item.locator(".timeline li[data-state=inProgress]")).to_have_count(1)
    expect(item.locator(".timeline li[data-state=completed]")).to_have_count(1)
    expect(page.get_by_test_id("order-timeline").locator("li[data-state=completed]")).to_have_count(1)
    expect(page.get_by_role("button", name="Cancel order")).to_be_disabled()
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    tab.shot("order")

    item.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        re.compile(r"VNI \d+ ams-pe:eth3 ⇄ lon-pe:eth3")
    )
    uses = page.get_by_test_id("uses")
    for name in ("ams-pe:eth3", "lon-pe:eth3", "ams-pe", "lon-pe"):
        expect(uses.get_by_role("link", name=name, exact=True)).to_be_visible()
    expect(page.get_by_test_id("used-by")).to_have_text("Nothing.")
    graph = page.get_by_test_id("graph")
    expect(graph).to_be_visible()
    expect(graph.locator("a.uses")).to_have_count(4)
    expect(graph.locator("a.self")).to_have_count(1)
    expect(graph.locator("path.edge")).to_have_count(4)
    expect(page.get_by_role("region", name="Event history")).to_contain_text("provisioning -> active")
    page.get_by_role("button", name="Validate").click()
    expect(page.get_by_test_id("action-message")).to_contain_text("Validation requested")
    tab.shot("subscription")

    # The other direction: the node's graph shows what uses it, down to the new circuit.
    uses.get_by_role("link", name="ams-pe", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("ams-pe")
    used_by = page.get_by_test_id("used-by")
    expect(used_by.get_by_role("link", name=re.compile(r"VNI \d+ ams-pe:eth3"))).to_be_visible()
    expect(used_by.get_by_role("link", name="ams-pe:eth3", exact=True)).to_be_visible()
    expect(page.get_by_test_id("graph").locator("a.used-by")).to_have_count(3)
    tab.shot("subscription-node")

    page.get_by_role("link", name="Orders", exact=True).click()
    expect(page.get_by_test_id("orders").get_by_role("row", name=re.compile("globex"))).to_contain_text(
        "completed"
    )
    tab.shot("orders")


def _port_order(node: str, interface: str) -> dict[str, Any]:
    item = order_item("port", "port-10g", {"node": node, "interface": interface, "description": "stale"})
    return {"relatedParty": [{"id": "noc", "role": "customer"}], "serviceOrderItem": [item]}


def _terminate_order(sub: str) -> dict[str, Any]:
    item = {
        "id": "gone",
        "action": "delete",
        "service": {"id": sub, "serviceSpecification": {"id": "port-10g"}},
    }
    return {"relatedParty": [{"id": "noc", "role": "customer"}], "serviceOrderItem": [item]}


def test_refusals_show_next_to_the_field_they_concern(
    tab: Page, lab: tuple[RunningStack, dict[str, str]]
) -> None:
    stack, subs = lab
    with httpx.Client(base_url=stack.order_api, timeout=30) as client:
        port = subscription_of(complete_order(client, _port_order(subs["ams-pe"], "eth7")), "port")
        page = tab.open("/new")
        expect = _expect()
        _fill_l2p2p(page, "initech", "ams-pe:eth7", "lon-pe:eth3")

        # Inline: the form's own rules, before anything is sent.
        vlan = _sap(page, 2).get_by_label("VLAN")
        vlan.fill("5000")
        vlan.press("Tab")
        expect(_sap(page, 2).locator("[data-error-for='saps.1.vlan']")).to_have_text(
            "VLAN must be at most 4094."
        )
        expect(vlan).to_have_attribute("aria-invalid", "true")
        vlan.fill("")
        vlan.press("Tab")
        expect(vlan).not_to_have_attribute("aria-invalid", "true")

        # The port chosen goes away while the form is open: the order API refuses, and
        # says why next to the SAP's port.
        complete_order(client, _terminate_order(port))
    page.get_by_role("button", name="Submit the order").click()
    error = _sap(page, 1).locator("[data-error-for='saps.0.port']")
    expect(error).to_contain_text(
        f"saps[0].port points at subscription {port}, which is terminated, not active"
    )
    expect(_sap(page, 1).get_by_label("Port")).to_be_focused()
    expect(page.get_by_test_id("form-errors")).to_be_empty()
    assert "#/new" in page.url
    tab.shot("new-order-refused")

    # A refusal about the order as a whole goes to the top.
    _sap(page, 1).get_by_label("Port").select_option(label="lon-pe:eth3")
    page.get_by_role("button", name="Submit the order").click()
    expect(page.get_by_test_id("form-errors")).to_contain_text("two SAPs on the same port and untagged")
    tab.shot("new-order-refused-top")


def test_the_subscriptions_page_finds_what_depends_on_ams_pe(tab: Page) -> None:
    page = tab.open("/subscriptions")
    expect = _expect()
    page.get_by_label("Uses (directly or not)").select_option(label="ams-pe (node-frr)")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"depends_on="))
    table = page.get_by_test_id("subscriptions")
    expect(table.get_by_role("link", name="ams-pe:eth3", exact=True)).to_be_visible()
    expect(table.get_by_role("link", name="ams-pe:eth1 ⇄ par-p:eth2", exact=True)).to_be_visible()
    expect(table.get_by_role("link", name="lon-pe:eth3", exact=True)).to_have_count(0)
    expect(table.get_by_role("link", name="par-p", exact=True)).to_have_count(0)
    tab.shot("subscriptions")

    page.get_by_label("Product").select_option("node-frr")
    page.get_by_label("Uses (directly or not)").select_option("")
    page.get_by_role("button", name="Filter").click()
    expect(table.get_by_role("row")).to_have_count(4)


def test_the_port_form_offers_the_free_interfaces_of_the_chosen_node(tab: Page) -> None:
    page = tab.open("/new?product=port-10g")
    expect = _expect()
    interface = page.get_by_label("Interface")
    expect(interface).to_contain_text("choose the node first")
    page.get_by_label("Node").select_option(label="ams-pe")
    # eth1 carries the core link to par-p and eth3 host1's port.
    offered = [o for o in interface.locator("option").all_inner_texts() if o.startswith("eth")]
    assert offered[:3] == ["eth2", "eth4", "eth5"], offered
    assert "eth1" not in offered
    assert "eth3" not in offered
    page.get_by_label("Node").select_option(label="par-p")
    expect(interface.locator("option", has_text=re.compile(r"^eth3$"))).to_have_count(1)
    tab.shot("new-port-order")


def test_the_order_form_works_from_the_keyboard_in_page_order(tab: Page) -> None:
    page = tab.open("/new?product=port-10g")
    expect = _expect()
    page.get_by_label("Customer").focus()
    page.keyboard.type("acme")
    page.keyboard.press("Tab")
    expect(page.get_by_label("External id")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#description")).to_be_focused()
    page.keyboard.press("Tab")
    node = page.get_by_label("Node")
    expect(node).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(node.locator("option:checked")).to_have_text("ams-pe")
    page.keyboard.press("Tab")
    interface = page.get_by_label("Interface")
    expect(interface).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(interface).to_have_value("eth2")
    # MTU has a default, so empty is fine; out of range is said as focus moves on, and blocks the submit.
    page.get_by_label("MTU").fill("")
    page.get_by_label("MTU").press("Tab")
    expect(page.locator("[data-error-for=mtu]")).to_have_text("")
    page.get_by_label("MTU").fill("100")
    page.get_by_label("MTU").press("Tab")
    expect(page.locator("[data-error-for=mtu]")).to_have_text("MTU must be at least 1280.")
    page.get_by_role("button", name="Submit the order").press("Enter")
    expect(page.get_by_label("MTU")).to_be_focused()


def test_modify_starts_from_the_subscription_page(
    tab: Page, lab: tuple[RunningStack, dict[str, str]]
) -> None:
    _, subs = lab
    page = tab.open(f"/subscriptions/{subs['host2-port']}")
    expect = _expect()
    page.get_by_role("link", name="Modify…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Modify lon-pe:eth3")
    expect(page.get_by_label("Node")).to_be_disabled()
    expect(page.get_by_label("Interface")).to_have_value("eth3")
    page.get_by_label("MTU").fill("9000")
    page.get_by_role("button", name="Submit the modify order").click()
    expect(page.get_by_test_id("order-state")).to_have_text("completed", timeout=60_000)
    tab.shot("modify-order")


def test_terminate_starts_from_the_subscription_page_and_says_why_when_refused(
    tab: Page, lab: tuple[RunningStack, dict[str, str]]
) -> None:
    stack, subs = lab
    # A router that live subscriptions use: the confirmation shows the order API's refusal.
    page = tab.open(f"/subscriptions/{subs['lon-pe']}")
    expect = _expect()
    confirm = page.get_by_role("group", name="Confirm termination")
    page.get_by_role("button", name="Terminate…").click()
    confirm.get_by_role("button", name="Keep it").click()
    expect(confirm).to_be_hidden()
    page.get_by_role("button", name="Terminate…").click()
    confirm.get_by_role("button", name="Yes, order the termination").click()
    expect(confirm.get_by_role("alert")).to_contain_text("cannot be deleted while 2 active subscription(s)")

    # A port nothing uses: the termination is an order, followed live to completion.
    with httpx.Client(base_url=stack.order_api, timeout=30) as client:
        port = subscription_of(complete_order(client, _port_order(subs["lon-pe"], "eth10")), "port")
    page = tab.open(f"/subscriptions/{port}")
    page.get_by_role("button", name="Terminate…").click()
    page.get_by_role("group", name="Confirm termination").get_by_role(
        "button", name="Yes, order the termination"
    ).click()
    expect(page.get_by_test_id("order-state")).to_have_text("completed", timeout=60_000)
    page = tab.open(f"/subscriptions/{port}")
    expect(page.get_by_role("button", name="Terminate…")).to_be_disabled()
    tab.shot("subscription-terminated")


def test_an_order_not_started_yet_is_cancelled_from_its_page(
    tab: Page, lab: tuple[RunningStack, dict[str, str]]
) -> None:
    stack, subs = lab
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    order = {**_port_order(subs["lon-pe"], "eth9"), "requestedStartDate": later, "externalId": "next-hour"}
    created = httpx.post(f"{stack.order_api}{ORDERS}", json=order, timeout=30)
    assert created.status_code == 201, created.text
    page = tab.open(f"/orders/{created.json()['id']}")
    expect = _expect()
    state = page.get_by_test_id("order-state")
    expect(state).to_have_text(re.compile("^(acknowledged|pending)$"))
    page.get_by_role("button", name="Cancel order").click()
    expect(state).to_have_text("cancelled", timeout=30_000)
    expect(page.get_by_role("button", name="Cancel order")).to_be_disabled()
    expect(page.get_by_test_id("order-timeline").locator("li[data-state=cancelled]")).to_have_count(1)
    tab.shot("order-cancelled")


def _wait_impacted(stack: RunningStack, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = httpx.get(
            f"{stack.subscriptions}/subscriptions", params={"impacted": "true"}, timeout=10
        ).json()
        if len(found) >= count:
            return
        time.sleep(0.3)
    raise AssertionError(f"fewer than {count} impacted subscriptions after {timeout}s")


def test_validate_finds_a_drift_and_the_console_shows_what_it_impacts(
    tab: Page, lab: tuple[RunningStack, dict[str, str]]
) -> None:
    stack, subs = lab
    httpx.post(
        f"{stack.provisioner}/provisioning/sim/devices/par-p/drift",
        json={"path": "router isis core net", "value": "49.0001.9999.9999.9999.00"},
    ).raise_for_status()
    page = tab.open(f"/subscriptions/{subs['par-p']}")
    expect = _expect()
    page.get_by_role("button", name="Validate").click()
    expect(page.get_by_test_id("action-message")).to_contain_text("Validation requested")
    _wait_impacted(stack, 2)

    page = tab.open("/")
    impacted = page.get_by_role("region", name="Impacted subscriptions")
    expect(impacted.get_by_role("link", name="ams-pe:eth1 ⇄ par-p:eth2", exact=True)).to_be_visible()
    expect(impacted.get_by_role("link", name="par-p:eth1 ⇄ lon-pe:eth2", exact=True)).to_be_visible()
    expect(impacted).to_contain_text("par-p")
    tab.shot("dashboard-impacted")

    page = tab.open(f"/subscriptions/{subs['par-p']}")
    expect(page.get_by_test_id("sync")).to_have_text("out of sync")
    expect(page.get_by_role("region", name="Last validation")).to_contain_text("router isis core net")
    graph = page.get_by_test_id("graph")
    expect(graph.locator("a.used-by.impacted")).to_have_count(2)
    expect(page.get_by_test_id("used-by").locator(".badge.impacted")).to_have_count(2)
    tab.shot("subscription-impacted")

    page = tab.open("/subscriptions?impacted=true")
    expect(page.get_by_test_id("subscriptions").locator("tbody tr")).to_have_count(2)
    tab.shot("subscriptions-impacted")
