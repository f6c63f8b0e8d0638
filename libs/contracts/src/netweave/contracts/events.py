"""Payloads of every event on the bus.

Each payload class knows where it travels: ``netweave.<owner>.<aggregate>.<name>.<id>``
where ``<id>`` is the entity the event is about (the order for order events, the
subscription for everything downstream). Event names are past tense.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from netweave.contracts.resources import Resources


class Action(StrEnum):
    """TMF641 order item actions."""

    ADD = "add"
    MODIFY = "modify"
    DELETE = "delete"
    NO_CHANGE = "noChange"


class EventPayload(BaseModel):
    """Base of every event payload: frozen, and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    OWNER: ClassVar[str]
    AGGREGATE: ClassVar[str]
    NAME: ClassVar[str]
    ENTITY_FIELD: ClassVar[str]
    SUMMARY: ClassVar[str] = ""

    @classmethod
    def event_type(cls) -> str:
        return f"netweave.{cls.OWNER}.{cls.AGGREGATE}.{cls.NAME}"

    @classmethod
    def subject_for(cls, entity_id: str) -> str:
        return f"{cls.event_type()}.{entity_id}"

    @classmethod
    def subject_pattern(cls) -> str:
        return f"{cls.event_type()}.*"

    def entity_id(self) -> str:
        return str(getattr(self, self.ENTITY_FIELD))

    def subject(self) -> str:
        return self.subject_for(self.entity_id())


class ItemEvent(EventPayload):
    """Anything that happens to one order item's change of one subscription."""

    ENTITY_FIELD: ClassVar[str] = "subscription_id"

    order_id: str
    item_id: str
    subscription_id: str
    action: Action
    product_id: str


# --- order-api (stream ORDERS) -------------------------------------------------------


class AcceptedItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    item_id: str
    action: Action
    product_id: str
    subscription_id: str
    depends_on: tuple[str, ...] = ()


class OrderAccepted(EventPayload):
    OWNER, AGGREGATE, NAME, ENTITY_FIELD = "order", "order", "accepted", "order_id"
    SUMMARY = "An order passed validation and was stored (state acknowledged)."

    order_id: str
    customer_id: str
    external_id: str | None = None
    items: tuple[AcceptedItem, ...]


class OrderStateChanged(EventPayload):
    OWNER, AGGREGATE, NAME, ENTITY_FIELD = "order", "order", "state_changed", "order_id"
    SUMMARY = "An order moved to another TMF641 state."

    order_id: str
    external_id: str | None = None
    state: str
    previous_state: str | None
    reason: str | None = None


class OrderItemReleased(ItemEvent):
    OWNER, AGGREGATE, NAME = "order", "item", "released"
    ENTITY_FIELD: ClassVar[str] = "order_id"
    SUMMARY = (
        "An order item's dependencies are done: downstream services start its change. "
        "Characteristics are validated, references to other items resolved to ids."
    )

    customer_id: str
    product_type: str
    characteristics: dict[str, Any]
    description: str | None = None


class OrderItemStateChanged(ItemEvent):
    OWNER, AGGREGATE, NAME = "order", "item", "state_changed"
    ENTITY_FIELD: ClassVar[str] = "order_id"
    SUMMARY = "An order item moved to another TMF641 item state."

    state: str
    previous_state: str | None
    reason: str | None = None


class OrderCancellationChanged(EventPayload):
    OWNER, AGGREGATE, NAME, ENTITY_FIELD = "order", "cancellation", "changed", "order_id"
    SUMMARY = (
        "A cancelServiceOrder request moved on (acknowledged, inProgress, done, "
        "terminatedWithError); lists the items cancelled and those compensated."
    )

    cancellation_id: str
    order_id: str
    state: str
    reason: str | None = None
    cancelled_items: tuple[str, ...] = ()
    compensated_items: tuple[str, ...] = ()
    completed_items: tuple[str, ...] = ()


class OrderItemCompensationRequested(ItemEvent):
    OWNER, AGGREGATE, NAME = "order", "item", "compensation_requested"
    ENTITY_FIELD: ClassVar[str] = "order_id"
    SUMMARY = (
        "An in-flight item of a cancelled order must be undone: network change removed, resources released."
    )

    reason: str


class OrderItemJeopardyRaised(ItemEvent):
    OWNER, AGGREGATE, NAME = "order", "item", "jeopardy_raised"
    ENTITY_FIELD: ClassVar[str] = "order_id"
    SUMMARY = "An order item runs past its expected duration."

    expected_seconds: float
    running_seconds: float


# --- inventory (stream INVENTORY) ------------------------------------------------------


class ResourcesAllocated(ItemEvent):
    OWNER, AGGREGATE, NAME = "inventory", "resources", "allocated"
    SUMMARY = "Inventory holds everything the item needs (names, addresses, VLANs, ids)."

    resources: Resources
    store: str


class AllocationFailed(ItemEvent):
    OWNER, AGGREGATE, NAME = "inventory", "allocation", "failed"
    SUMMARY = "Inventory could not allocate; whatever the item had taken is given back."

    code: str
    reason: str


class ResourcesReleased(ItemEvent):
    OWNER, AGGREGATE, NAME = "inventory", "resources", "released"
    SUMMARY = (
        "Inventory gave back a subscription's resources, on terminate or as "
        "compensation for a failed or cancelled change."
    )

    cause: Literal["terminate", "compensation"]
    reason: str | None = None
    released: tuple[str, ...] = ()


