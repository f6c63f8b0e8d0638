"""TMF641 v4 resource shapes, as the official specification names them.

Only what the API reads or returns is modelled; field names and types follow
``TMF641-ServiceOrdering-v4.1.0.swagger.json`` so an integrator's TMF client works
unchanged. The specification's ``ServiceOrderItemRef`` requires an ``id`` it never
defines (a known erratum): we read ``itemId`` and accept ``id`` as its synonym.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from netweave.order_api.domain.order import ItemState, OrderState


class TmfModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    base_type: str | None = Field(default=None, alias="@baseType")
    schema_location: str | None = Field(default=None, alias="@schemaLocation")
    type: str | None = Field(default=None, alias="@type")


class Note(TmfModel):
    id: str | None = None
    author: str | None = None
    date: datetime | None = None
    text: str = Field(max_length=4000)


class RelatedParty(TmfModel):
    id: str = Field(min_length=1, max_length=200)
    href: str | None = None
    name: str | None = Field(default=None, max_length=200)
    role: str | None = Field(default=None, max_length=100)
    referred_type: str | None = Field(default=None, alias="@referredType")


class ExternalReference(TmfModel):
    externalReferenceType: str | None = None
    name: str = Field(min_length=1)


class Characteristic(TmfModel):
    id: str | None = None
    name: str = Field(min_length=1, max_length=100)
    valueType: str | None = None
    value: Any = Field(description="any JSON value; objects and arrays for structured inputs")


class ServiceSpecificationRef(TmfModel):
    id: str = Field(min_length=1, max_length=100, description="the netweave product id, e.g. l2-p2p-10g")
    href: str | None = None
    name: str | None = None
    version: str | None = None
    referred_type: str | None = Field(default=None, alias="@referredType")


class ServiceRefOrValue(TmfModel):
    id: str | None = Field(
        default=None, description="the subscription (service) id; required for modify and delete"
    )
    href: str | None = None
    name: str | None = None
    description: str | None = Field(default=None, max_length=500)
    category: str | None = None
    serviceType: str | None = None
    state: str | None = None
    serviceSpecification: ServiceSpecificationRef | None = None
    serviceCharacteristic: list[Characteristic] = Field(default_factory=list)
    referred_type: str | None = Field(default=None, alias="@referredType")


class ServiceOrderItemRef(TmfModel):
    itemId: str = Field(validation_alias=AliasChoices("itemId", "id"), min_length=1)
    serviceOrderHref: str | None = None
    serviceOrderId: str | None = None


class ServiceOrderItemRelationship(TmfModel):
    relationshipType: str = Field(description="only dependsOn is understood")
    orderItem: ServiceOrderItemRef

    @model_validator(mode="before")
    @classmethod
    def _accept_v4_0_shape(cls, data: Any) -> Any:
        # TMF641 v4.0 wrote {"id": ..., "relationshipType": ...} without orderItem.
        if isinstance(data, dict) and "orderItem" not in data and "id" in data:
            return {**data, "orderItem": {"itemId": data["id"]}}
        return data


class ErrorMessage(TmfModel):
    code: str | None = None
    message: str | None = None
    reason: str | None = None
    status: str | None = None
    timestamp: datetime | None = None


class ServiceOrderItemCreate(TmfModel):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    quantity: int | None = Field(default=None, ge=1, le=1)
    action: str = Field(description="add, modify, delete or noChange")
    service: ServiceRefOrValue
    serviceOrderItemRelationship: list[ServiceOrderItemRelationship] = Field(
        default_factory=list,
        validation_alias=AliasChoices("serviceOrderItemRelationship", "orderItemRelationship"),
    )


class ServiceOrderItem(TmfModel):
    id: str
    quantity: int | None = None
    action: str
    state: ItemState
    service: ServiceRefOrValue
    serviceOrderItemRelationship: list[ServiceOrderItemRelationship] = Field(default_factory=list)
    errorMessage: list[ErrorMessage] = Field(default_factory=list)


class ServiceOrderCreate(TmfModel):
    """ServiceOrder_Create."""

    externalId: str | None = Field(default=None, max_length=200)
    priority: str | None = Field(default=None, max_length=20)
    description: str | None = Field(default=None, max_length=2000)
    category: str | None = Field(default=None, max_length=100)
    notificationContact: str | None = Field(default=None, max_length=200)
    requestedStartDate: datetime | None = None
    requestedCompletionDate: datetime | None = None
    note: list[Note] = Field(default_factory=list, max_length=50)
    relatedParty: list[RelatedParty] = Field(default_factory=list, max_length=20)
    externalReference: list[ExternalReference] = Field(default_factory=list, max_length=20)
    serviceOrderItem: list[ServiceOrderItemCreate] = Field(
        description="the items; at least one", max_length=1000
    )


class ServiceOrderUpdate(TmfModel):
    """ServiceOrder_Update: what may change while the order has not started."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    description: str | None = Field(default=None, max_length=2000)
    externalId: str | None = Field(default=None, max_length=200)
    notificationContact: str | None = Field(default=None, max_length=200)
    priority: str | None = Field(default=None, max_length=20)
    requestedStartDate: datetime | None = None
    requestedCompletionDate: datetime | None = None
    note: list[Note] | None = Field(default=None, max_length=50)
    relatedParty: list[RelatedParty] | None = Field(default=None, max_length=20)
    externalReference: list[ExternalReference] | None = Field(default=None, max_length=20)


