"""Wires the provisioner together; nothing is built at import time."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from netweave.provisioner.adapters.db import inbox, outbox
from netweave.provisioner.adapters.lso import LsoDriver
from netweave.provisioner.adapters.sim import SimNetwork
from netweave.provisioner.config import ProvisionerSettings
from netweave.provisioner.entrypoints import bus, http, lso_callbacks
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


def _lso_driver(settings: ProvisionerSettings, runtime: ServiceRuntime) -> LsoDriver:
    if not settings.lso_url:
        raise ValueError("NETWEAVE_PROVISIONER_LSO_URL is required when NETWEAVE_PROVISIONER_DRIVER=lso")
    callback = settings.callback_url or f"http://{settings.http_host}:{settings.http_port}"
    key = settings.lso_api_key.get_secret_value() if settings.lso_api_key else None
    driver = LsoDriver(settings.lso_url, callback_base=callback, lab=settings.lab_name, api_key=key)
    runtime.extra_checks["lso"] = driver.ping
    runtime.on_stop.append(driver.close)
    return driver


def _driver_factory(settings: ProvisionerSettings, runtime: ServiceRuntime) -> DriverFor:
    if settings.driver == "lso":
        lso = _lso_driver(settings, runtime)
        return lambda _uow: lso

    def sim(uow: UnitOfWork) -> NetworkDriver:
        return SimNetwork(uow.session)

    return sim


def create_app(settings: ProvisionerSettings | None = None) -> FastAPI:
    settings = settings or ProvisionerSettings()
    runtime = ServiceRuntime(SERVICE, settings, MIGRATIONS, inbox, outbox)
    provisioner = Provisioner(
        runtime.unit_of_work,
        _driver_factory(settings, runtime),
        job_timeout=timedelta(seconds=settings.job_timeout_seconds),
        # Each LSO job gets a callback URL with a secret only that job knows.
        new_token=(lambda: secrets.token_urlsafe(32)) if settings.driver == "lso" else None,
    )
    runtime.consume(bus.consumers(provisioner))
    timeout = timedelta(seconds=settings.job_timeout_seconds)
    driver_for = provisioner.driver_for
    runtime.every(
        "overdue jobs",
        5.0,
        partial(reconcile_overdue_jobs, runtime.unit_of_work, driver_for, timeout, provisioner.new_token),
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
    app.include_router(lso_callbacks.build_router(papp))
    app.state.provisioner = papp
    return app
