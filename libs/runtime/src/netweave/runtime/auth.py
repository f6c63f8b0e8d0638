"""API authentication: OAuth2 bearer JWTs, static API keys, or (explicitly) none.

A JWT is checked for signature (a key from settings or a JWKS URL), issuer, audience and
expiry; its scopes come from ``scope`` (space-separated) or ``scp`` (a list). An API key
is sent as ``X-API-Key`` or as a bearer token and maps to its own scopes. Without any
configuration a service refuses to start unless auth is explicitly disabled, which is
logged as a warning: the embedded demo runs that way on loopback.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from fastapi import Request
from pydantic import BaseModel, Field, SecretStr

from netweave.runtime.http import ApiError

log = logging.getLogger(__name__)


class AuthSettings(BaseModel):
    disabled: bool = Field(default=False, description="no authentication at all (demo on loopback only)")
    api_keys: SecretStr | None = Field(
        default=None, description='JSON object {"<key>": ["scope", ...]} of static API keys'
    )
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_key: SecretStr | None = Field(default=None, description="PEM public key or HMAC secret")
    jwt_jwks_url: str | None = None
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    jwt_leeway_seconds: int = 30


@dataclass(frozen=True)
class Principal:
    subject: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    method: str = "none"


class AuthNotConfigured(RuntimeError):
    pass


def _unauthorized(reason: str) -> ApiError:
    return ApiError(401, "unauthorized", reason, headers={"WWW-Authenticate": 'Bearer realm="netweave"'})


class Authenticator:
    def __init__(self, settings: AuthSettings, *, service: str) -> None:
        self.settings = settings
        self.service = service
        self._keys = self._parse_keys(settings.api_keys)
        self._jwks = (
            jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True) if settings.jwt_jwks_url else None
        )
        self.jwt_enabled = bool(settings.jwt_key or settings.jwt_jwks_url)
        if settings.disabled:
            log.warning("authentication is DISABLED for %s: anyone who reaches it can use it", service)
        elif not self._keys and not self.jwt_enabled:
            raise AuthNotConfigured(
                f"{service}: configure API keys or JWT validation, or disable authentication explicitly"
            )

    @staticmethod
    def _parse_keys(raw: SecretStr | None) -> dict[str, frozenset[str]]:
        if raw is None or not raw.get_secret_value().strip():
            return {}
        try:
            data = json.loads(raw.get_secret_value())
        except json.JSONDecodeError as exc:
            raise AuthNotConfigured(f"API keys are not valid JSON: {exc}") from None
        return {str(k): frozenset(str(s) for s in v) for k, v in dict(data).items()}

    def _api_key(self, presented: str) -> Principal | None:
        for key, scopes in self._keys.items():
            if hmac.compare_digest(key.encode(), presented.encode()):
                return Principal(f"api-key:{key[:4]}…", scopes, "api-key")
        return None

    def _signing_key(self, token: str) -> Any:
        if self._jwks is not None:
            return self._jwks.get_signing_key_from_jwt(token).key
        assert self.settings.jwt_key is not None
        return self.settings.jwt_key.get_secret_value()

    def _jwt(self, token: str) -> Principal:
        s = self.settings
        try:
            claims = jwt.decode(
                token,
                self._signing_key(token),
                algorithms=s.jwt_algorithms,
                audience=s.jwt_audience,
                issuer=s.jwt_issuer,
                leeway=s.jwt_leeway_seconds,
                options={"require": ["exp"], "verify_aud": s.jwt_audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"The bearer token is not valid: {exc}.") from None
        raw = claims.get("scope", claims.get("scp", []))
        scopes = raw.split() if isinstance(raw, str) else [str(x) for x in raw]
        return Principal(str(claims.get("sub", "unknown")), frozenset(scopes), "jwt")

    async def authenticate(self, request: Request) -> Principal:
        if self.settings.disabled:
            return Principal("anonymous", frozenset({"*"}))
        api_key = request.headers.get("x-api-key")
        if api_key:
            found = self._api_key(api_key)
            if found is None:
                raise _unauthorized("The API key is not known.")
            return found
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("Credentials are required: a bearer token or an X-API-Key header.")
        found = self._api_key(token.strip())
        if found is not None:
            return found
        if not self.jwt_enabled:
            raise _unauthorized("The bearer token is not a known API key.")
        # JWKS fetching blocks; keep the event loop free.
        return await asyncio.to_thread(self._jwt, token.strip())


def require(*scopes: str) -> Callable[[Request], Awaitable[Principal]]:
    """FastAPI dependency: authenticated, and holding every one of ``scopes``."""

    async def dependency(request: Request) -> Principal:
        auth: Authenticator = request.app.state.auth
        principal = await auth.authenticate(request)
        missing = [s for s in scopes if s not in principal.scopes and "*" not in principal.scopes]
        if missing:
            raise ApiError(403, "forbidden", f"This needs the scope(s): {', '.join(missing)}.")
        return principal

    return dependency
