"""The bus, documented: the AsyncAPI 3.0 document as JSON, YAML and a readable page.

Public on purpose (no authentication): another team reads it to subscribe to
``netweave.order.>``; it holds subjects and schemas, no data.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import yaml
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, Response

from netweave.contracts.asyncapi import asyncapi_document
from netweave.order_api.asyncapi_html import render_asyncapi_html


def public_nats_host(nats_url: str) -> str:
    """``host:port`` of the first NATS server, without the credentials a URL may carry."""
    first = nats_url.split(",", 1)[0].strip()
    parts = urlsplit(first if "://" in first else f"nats://{first}")
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port or 4222}"


def build_router(nats_url: str) -> APIRouter:
    router = APIRouter(tags=["asyncapi"])
    document: dict[str, Any] = asyncapi_document(nats_host=public_nats_host(nats_url))
    as_yaml = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    as_html = render_asyncapi_html(document)

    @router.get(
        "/asyncapi",
        summary="AsyncAPI 3.0 document of the bus (JSON)",
        response_class=JSONResponse,
        responses={200: {"content": {"application/json": {}}, "description": "the AsyncAPI document"}},
    )
    async def asyncapi_json() -> JSONResponse:
        return JSONResponse(document)

    @router.get(
        "/asyncapi.yaml",
        summary="AsyncAPI 3.0 document of the bus (YAML)",
        response_class=Response,
        responses={200: {"content": {"application/yaml": {}}, "description": "the AsyncAPI document"}},
    )
    async def asyncapi_yaml() -> Response:
        return Response(as_yaml, media_type="application/yaml")

    @router.get(
        "/asyncapi.html",
        summary="The bus documented for people: channels, publishers, consumers, payloads",
        response_class=HTMLResponse,
    )
    async def asyncapi_page() -> HTMLResponse:
        return HTMLResponse(as_html)

    return router
