"""POSTs a notification to a listener's callback and says how it went; never raises."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

USER_AGENT = "netweave-hub/0.1"
_MAX_ERROR = 500


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None = None


class WebhookSender:
    def __init__(self, timeout_seconds: float) -> None:
        # No redirects: a signed notification goes to the registered callback or nowhere.
        self._client = httpx.AsyncClient(
            timeout=timeout_seconds, follow_redirects=False, headers={"User-Agent": USER_AGENT}
        )

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except Exception as exc:  # any failure of one attempt is the receiver's to fix, not ours
            return Outcome(None, f"{type(exc).__name__}: {exc}"[:_MAX_ERROR])
        error = None if response.is_success else (response.text[:_MAX_ERROR] or response.reason_phrase)
        return Outcome(response.status_code, error)

    async def close(self) -> None:
        await self._client.aclose()
