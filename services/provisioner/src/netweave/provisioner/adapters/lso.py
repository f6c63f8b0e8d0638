"""LSO (orchestrator-lso) as the network driver: Ansible playbooks run over HTTP.

A job is ``POST /api/playbook/`` with the intent as ``extra_vars`` and a callback URL on
this service that carries an unguessable token of that job alone. LSO answers 201 at
once and POSTs ``{status, job_id, output, return_code}`` to the callback when the
playbook ends — once: it keeps no job state, retries nothing and forgets jobs when it
restarts, which is why jobs have a deadline and are reconciled by validate after it.

Playbooks (``ansible/<kind>.yml``) get ``{operation, lab, intent, previous}``; a validate
run prints ``NETWEAVE_VALIDATION {"in_sync": ..., "differences": [...]}`` as the name of
its last task (see docs/playbooks.md).
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from netweave.provisioner.ports import JobOutcome, JobSpec
from netweave.runtime.bus import TransientError

_VALIDATION = re.compile(r"NETWEAVE_VALIDATION (\{.*\})")
PLAYBOOK_OF_KIND = {
    "node": "node.yml",
    "core_link": "core_link.yml",
    "port": "port.yml",
    "circuit": "circuit.yml",
}


class LsoDriver:
    name = "lso"

    def __init__(
        self,
        url: str,
        *,
        callback_base: str,
        lab: str,
        api_key: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        # LSO's uvicorn closes an idle connection after 5 s; a POST sent on one it has just
        # closed fails with a ReadError, so idle connections are dropped well before that.
        limits = httpx.Limits(keepalive_expiry=2.0)
        self._client = httpx.AsyncClient(
            base_url=url.rstrip("/"), timeout=timeout, headers=headers, limits=limits
        )
        self.callback_base = callback_base.rstrip("/")
        self.lab = lab

    def callback_url(self, job: JobSpec, kind: str) -> str:
        return f"{self.callback_base}/provisioning/lso/jobs/{job.job_id}/{kind}/{job.callback_token}"

    def request(self, job: JobSpec) -> dict[str, Any]:
        if job.callback_token is None:
            raise ValueError("an LSO job needs a callback token")
        return {
            "playbook_name": PLAYBOOK_OF_KIND[job.intent.kind],
            "inventory": {
                "all": {
                    "hosts": {
                        "localhost": {
                            "ansible_connection": "local",
                            # The interpreter that runs Ansible itself, not whatever python3 a
                            # PATH shim points at.
                            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                        }
                    }
                }
            },
            "extra_vars": {
                "operation": job.operation,
                "lab": self.lab,
                "intent": job.intent.model_dump(mode="json"),
                "previous": job.previous.model_dump(mode="json") if job.previous else None,
                "netweave_job_id": job.job_id,
            },
            "callback": self.callback_url(job, "callback"),
            "progress": self.callback_url(job, "progress"),
            "progress_is_incremental": True,
        }

    async def run(self, job: JobSpec) -> JobOutcome | None:
        try:
            response = await self._client.post("/api/playbook/", json=self.request(job))
        except httpx.HTTPError as exc:
            raise TransientError(f"LSO unreachable: {exc}") from exc
        if response.status_code >= 500:
            raise TransientError(f"LSO answered {response.status_code}: {response.text[:200]}")
        if response.status_code != 201:
            return JobOutcome(
                False, f"FAILED: LSO refused the job ({response.status_code}): {response.text[:500]}"
            )
        return None  # the outcome comes to the callback

    async def ping(self) -> None:
        response = await self._client.get("/api/version")
        response.raise_for_status()

    async def close(self) -> None:
        await self._client.aclose()


def outcome_of_callback(body: dict[str, Any], operation: str) -> JobOutcome:
    """LSO's callback body as a job outcome (validate verdicts parsed from the output)."""
    raw = body.get("output", "")
    output = "\n".join(str(line) for line in raw) if isinstance(raw, list) else str(raw)
    succeeded = body.get("status") == "successful"
    if operation != "validate" or not succeeded:
        return JobOutcome(succeeded, output)
    found = _VALIDATION.findall(output)
    if not found:
        return JobOutcome(
            False, "FAILED: the validate playbook printed no NETWEAVE_VALIDATION verdict\n" + output
        )
    verdict = json.loads(found[-1])
    differences = tuple(str(d) for d in verdict.get("differences", []))
    if not verdict.get("in_sync", False) and not differences:
        differences = ("out of sync (no detail given)",)
    return JobOutcome(True, output, differences)


def progress_lines(body: dict[str, Any]) -> list[str]:
    raw = body.get("progress", [])
    return [str(line) for line in raw] if isinstance(raw, list) else [str(raw)]
