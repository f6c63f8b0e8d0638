"""Periodic work of the provisioner: simulated jobs coming due, overdue jobs."""

from __future__ import annotations

from sqlalchemy import select

from netweave.provisioner.adapters.db import jobs
from netweave.provisioner.adapters.sim import SimNetwork
from netweave.provisioner.handlers import finish_job, spec_of, utcnow
from netweave.runtime.outbox import UowFactory


async def complete_sim_jobs(uow_factory: UowFactory) -> int:
    """Finish the simulated jobs whose armed delay has passed."""
    async with uow_factory() as uow:
        due = await SimNetwork(uow.session).due_jobs(utcnow())
    for job_id in due:
        async with uow_factory() as uow:
            sim = SimNetwork(uow.session)
            row = (await uow.session.execute(select(jobs).where(jobs.c.job_id == job_id))).first()
            await sim.forget_pending(job_id)
            if row is not None and row.state in ("running", "unknown"):
                await finish_job(uow, job_id, await sim.execute(spec_of(row)))
    return len(due)
