"""The console's backend in process: it authenticates like the services and forwards credentials."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from netweave.console.app import create_app
from netweave.console.config import ConsoleSettings
from netweave.runtime.auth import AuthSettings


@pytest.fixture
def seen() -> list[httpx.Request]:
    return []


@pytest.fixture
def console(seen: list[httpx.Request]) -> Iterator[TestClient]:
    def order_api(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            refusal = {
                "code": "invalidCharacteristics",
                "reason": "Item item does not fit: saps.0.vlan: too big.",
                "details": [{"item": "item", "field": "saps.0.vlan", "problem": "too big"}],
            }
            return httpx.Response(400, json=refusal)
        return httpx.Response(200, json=[{"id": "o1", "state": "completed"}], headers={"X-Total-Count": "1"})

    keys = SecretStr(json.dumps({"secret-key": ["orders:read", "orders:write"]}))
    app = create_app(ConsoleSettings(auth=AuthSettings(api_keys=keys)))
    with TestClient(app) as client:
        service = app.state.console.upstreams.orders
        service.client = httpx.AsyncClient(
            base_url="http://order-api", transport=httpx.MockTransport(order_api)
        )
        yield client


def test_the_pages_need_no_credentials_but_the_data_does(console: TestClient) -> None:
    page = console.get("/")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert console.get("/static/app.js").status_code == 200
    refused = console.get("/api/orders")
    assert refused.status_code == 401
    assert refused.json()["code"] == "unauthorized"


def test_the_callers_credentials_go_on_to_the_services(
    console: TestClient, seen: list[httpx.Request]
) -> None:
    answer = console.get("/api/orders", headers={"Authorization": "Bearer secret-key"})
    assert answer.status_code == 200
    assert answer.json() == {"orders": [{"id": "o1", "state": "completed"}], "total": 1}
    assert seen[-1].headers["authorization"] == "Bearer secret-key"
    console.get("/api/orders", headers={"X-API-Key": "secret-key"})
    assert seen[-1].headers["x-api-key"] == "secret-key"


def test_a_refused_order_comes_back_laid_out_for_the_form(console: TestClient) -> None:
    answer = console.post("/api/orders", json={"serviceOrderItem": []}, headers={"X-API-Key": "secret-key"})
    assert answer.status_code == 200
    outcome = answer.json()
    assert outcome["accepted"] is False
    assert outcome["status"] == 400
    assert outcome["error"]["console"]["fields"] == {
        "saps.0.vlan": "Item item does not fit: saps.0.vlan: too big."
    }


def test_an_unreachable_service_is_a_503_with_a_reason() -> None:
    app = create_app(ConsoleSettings(order_api_url="http://127.0.0.1:9", auth=AuthSettings(disabled=True)))
    with TestClient(app) as client:
        answer = client.get("/api/orders")
    assert answer.status_code == 503
    assert answer.json()["reason"] == "The order-api service is unreachable."
