"""HTTP pieces every service API shares: health probes and the TMF error shape.

Every refusal is a 4xx with the TM Forum ``Error`` body: a machine-readable ``code``,
a ``reason`` a person understands, and ``message`` with the detail.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[None]]


class ApiError(Exception):
    """A refusal with a status, a stable code and a sentence for people."""

    def __init__(
        self,
        status: int,
        code: str,
        reason: str,
        message: str | None = None,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers


TMF_ERROR_SCHEMA: dict[str, Any] = {
    "title": "TmfError",
    "type": "object",
    "required": ["code", "reason"],
    "properties": {
        "@type": {"type": "string"},
        "code": {"type": "string", "description": "machine-readable"},
        "reason": {"type": "string", "description": "a sentence for people"},
        "message": {"type": "string"},
        "status": {"type": "string"},
        "referenceError": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object"}},
    },
}


def error_body(
    status: int, code: str, reason: str, message: str | None = None, details: Any = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "@type": "Error",
        "code": code,
        "reason": reason,
        "status": str(status),
    }
    if message:
        body["message"] = message
    if details:
        body["details"] = details
    return body


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(p) for p in err.get("loc", ())), "problem": err.get("msg", "")}
        for err in exc.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.status, exc.code, exc.reason, exc.message, exc.details),
            status_code=exc.status,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        summary = "; ".join(f"{d['field']}: {d['problem']}" for d in details[:5])
        return JSONResponse(
            error_body(400, "invalidRequest", "The request is not valid.", summary, details),
            status_code=400,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        phrase = HTTPStatus(exc.status_code).phrase
        code = phrase[0].lower() + phrase.title().replace(" ", "")[1:]
        return JSONResponse(
            error_body(exc.status_code, code, str(exc.detail or phrase)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )


def health_router(checks: Callable[[], dict[str, Check]], *, timeout: float = 3.0) -> APIRouter:
    """``/health/live`` answers while the process runs; ``/health/ready`` runs checks."""
    router = APIRouter(tags=["health"])

    @router.get("/health/live", summary="The process is alive")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/health/ready", summary="The database and the bus are reachable")
    async def ready() -> JSONResponse:
        results: dict[str, str] = {}
        for name, check in checks().items():
            try:
                await asyncio.wait_for(check(), timeout)
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"failing: {exc}" if str(exc) else f"failing: {type(exc).__name__}"
        ok = all(v == "ok" for v in results.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": results},
            status_code=200 if ok else 503,
        )

    return router
