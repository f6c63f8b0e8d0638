"""Where LSO reports back: one URL per job, carrying that job's secret token.

A token that does not match, or a job that already finished (a replayed callback),
is refused: only the LSO that ran the job can finish it, and only once.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from netweave.contracts.envelope import make_event
from netweave.contracts.events import Action, JobProgressed
from netweave.provisioner.adapters.db import jobs
from netweave.provisioner.adapters.lso import outcome_of_callback, progress_lines
from netweave.provisioner.handlers import SOURCE, finish_job, token_hash
from netweave.runtime.http import ApiError

if TYPE_CHECKING:
    from netweave.provisioner.app import ProvisionerApp


class LsoCallback(BaseModel):
    status: str = Field(description="successful or failed")
    job_id: str = Field(description="LSO's own id of the run (the token in the URL names ours)")
    output: list[str] | str = ""
    return_code: int | None = None


class LsoProgress(BaseModel):
    progress: list[str] | str = Field(default_factory=list)


def build_router(app: ProvisionerApp) -> APIRouter:
    router = APIRouter(prefix="/provisioning/lso/jobs", tags=["LSO callbacks"])

    async def job_for(job_id: str, token: str, *, wait: float = 5.0) -> Any:
        # LSO answers a job request in ~0.5 s and calls back seconds later; the wait
        # covers a callback overtaking the commit of the job it reports on.
        for _ in range(int(wait / 0.25) + 1):
            async with app.runtime.db.session() as session:
                row = (await session.execute(select(jobs).where(jobs.c.job_id == job_id))).first()
            if row is not None:
                break
            await asyncio.sleep(0.25)
        else:
            raise ApiError(404, "notFound", f"No provisioning job {job_id}.")
        if row.token_hash is None or not hmac.compare_digest(row.token_hash, token_hash(token)):
            raise ApiError(403, "forbidden", "This callback token is not the job's.")
        return row

    @router.post("/{job_id}/callback/{token}", status_code=204, summary="LSO reports a finished playbook")
    async def callback(job_id: str, token: str, body: LsoCallback) -> Response:
        row = await job_for(job_id, token)
        if row.state not in ("running", "unknown"):
            raise ApiError(409, "alreadyFinished", f"Job {job_id} is {row.state}; its callback came already.")
        outcome = outcome_of_callback(body.model_dump(), row.operation)
        async with app.runtime.unit_of_work() as uow:
            finished = await finish_job(uow, job_id, outcome)
        if not finished:
            raise ApiError(409, "alreadyFinished", f"Job {job_id} was finished meanwhile.")
        return Response(status_code=204)

    @router.post("/{job_id}/progress/{token}", status_code=204, summary="LSO reports playbook progress")
    async def progress(job_id: str, token: str, body: LsoProgress) -> Response:
        row = await job_for(job_id, token, wait=1.0)
        lines = [ln for ln in progress_lines(body.model_dump()) if ln.strip()]
        if row.order_id is None or not lines or row.state not in ("running", "unknown"):
            return Response(status_code=204)
        payload = JobProgressed(
            order_id=row.order_id,
            item_id=row.item_id,
            subscription_id=row.subscription_id,
            action=Action(row.action),
            product_id=row.product_id,
            job_id=job_id,
            message="\n".join(lines)[-2000:],
        )
        async with app.runtime.unit_of_work() as uow:
            await uow.emit(make_event(payload, source=SOURCE, correlation_id=row.correlation_id))
        return Response(status_code=204)

    return router