# --- provisioner (stream PROVISIONING) -------------------------------------------------


class ServiceActivated(ItemEvent):
    OWNER, AGGREGATE, NAME = "provisioning", "service", "activated"
    SUMMARY = "The network carries the change (created or modified)."

    job_id: str
    driver: str
    devices: tuple[str, ...] = ()


class ServiceDeactivated(ItemEvent):
    OWNER, AGGREGATE, NAME = "provisioning", "service", "deactivated"
    SUMMARY = "The service's configuration is removed from the network."

    job_id: str
    driver: str
    devices: tuple[str, ...] = ()


class ProvisioningFailed(ItemEvent):
    OWNER, AGGREGATE, NAME = "provisioning", "service", "failed"
    SUMMARY = "The network change failed; the output says where."

    reason: str
    output: str = ""
    job_id: str | None = None
    operation: Literal["apply", "remove"] = "apply"


class JobProgressed(ItemEvent):
    OWNER, AGGREGATE, NAME = "provisioning", "job", "progressed"
    SUMMARY = "Progress reported by a running provisioning job."

    job_id: str
    message: str


class ServiceValidated(EventPayload):
    OWNER, AGGREGATE, NAME, ENTITY_FIELD = "provisioning", "service", "validated", "subscription_id"
    SUMMARY = "The network was compared with a subscription's intended configuration."

    subscription_id: str
    request_id: str
    in_sync: bool
    differences: tuple[str, ...] = ()
    driver: str


# --- subscriptions (stream SUBSCRIPTIONS) ----------------------------------------------


class SubscriptionLifecycleChanged(EventPayload):
    OWNER, AGGREGATE, NAME, ENTITY_FIELD = (
        "subscription",
        "lifecycle",
        "changed",
        "subscription_id",
    )
    SUMMARY = "A subscription moved to another lifecycle status."

    subscription_id: str
    product_id: str
    customer_id: str
    status: str
    previous_status: str | None
    order_id: str | None = None
    item_id: str | None = None
    reason: str | None = None


class SubscriptionChangeCompleted(EventPayload):
    OWNER, AGGREGATE, NAME, ENTITY_FIELD = (
        "subscription",
        "change",
        "completed",
        "subscription_id",
    )
    SUMMARY = "An order item's change is applied and visible in the subscription."

    subscription_id: str
    order_id: str
    item_id: str
    action: Action
    status: str


class SubscriptionChangeFailed(EventPayload):
    OWNER, AGGREGATE, NAME, ENTITY_FIELD = (
        "subscription",
        "change",
        "failed",
        "subscription_id",
    )
    SUMMARY = "An order item's change failed; compensation (if any) is done before this is published."

    subscription_id: str
    order_id: str
    item_id: str
    action: Action
    status: str
    reason: str


class ValidationRequested(EventPayload):
    OWNER, AGGREGATE, NAME, ENTITY_FIELD = (
        "subscription",
        "validation",
        "requested",
        "subscription_id",
    )
    SUMMARY = "Someone (an operator or the reconcile schedule) asks to validate a subscription."

    subscription_id: str
    request_id: str
    product_id: str
    reason: str = "requested"


class SubscriptionSyncChanged(EventPayload):
    OWNER, AGGREGATE, NAME, ENTITY_FIELD = "subscription", "sync", "changed", "subscription_id"
    SUMMARY = (
        "Validation found a subscription drifted from (or back in line with) its intended configuration."
    )

    subscription_id: str
    product_id: str
    in_sync: bool
    differences: tuple[str, ...] = ()


class DependencyImpacted(EventPayload):
    OWNER, AGGREGATE, NAME, ENTITY_FIELD = (
        "subscription",
        "dependency",
        "impacted",
        "subscription_id",
    )
    SUMMARY = "A subscription this one depends on (directly or not) became unhealthy."

    subscription_id: str
    cause_subscription_id: str
    cause: str


class DependencyRestored(EventPayload):
    OWNER, AGGREGATE, NAME, ENTITY_FIELD = (
        "subscription",
        "dependency",
        "restored",
        "subscription_id",
    )
    SUMMARY = "Every dependency of this subscription is healthy again."

    subscription_id: str
    cause_subscription_id: str


ALL_EVENTS: tuple[type[EventPayload], ...] = (
    OrderAccepted,
    OrderStateChanged,
    OrderItemReleased,
    OrderItemStateChanged,
    OrderItemCompensationRequested,
    OrderItemJeopardyRaised,
    OrderCancellationChanged,
    ResourcesAllocated,
    AllocationFailed,
    ResourcesReleased,
    ServiceActivated,
    ServiceDeactivated,
    ProvisioningFailed,
    JobProgressed,
    ServiceValidated,
    SubscriptionLifecycleChanged,
    SubscriptionChangeCompleted,
    SubscriptionChangeFailed,
    ValidationRequested,
    SubscriptionSyncChanged,
    DependencyImpacted,
    DependencyRestored,
)

_BY_TYPE: dict[str, type[EventPayload]] = {cls.event_type(): cls for cls in ALL_EVENTS}


class UnknownEventType(LookupError):
    pass


def payload_class_for_type(event_type: str) -> type[EventPayload]:
    try:
        return _BY_TYPE[event_type]
    except KeyError:
        raise UnknownEventType(f"no payload is known for event type {event_type!r}") from None


def events_of_owner(owner: str) -> tuple[type[EventPayload], ...]:
    return tuple(cls for cls in ALL_EVENTS if owner == cls.OWNER)
