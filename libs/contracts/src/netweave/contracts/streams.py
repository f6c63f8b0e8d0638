"""JetStream streams and durable consumers, declared once.

``netweave bus init`` creates exactly these; services bind to them and never declare
them. One stream per owning service; each service's consumers name the subjects
it reacts to.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from netweave.contracts.events import (
    AllocationFailed,
    EventPayload,
    OrderAccepted,
    OrderCancellationChanged,
    OrderItemCompensationRequested,
    OrderItemJeopardyRaised,
    OrderItemReleased,
    OrderItemStateChanged,
    OrderStateChanged,
    ProvisioningFailed,
    ResourcesAllocated,
    ResourcesReleased,
    ServiceActivated,
    ServiceDeactivated,
    ServiceValidated,
    SubscriptionChangeCompleted,
    SubscriptionChangeFailed,
    ValidationRequested,
)

PREFIX = "netweave"
DEAD_LETTER_PREFIX = f"{PREFIX}.deadletter"


class StreamDef(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    owner: str
    subjects: tuple[str, ...]
    description: str
    duplicate_window_seconds: float = 120.0


class ConsumerDef(BaseModel):
    """A durable pull consumer: explicit ack, bounded redelivery."""

    model_config = ConfigDict(frozen=True)

    durable: str
    service: str
    stream: str
    events: tuple[type[EventPayload], ...] = Field(exclude=True)
    description: str
    ack_wait_seconds: float = 60.0
    max_deliver: int = 10
    max_ack_pending: int = 1000

    @property
    def filter_subjects(self) -> tuple[str, ...]:
        return tuple(e.subject_pattern() for e in self.events)


ORDERS = StreamDef(
    name="ORDERS",
    owner="order-api",
    subjects=(f"{PREFIX}.order.>",),
    description="Service orders and their items: accepted, released, state changes.",
)
INVENTORY = StreamDef(
    name="INVENTORY",
    owner="inventory",
    subjects=(f"{PREFIX}.inventory.>",),
    description="Resource allocations and releases.",
)
PROVISIONING = StreamDef(
    name="PROVISIONING",
    owner="provisioner",
    subjects=(f"{PREFIX}.provisioning.>",),
    description="Network changes: activated, deactivated, failed, validated, progress.",
)
SUBSCRIPTIONS = StreamDef(
    name="SUBSCRIPTIONS",
    owner="subscriptions",
    subjects=(f"{PREFIX}.subscription.>",),
    description="Subscription lifecycle, dependency impact and settled changes.",
)
DEADLETTER = StreamDef(
    name="DEADLETTER",
    owner="every service",
    subjects=(f"{DEAD_LETTER_PREFIX}.>",),
    description=(
        "Messages a consumer gave up on after max_deliver attempts, with the reason; "
        "`netweave events dlq` lists and replays them."
    ),
)

STREAMS: tuple[StreamDef, ...] = (ORDERS, INVENTORY, PROVISIONING, SUBSCRIPTIONS, DEADLETTER)


def _consumer(
    service: str, stream: StreamDef, events: tuple[type[EventPayload], ...], why: str
) -> ConsumerDef:
    return ConsumerDef(
        durable=f"{service}-{stream.name.lower()}",
        service=service,
        stream=stream.name,
        events=events,
        description=why,
    )


CONSUMERS: tuple[ConsumerDef, ...] = (
    _consumer(
        "order-api",
        ORDERS,
        (OrderAccepted,),
        "The order process manager releases the items of an accepted order.",
    ),
    _consumer(
        "order-api",
        SUBSCRIPTIONS,
        (SubscriptionChangeCompleted, SubscriptionChangeFailed),
        "Settled changes complete or fail order items.",
    ),
    ConsumerDef(
        durable="order-api-notifications",
        service="order-api",
        stream=ORDERS.name,
        events=(
            OrderAccepted,
            OrderStateChanged,
            OrderItemStateChanged,
            OrderItemJeopardyRaised,
            OrderCancellationChanged,
        ),
        description=(
            "The TMF630 hub turns order events into notifications for every registered "
            "listener whose query matches, queued for webhook delivery."
        ),
    ),
    _consumer(
        "inventory",
        ORDERS,
        (OrderItemReleased,),
        "Allocate resources for released add and modify items.",
    ),
    _consumer(
        "inventory",
        PROVISIONING,
        (ProvisioningFailed, ServiceDeactivated),
        "Compensate failed provisioning; release resources of deactivated services.",
    ),
    _consumer(
        "provisioner",
        ORDERS,
        (OrderItemReleased, OrderItemCompensationRequested),
        "Deprovision released delete items and compensated items.",
    ),
    _consumer(
        "provisioner",
        INVENTORY,
        (ResourcesAllocated,),
        "Configure the network once resources are allocated.",
    ),
    _consumer(
        "provisioner",
        SUBSCRIPTIONS,
        (ValidationRequested,),
        "Validate a subscription's configuration against the network.",
    ),
    _consumer(
        "subscriptions",
        ORDERS,
        (OrderItemReleased, OrderItemCompensationRequested),
        "Create subscriptions (initial) and lock them while an item or its undo is in flight.",
    ),
    _consumer(
        "subscriptions",
        INVENTORY,
        (ResourcesAllocated, AllocationFailed, ResourcesReleased),
        "Record allocated resources; settle failed and terminated changes.",
    ),
    _consumer(
        "subscriptions",
        PROVISIONING,
        (ServiceActivated, ServiceDeactivated, ProvisioningFailed, ServiceValidated),
        "Activate subscriptions, record failures and validation verdicts.",
    ),
)


def consumers_of(service: str) -> tuple[ConsumerDef, ...]:
    return tuple(c for c in CONSUMERS if c.service == service)


def consumer(durable: str) -> ConsumerDef:
    for c in CONSUMERS:
        if c.durable == durable:
            return c
    raise LookupError(f"no consumer named {durable!r}")


def stream_of_subject(subject: str) -> StreamDef:
    for s in STREAMS:
        for pattern in s.subjects:
            if subject.startswith(pattern.removesuffix(">")):
                return s
    raise LookupError(f"no stream holds subject {subject!r}")


def dead_letter_subject(durable: str, stream_sequence: int) -> str:
    return f"{DEAD_LETTER_PREFIX}.{durable}.{stream_sequence}"


SERVICES: tuple[str, ...] = ("order-api", "inventory", "provisioner", "subscriptions")
