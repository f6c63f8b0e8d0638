"""API authentication: API keys, JWTs by key and by JWKS, scopes, and the explicit opt-out."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from netweave.runtime.auth import Authenticator, AuthNotConfigured, AuthSettings, Principal, require
from netweave.runtime.http import install_error_handlers

SECRET = "s" * 40


def app_with(settings: AuthSettings) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.state.auth = Authenticator(settings, service="test")

    @app.get("/orders", dependencies=[Depends(require("orders:read"))])
    async def read() -> dict[str, str]:
        return {"ok": "read"}

    @app.post("/orders")
    async def write(who: Principal = Depends(require("orders:write"))) -> dict[str, str]:  # noqa: B008
        return {"by": who.subject}

    return TestClient(app)


def token(key: Any, *, scope: str = "orders:read", algorithm: str = "HS256", **claims: Any) -> str:
    body = {
        "sub": "portal",
        "iss": "https://idp",
        "aud": "netweave",
        "exp": time.time() + 60,
        "scope": scope,
        **claims,
    }
    return jwt.encode(body, key, algorithm=algorithm, headers={"kid": "k1"})


def test_nothing_configured_refuses_to_start_unless_disabled_explicitly() -> None:
    with pytest.raises(AuthNotConfigured):
        Authenticator(AuthSettings(), service="x")
    client = app_with(AuthSettings(disabled=True))
    assert client.get("/orders").status_code == 200


def test_api_keys_map_to_scopes() -> None:
    keys = SecretStr(
        json.dumps({"reader-key-123": ["orders:read"], "writer-key-456": ["orders:read", "orders:write"]})
    )
    client = app_with(AuthSettings(api_keys=keys))
    missing = client.get("/orders")
    assert missing.status_code == 401
    assert missing.json()["code"] == "unauthorized"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/orders", headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.get("/orders", headers={"X-API-Key": "reader-key-123"}).status_code == 200
    forbidden = client.post("/orders", headers={"X-API-Key": "reader-key-123"})
    assert forbidden.status_code == 403
    assert "orders:write" in forbidden.json()["reason"]
    assert client.post("/orders", headers={"Authorization": "Bearer writer-key-456"}).status_code == 200


def test_jwts_are_checked_for_signature_issuer_audience_expiry_and_scope() -> None:
    settings = AuthSettings(
        jwt_key=SecretStr(SECRET), jwt_issuer="https://idp", jwt_audience="netweave", jwt_algorithms=["HS256"]
    )
    client = app_with(settings)

    def get(tok: str) -> int:
        return int(client.get("/orders", headers={"Authorization": f"Bearer {tok}"}).status_code)

    assert get(token(SECRET)) == 200
    assert get(token("another-secret-of-enough-length-xxxxxxxx")) == 401
    assert get(token(SECRET, iss="https://evil")) == 401
    assert get(token(SECRET, aud="someone-else")) == 401
    assert get(token(SECRET, exp=time.time() - 3600)) == 401
    assert client.post("/orders", headers={"Authorization": f"Bearer {token(SECRET)}"}).status_code == 403
    writer = token(SECRET, scope="orders:read orders:write")
    assert client.post("/orders", headers={"Authorization": f"Bearer {writer}"}).json() == {"by": "portal"}


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, Any]]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json", private
    finally:
        server.shutdown()


def test_a_jwt_signed_by_a_key_of_the_jwks_url_is_accepted(jwks_server: tuple[str, Any]) -> None:
    url, private = jwks_server
    client = app_with(AuthSettings(jwt_jwks_url=url, jwt_issuer="https://idp", jwt_audience="netweave"))
    good = token(private, algorithm="RS256")
    assert client.get("/orders", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = token(other, algorithm="RS256")
    assert client.get("/orders", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
