"""The simulated network: routers that keep their running configuration.

Each device holds configuration lines (``{path: value}``). Applying an intent writes
its lines, removing deletes them, validating compares them with what runs, so drift
made by hand (``POST /sim/devices/{name}/drift``) is found like on a real router.
Faults can be armed per device to make the next changes fail, for tests and demos.
State lives in the provisioner's database, so the "network" survives a restart.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from netweave.provisioner.adapters.db import sim_delays, sim_devices, sim_faults, sim_pending
from netweave.provisioner.domain.intent import AnyIntent, configuration, devices_of
from netweave.provisioner.ports import JobOutcome, JobSpec


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


class SimNetwork:
    name = "sim"

    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def running(self, device: str) -> dict[str, Any]:
        # Locked for the rest of the transaction: two changes on one device read, modify
        # and write its configuration one after the other, never over each other.
        row = (
            await self.s.execute(
                select(sim_devices.c.running).where(sim_devices.c.name == device).with_for_update()
            )
        ).first()
        return dict(row.running) if row else {}

    async def _store(self, device: str, running: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        result = await self.s.execute(
            update(sim_devices).where(sim_devices.c.name == device).values(running=running, updated_at=now)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            await self.s.execute(insert(sim_devices).values(name=device, running=running, updated_at=now))

    async def _delay(self, devices: tuple[str, ...]) -> int | None:
        row = (
            await self.s.execute(
                select(sim_delays)
                .where(sim_delays.c.device.in_(devices), sim_delays.c.remaining > 0)
                .limit(1)
            )
        ).first()
        if row is None:
            return None
        await self.s.execute(
            update(sim_delays).where(sim_delays.c.device == row.device).values(remaining=row.remaining - 1)
        )
        return int(row.seconds)

    async def due_jobs(self, now: datetime) -> list[str]:
        rows = (await self.s.execute(select(sim_pending.c.job_id).where(sim_pending.c.due_at <= now))).all()
        return [r.job_id for r in rows]

    async def forget_pending(self, job_id: str) -> None:
        await self.s.execute(delete(sim_pending).where(sim_pending.c.job_id == job_id))

    async def arm_delay(self, device: str, seconds: int, times: int) -> None:
        await self.s.execute(delete(sim_delays).where(sim_delays.c.device == device))
        await self.s.execute(insert(sim_delays).values(device=device, seconds=seconds, remaining=times))

    async def _fault(self, devices: tuple[str, ...]) -> str | None:
        row = (
            await self.s.execute(
                select(sim_faults)
                .where(sim_faults.c.device.in_(devices), sim_faults.c.remaining > 0)
                .limit(1)
            )
        ).first()
        if row is None:
            return None
        await self.s.execute(
            update(sim_faults).where(sim_faults.c.id == row.id).values(remaining=row.remaining - 1)
        )
        return f"{row.device}: {row.message}"

    async def run(self, job: JobSpec) -> JobOutcome | None:
        """Apply at once, or, when a delay is armed on a device, later (like LSO would)."""
        delay = await self._delay(devices_of(job.intent)) if job.operation != "validate" else None
        if delay is not None:
            due = datetime.now(UTC) + timedelta(seconds=delay)
            await self.s.execute(insert(sim_pending).values(job_id=job.job_id, due_at=due))
            return None
        return await self.execute(job)

    async def execute(self, job: JobSpec) -> JobOutcome:
        if job.operation == "validate":
            return await self._validate(job.intent)
        fault = await self._fault(devices_of(job.intent))
        if fault is not None:
            return JobOutcome(False, f"FAILED: {fault}")
        if job.operation == "apply":
            return await self._apply(job.intent, job.previous)
        return await self._remove(job.intent)

    async def _apply(self, intent: AnyIntent, previous: AnyIntent | None) -> JobOutcome:
        lines: list[str] = []
        wanted = configuration(intent)
        if previous is not None:
            for device, old in configuration(previous).items():
                running = await self.running(device)
                for path in old:
                    if path not in wanted.get(device, {}) and path in running:
                        del running[path]
                        lines.append(f"{device}: - {path}")
                await self._store(device, running)
        for device, config in wanted.items():
            running = await self.running(device)
            for path, value in config.items():
                if running.get(path) != value:
                    running[path] = value
                    lines.append(f"{device}: + {path} {_show(value)}")
            await self._store(device, running)
        return JobOutcome(True, "\n".join(lines) or "no change")

    async def _remove(self, intent: AnyIntent) -> JobOutcome:
        lines: list[str] = []
        for device, config in configuration(intent).items():
            running = await self.running(device)
            for path in config:
                if running.pop(path, None) is not None:
                    lines.append(f"{device}: - {path}")
            await self._store(device, running)
        return JobOutcome(True, "\n".join(lines) or "no change")

    async def _validate(self, intent: AnyIntent) -> JobOutcome:
        differences: list[str] = []
        for device, config in configuration(intent).items():
            running = await self.running(device)
            for path, value in config.items():
                if path not in running:
                    differences.append(f"{device}: {path} is missing (want {_show(value)})")
                elif running[path] != value:
                    differences.append(f"{device}: {path} is {_show(running[path])}, want {_show(value)}")
        output = "\n".join(differences) or "in sync"
        return JobOutcome(True, output, tuple(differences))

    # --- test and demo controls -------------------------------------------------------

    async def drift(self, device: str, path: str, value: Any | None) -> None:
        running = await self.running(device)
        if value is None:
            running.pop(path, None)
        else:
            running[path] = value
        await self._store(device, running)

    async def arm_fault(self, device: str, times: int, message: str) -> None:
        await self.s.execute(insert(sim_faults).values(device=device, remaining=times, message=message))

    async def clear_faults(self) -> None:
        await self.s.execute(delete(sim_faults))
        await self.s.execute(delete(sim_delays))

    async def devices(self) -> dict[str, dict[str, Any]]:
        rows = (await self.s.execute(select(sim_devices).order_by(sim_devices.c.name))).all()
        return {r.name: dict(r.running) for r in rows}
