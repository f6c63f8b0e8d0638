"""The order API's own tables and the repository that maps them to the domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from netweave.contracts.events import Action
from netweave.order_api.domain.order import Item, ItemState, Order, OrderState
from netweave.runtime.db import UtcDateTime, json_column, messaging_tables, new_metadata

metadata = new_metadata()
inbox, outbox = messaging_tables(metadata)

orders = Table(
    "service_orders",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("external_id", String(200), index=True),
    Column("customer_id", String(200), nullable=False, index=True),
    Column("state", String(40), nullable=False, index=True),
    Column("state_reason", Text),
    Column("order_date", UtcDateTime(), nullable=False, index=True),
    Column("start_date", UtcDateTime()),
    Column("completion_date", UtcDateTime()),
    Column("cancellation_date", UtcDateTime()),
    Column("cancellation_reason", Text),
    Column("priority", String(20)),
    Column("description", Text),
    Column("category", String(100)),
    Column("notification_contact", String(200)),
    Column("requested_start_date", UtcDateTime()),
    Column("requested_completion_date", UtcDateTime()),
    json_column("extra", nullable=False),
    Column("idempotency_key", String(200), unique=True),
    Column("request_hash", String(64)),
    Column("updated_at", UtcDateTime(), nullable=False),
)

order_items = Table(
    "service_order_items",
    metadata,
    Column("order_id", String(36), nullable=False),
    Column("item_id", String(64), nullable=False),
    Column("position", Integer, nullable=False),
    Column("action", String(20), nullable=False),
    Column("product_id", String(100), nullable=False),
    Column("subscription_id", String(36), nullable=False),
    Column("state", String(40), nullable=False),
    Column("reason", Text),
    json_column("characteristics", nullable=False),
    json_column("depends_on", nullable=False),
    json_column("service", nullable=False),
    Column("started_at", UtcDateTime()),
    Column("completed_at", UtcDateTime()),
    Column("compensation", String(20)),
    Column("jeopardy_at", UtcDateTime()),
    PrimaryKeyConstraint("order_id", "item_id"),
    ForeignKeyConstraint(["order_id"], ["service_orders.id"], ondelete="CASCADE"),
    Index("ix_service_order_items_subscription_state", "subscription_id", "state"),
)

cancellations = Table(
    "cancel_orders",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("order_id", String(36), nullable=False, index=True),
    Column("state", String(30), nullable=False),
    Column("reason", Text),
    Column("requested_cancellation_date", UtcDateTime()),
    Column("effective_cancellation_date", UtcDateTime()),
    Column("completion_message", Text),
    Column("created_at", UtcDateTime(), nullable=False),
    ForeignKeyConstraint(["order_id"], ["service_orders.id"], ondelete="CASCADE"),
)


def _item_from_row(row: Any) -> Item:
    return Item(
        item_id=row.item_id,
        action=Action(row.action),
        product_id=row.product_id,
        subscription_id=row.subscription_id,
        characteristics=dict(row.characteristics),
        depends_on=tuple(row.depends_on),
        state=ItemState(row.state),
        reason=row.reason,
        started_at=row.started_at,
        completed_at=row.completed_at,
        compensation=row.compensation,
    )


class OrderRepository:
    """Reads and writes orders inside the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, order: Order, row: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
        await self.session.execute(orders.insert().values(**row))
        await self.session.execute(
            order_items.insert(),
            [
                {
                    "order_id": order.id,
                    "item_id": it.item_id,
                    "position": pos,
                    "action": it.action.value,
                    "product_id": it.product_id,
                    "subscription_id": it.subscription_id,
                    "state": it.state.value,
                    "reason": it.reason,
                    "characteristics": it.characteristics,
                    "depends_on": list(it.depends_on),
                    "service": services[it.item_id],
                    "started_at": it.started_at,
                    "completed_at": it.completed_at,
                }
                for pos, it in enumerate(order.items)
            ],
        )

    async def get(self, order_id: str, *, for_update: bool = False) -> Order | None:
        query = select(orders).where(orders.c.id == order_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).first()
        if row is None:
            return None
        item_rows = (
            await self.session.execute(
                select(order_items).where(order_items.c.order_id == order_id).order_by(order_items.c.position)
            )
        ).all()
        return Order(
            id=row.id,
            state=OrderState(row.state),
            items=[_item_from_row(r) for r in item_rows],
            customer_id=row.customer_id,
            external_id=row.external_id,
            reason=row.state_reason,
            completion_date=row.completion_date,
        )

    async def save_states(self, order: Order, now: datetime) -> None:
        """Write back what the process manager changed: states, reasons, dates."""
        values: dict[str, Any] = {
            "state": order.state.value,
            "state_reason": order.reason,
            "completion_date": order.completion_date,
            "updated_at": now,
        }
        if order.state == OrderState.IN_PROGRESS:
            values["start_date"] = func.coalesce(orders.c.start_date, now)
        await self.session.execute(update(orders).where(orders.c.id == order.id).values(**values))
        for it in order.items:
            await self.session.execute(
                update(order_items)
                .where(order_items.c.order_id == order.id, order_items.c.item_id == it.item_id)
                .values(
                    state=it.state.value,
                    reason=it.reason,
                    started_at=it.started_at,
                    completed_at=it.completed_at,
                    compensation=it.compensation,
                )
            )

    async def find_by_idempotency_key(self, key: str) -> Any:
        return (
            await self.session.execute(
                select(orders.c.id, orders.c.request_hash).where(orders.c.idempotency_key == key)
            )
        ).first()
