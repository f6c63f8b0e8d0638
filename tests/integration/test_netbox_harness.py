"""The NetBox harness gives tests a real, token-protected NetBox that resets quickly.

The ``netbox`` and ``netbox_clean`` fixtures come from tests/fixtures/netbox.py (imported by
tests/conftest.py).
"""

from __future__ import annotations

import re
import time

import httpx
import pytest

from netweave.cli.harness.netbox import NETBOX_VERSION, NetBoxInstance

pytestmark = pytest.mark.netbox


def _create_site(instance: NetBoxInstance, slug: str) -> dict[str, object]:
    with instance.client() as client:
        response = client.post(
            "/api/dcim/sites/", json={"name": slug.title(), "slug": slug, "status": "active"}
        )
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


def _sites_with_slug(instance: NetBoxInstance, slug: str) -> int:
    with instance.client() as client:
        response = client.get("/api/dcim/sites/", params={"slug": slug})
    assert response.status_code == 200, response.text
    count: int = response.json()["count"]
    return count


def test_status_answers_with_the_token(netbox: NetBoxInstance) -> None:
    with netbox.client() as client:
        response = client.get("/api/status/")

    assert response.status_code == 200, response.text
    assert response.json()["netbox-version"].startswith(NETBOX_VERSION)


def test_api_refuses_a_request_without_token(netbox: NetBoxInstance) -> None:
    response = httpx.get(f"{netbox.url}/api/status/", headers={"Accept": "application/json"})

    assert response.status_code in {401, 403}


def test_api_refuses_a_wrong_token(netbox: NetBoxInstance) -> None:
    key = netbox.token.split(".", 1)[0]
    headers = {"Authorization": f"Bearer {key}.{'x' * 40}", "Accept": "application/json"}

    response = httpx.get(f"{netbox.url}/api/dcim/sites/", headers=headers)

    assert response.status_code in {401, 403}


def test_a_site_created_through_the_api_reads_back(netbox_clean: NetBoxInstance) -> None:
    created = _create_site(netbox_clean, "harness-site")

    with netbox_clean.client() as client:
        response = client.get(f"/api/dcim/sites/{created['id']}/")

    assert response.status_code == 200
    assert response.json()["slug"] == "harness-site"
    assert response.json()["status"]["value"] == "active"


def test_reset_forgets_what_was_created_and_keeps_the_token(netbox_clean: NetBoxInstance) -> None:
    _create_site(netbox_clean, "forgotten-site")
    assert _sites_with_slug(netbox_clean, "forgotten-site") == 1

    started = time.monotonic()
    netbox_clean.reset()
    elapsed = time.monotonic() - started

    assert _sites_with_slug(netbox_clean, "forgotten-site") == 0
    assert elapsed < 10, f"reset took {elapsed:.1f}s"


def test_the_ui_login_page_renders_with_its_static_files(netbox: NetBoxInstance) -> None:
    page = httpx.get(f"{netbox.url}/login/")
    assert page.status_code == 200
    stylesheet = re.search(r'href="(/static/[^"]+\.css)[^"]*"', page.text)
    assert stylesheet, "the login page links no stylesheet"

    css = httpx.get(f"{netbox.url}{stylesheet.group(1)}")

    assert css.status_code == 200
    assert len(css.content) > 1000


def test_the_documented_credentials_log_in_to_the_ui(netbox: NetBoxInstance) -> None:
    with httpx.Client(base_url=netbox.url) as browser:
        form = browser.get("/login/")
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert csrf, "the login form has no CSRF token"
        response = browser.post(
            "/login/",
            data={
                "csrfmiddlewaretoken": csrf.group(1),
                "username": netbox.username,
                "password": netbox.password,
            },
            headers={"Referer": f"{netbox.url}/login/"},
        )

    assert response.status_code == 302, response.text[:500]
    assert "/login" not in response.headers["location"]
