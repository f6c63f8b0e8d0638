"""The provisioner's own tables: jobs, what each subscription configured, the simulator."""

from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table, Text

from netweave.runtime.db import UtcDateTime, json_column, messaging_tables, new_metadata

metadata = new_metadata()
inbox, outbox = messaging_tables(metadata)

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("subscription_id", String(36), nullable=False, index=True),
    Column("order_id", String(36)),
    Column("item_id", String(64)),
    Column("action", String(20)),
    Column("product_id", String(100), nullable=False),
    Column("operation", String(20), nullable=False),
    Column("driver", String(20), nullable=False),
    Column("state", String(20), nullable=False, index=True),
    json_column("intent", nullable=False),
    json_column("previous_intent"),
    Column("output", Text),
    Column("differences", Text),
    Column("token_hash", String(64)),
    Column("cause_event_id", String(64), nullable=False),
    Column("correlation_id", String(64)),
    Column("request_id", String(64)),
    Column("reconciles", String(36), index=True),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("deadline_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime()),
)

services = Table(
    "services",
    metadata,
    Column("subscription_id", String(36), primary_key=True),
    Column("product_id", String(100), nullable=False),
    json_column("intent", nullable=False),
    json_column("devices", nullable=False),
    Column("state", String(20), nullable=False),
    Column("last_job_id", String(36)),
    Column("updated_at", UtcDateTime(), nullable=False),
)

sim_devices = Table(
    "sim_devices",
    metadata,
    Column("name", String(64), primary_key=True),
    json_column("running", nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

sim_delays = Table(
    "sim_delays",
    metadata,
    Column("device", String(64), primary_key=True),
    Column("seconds", Integer, nullable=False),
    Column("remaining", Integer, nullable=False),
)

sim_pending = Table(
    "sim_pending",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("due_at", UtcDateTime(), nullable=False, index=True),
)

sim_faults = Table(
    "sim_faults",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("device", String(64), nullable=False, index=True),
    Column("remaining", Integer, nullable=False),
    Column("message", Text, nullable=False),
)
