"""The subscriptions service's own tables: subscriptions, edges, history."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from netweave.runtime.db import UtcDateTime, json_column, messaging_tables, new_metadata

metadata = new_metadata()
inbox, outbox = messaging_tables(metadata)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("product_id", String(100), nullable=False, index=True),
    Column("product_type", String(50), nullable=False, index=True),
    Column("customer_id", String(200), nullable=False, index=True),
    Column("status", String(20), nullable=False, index=True),
    Column("in_sync", Boolean, nullable=False),
    Column("locked_by_order", String(36)),
    Column("locked_by_item", String(64)),
    Column("dependency_state", String(20), nullable=False, default="ok"),
    Column("impact_cause", Text),
    Column("impact_cause_id", String(36)),
    Column("description", Text),
    Column("start_date", UtcDateTime()),
    Column("end_date", UtcDateTime()),
    json_column("inputs", nullable=False),
    json_column("pending_inputs"),
    json_column("block", nullable=False),
    json_column("resources"),
    json_column("pending_resources"),
    Column("nrm_id", String(64)),
    Column("reason", Text),
    Column("last_validated_at", UtcDateTime()),
    json_column("last_validation"),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

dependencies = Table(
    "dependencies",
    metadata,
    Column("subscription_id", String(36), nullable=False),
    Column("depends_on_id", String(36), nullable=False, index=True),
    Column("path", String(100), nullable=False),
    PrimaryKeyConstraint("subscription_id", "depends_on_id", "path"),
)

history = Table(
    "history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subscription_id", String(36), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("event_type", String(200), nullable=False),
    Column("order_id", String(36)),
    Column("item_id", String(64)),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("summary", Text, nullable=False),
    UniqueConstraint("subscription_id", "event_id"),
    Index("ix_history_subscription_occurred", "subscription_id", "occurred_at"),
)

settled_changes = Table(
    "settled_changes",
    metadata,
    Column("order_id", String(36), nullable=False),
    Column("item_id", String(64), nullable=False),
    Column("phase", String(10), nullable=False),  # "change", or "undo" when a cancelled order reverts it
    Column("subscription_id", String(36), nullable=False, index=True),
    Column("action", String(20), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("settled_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("order_id", "item_id", "phase"),
)
