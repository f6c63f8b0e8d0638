"""The provisioner's HTTP API: jobs, configured services, and the simulator's controls."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select

from netweave.provisioner.adapters.db import jobs, services
from netweave.provisioner.adapters.sim import SimNetwork
from netweave.runtime.http import ApiError

if TYPE_CHECKING:
    from netweave.provisioner.app import ProvisionerApp


class Drift(BaseModel):
    path: str = Field(min_length=1, description="configuration line, e.g. 'interface lo ipv4'")
    value: Any = Field(default=None, description="new value; null deletes the line")


class Delay(BaseModel):
    seconds: int = Field(ge=1, le=3600, description="how long each change on the device takes")
    times: int = Field(default=1, ge=1, le=1000, description="for how many changes")


class Fault(BaseModel):
    times: int = Field(default=1, ge=1, le=1000)
    message: str = Field(default="simulated device failure", max_length=500)


def _job(row: Any) -> dict[str, Any]:
    return {
        "job_id": row.job_id,
        "subscription_id": row.subscription_id,
        "order_id": row.order_id,
        "item_id": row.item_id,
        "operation": row.operation,
        "driver": row.driver,
        "state": row.state,
        "output": row.output,
        "differences": row.differences.splitlines() if row.differences else [],
        "started_at": row.started_at.isoformat(),
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
    }


def build_router(app: ProvisionerApp) -> APIRouter:
    router = APIRouter(prefix="/provisioning", tags=["provisioning"])

    @router.get("/jobs", summary="Provisioning jobs, newest first")
    async def list_jobs(
        subscription_id: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        query = select(jobs).order_by(jobs.c.started_at.desc()).limit(min(max(limit, 1), 1000))
        if subscription_id:
            query = query.where(jobs.c.subscription_id == subscription_id)
        if state:
            query = query.where(jobs.c.state == state)
        async with app.runtime.db.session() as session:
            return [_job(r) for r in (await session.execute(query)).all()]

    @router.get("/services/{subscription_id}", summary="What a subscription configured on the network")
    async def get_service(subscription_id: str) -> dict[str, Any]:
        async with app.runtime.db.session() as session:
            row = (
                await session.execute(select(services).where(services.c.subscription_id == subscription_id))
            ).first()
        if row is None:
            raise ApiError(404, "notFound", f"Nothing was configured for subscription {subscription_id}.")
        return {
            "subscription_id": row.subscription_id,
            "product_id": row.product_id,
            "intent": row.intent,
            "devices": row.devices,
            "state": row.state,
            "last_job_id": row.last_job_id,
        }

    sim = APIRouter(prefix="/sim", tags=["simulated network"])

    def require_sim() -> None:
        if app.settings.driver != "sim":
            raise ApiError(
                409, "notSimulated", "The provisioner drives a real network (LSO), not the simulator."
            )

    @sim.get("/devices", summary="Every simulated device's running configuration")
    async def sim_devices() -> dict[str, dict[str, Any]]:
        require_sim()
        async with app.runtime.db.session() as session:
            return await SimNetwork(session).devices()

    @sim.get("/devices/{name}", summary="One simulated device's running configuration")
    async def sim_device(name: str) -> dict[str, Any]:
        require_sim()
        async with app.runtime.db.session() as session:
            devices = await SimNetwork(session).devices()
        if name not in devices:
            raise ApiError(404, "notFound", f"No simulated device {name}.")
        return devices[name]

    @sim.post("/devices/{name}/drift", status_code=204, summary="Change a running line by hand (drift)")
    async def sim_drift(name: str, body: Drift) -> None:
        require_sim()
        async with app.runtime.unit_of_work() as uow:
            await SimNetwork(uow.session).drift(name, body.path, body.value)

    @sim.post("/devices/{name}/faults", status_code=204, summary="Make the next changes on a device fail")
    async def sim_fault(name: str, body: Fault) -> None:
        require_sim()
        async with app.runtime.unit_of_work() as uow:
            await SimNetwork(uow.session).arm_fault(name, body.times, body.message)

    @sim.post("/devices/{name}/delays", status_code=204, summary="Make the next changes on a device slow")
    async def sim_delay(name: str, body: Delay) -> None:
        require_sim()
        async with app.runtime.unit_of_work() as uow:
            await SimNetwork(uow.session).arm_delay(name, body.seconds, body.times)

    @sim.delete("/faults", status_code=204, summary="Disarm every fault and delay")
    async def sim_clear() -> None:
        require_sim()
        async with app.runtime.unit_of_work() as uow:
            await SimNetwork(uow.session).clear_faults()

    router.include_router(sim)
    return router