class JeopardyAlert(TmfModel):
    id: str
    alertDate: datetime
    jeopardyType: str
    message: str
    name: str
    serviceOrderItem: list[ServiceOrderItemRef] = Field(default_factory=list)


class ServiceOrder(TmfModel):
    id: str
    href: str
    externalId: str | None = None
    priority: str | None = None
    description: str | None = None
    category: str | None = None
    notificationContact: str | None = None
    orderDate: datetime
    startDate: datetime | None = None
    completionDate: datetime | None = None
    expectedCompletionDate: datetime | None = None
    requestedStartDate: datetime | None = None
    requestedCompletionDate: datetime | None = None
    cancellationDate: datetime | None = None
    cancellationReason: str | None = None
    state: OrderState
    note: list[Note] = Field(default_factory=list)
    relatedParty: list[RelatedParty] = Field(default_factory=list)
    externalReference: list[ExternalReference] = Field(default_factory=list)
    serviceOrderItem: list[ServiceOrderItem] = Field(default_factory=list)
    errorMessage: list[ErrorMessage] = Field(default_factory=list)
    jeopardyAlert: list[JeopardyAlert] = Field(default_factory=list)


class TmfError(BaseModel):
    """The TMF ``Error`` body of every refusal."""

    model_config = ConfigDict(populate_by_name=True)

    type: Literal["Error"] = Field(default="Error", alias="@type")
    code: str
    reason: str
    message: str | None = None
    status: str | None = None
    referenceError: str | None = None
    details: list[dict[str, Any]] | None = None


class ServiceOrderRef(TmfModel):
    id: str = Field(min_length=1, max_length=64)
    href: str | None = None
    referred_type: str | None = Field(default=None, alias="@referredType")


class CancelServiceOrderCreate(TmfModel):
    """CancelServiceOrder_Create."""

    cancellationReason: str | None = Field(default=None, max_length=2000)
    requestedCancellationDate: datetime | None = None
    serviceOrder: ServiceOrderRef


class CancelServiceOrder(TmfModel):
    id: str
    href: str
    cancellationReason: str | None = None
    completionMessage: str | None = None
    effectiveCancellationDate: datetime | None = None
    requestedCancellationDate: datetime | None = None
    serviceOrder: ServiceOrderRef
    state: Literal["acknowledged", "rejected", "inProgress", "cancelled", "done", "terminatedWithError"]
