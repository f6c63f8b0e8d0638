"""Wires the provisioner together; nothing is built at import time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from netweave.provisioner.adapters.db import inbox, outbox
from netweave.provisioner.adapters.sim import SimNetwork
from netweave.provisioner.config import ProvisionerSettings
from netweave.provisioner.entrypoints import bus, http
from netweave.provisioner.entrypoints.schedules import complete_sim_jobs
from netweave.provisioner.handlers import DriverFor, Provisioner, reconcile_overdue_jobs
from netweave.provisioner.ports import NetworkDriver
from netweave.runtime.outbox import UnitOfWork
from netweave.runtime.service import ServiceRuntime, create_service_app

SERVICE = "provisioner"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class ProvisionerApp:
    settings: ProvisionerSettings
    runtime: ServiceRuntime
    provisioner: Provisioner


def _driver_factory(settings: ProvisionerSettings) -> DriverFor:
    if settings.driver == "lso":
        raise NotImplementedError("the LSO driver is configured in a later step")

    def sim(uow: UnitOfWork) -> NetworkDriver:
        return SimNetwork(uow.session)

    return sim


def create_app(settings: ProvisionerSettings | None = None) -> FastAPI:
    settings = settings or ProvisionerSettings()
    runtime = ServiceRuntime(SERVICE, settings, MIGRATIONS, inbox, outbox)
    provisioner = Provisioner(
        runtime.unit_of_work,
        _driver_factory(settings),
        job_timeout=timedelta(seconds=settings.job_timeout_seconds),
    )
    runtime.consume(bus.consumers(provisioner))
    timeout = timedelta(seconds=settings.job_timeout_seconds)
    driver_for = provisioner.driver_for
    runtime.every(
        "overdue jobs", 5.0, partial(reconcile_overdue_jobs, runtime.unit_of_work, driver_for, timeout)
    )
    if settings.driver == "sim":
        runtime.every("simulated jobs", 0.5, partial(complete_sim_jobs, runtime.unit_of_work))
    papp = ProvisionerApp(settings, runtime, provisioner)
    app = create_service_app(
        runtime,
        title="netweave provisioner",
        description=f"Configures the network through the {settings.driver} driver.",
    )
    app.include_router(http.build_router(papp))
    app.state.provisioner = papp
    return app
