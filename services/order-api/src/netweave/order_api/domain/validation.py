"""Deciding whether an order can be accepted, before anything is stored.

Two steps: :func:`check_structure` needs nothing but the request and the catalog;
:func:`resolve` also needs the subscriptions the order points at (looked up by the
caller through the subscriptions read API) and yields the items to store.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from netweave.contracts.catalog import (
    ITEM_REF_PREFIX,
    UUID_RE,
    FormModel,
    LifecycleStatus,
    Product,
    ProductType,
    UnknownProduct,
    get_product,
    is_item_ref,
    references_in,
)
from netweave.contracts.events import Action
from netweave.order_api.domain.order import Item


class OrderRefused(Exception):
    """The order cannot be accepted; ``code`` for machines, ``reason`` for people."""

    def __init__(
        self, code: str, reason: str, details: list[dict[str, Any]] | None = None, status: int = 400
    ) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.details = details or []
        self.status = status


@dataclass(frozen=True)
class RequestedItem:
    """One order item as submitted, already out of its TMF wrapping."""

    item_id: str
    action: str
    product_id: str | None
    service_id: str | None
    characteristics: tuple[tuple[str, Any], ...]
    depends_on: tuple[str, ...]


@dataclass(frozen=True)
class SubscriptionView:
    """What the order API needs to know of an existing subscription."""

    id: str
    product_id: str
    product_type: str
    status: str
    in_use_by: tuple[str, ...] = ()
    characteristics: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class CheckedItem:
    request: RequestedItem
    action: Action
    product: Product
    form: FormModel | None
    depends_on: set[str]


@dataclass
class CheckedOrder:
    items: list[CheckedItem]

    def external_ids(self) -> set[str]:
        """Existing subscriptions the order touches or points at."""
        ids: set[str] = set()
        for it in self.items:
            if it.request.service_id:
                ids.add(it.request.service_id)
            if it.form is not None:
                ids.update(r.value for r in references_in(it.form) if not is_item_ref(r.value))
            elif it.action == Action.MODIFY:
                # Not validated yet (it merges with the subscription's inputs): any
                # subscription id among its values may be a reference.
                ids.update(v for v in _strings(dict(it.request.characteristics)) if UUID_RE.match(v))
        return ids


SUPPORTED_ACTIONS = {Action.ADD, Action.MODIFY, Action.DELETE}


def _refuse_field(code: str, reason: str, item_id: str, problem: str, where: str = "") -> OrderRefused:
    return OrderRefused(code, reason, [{"item": item_id, "field": where, "problem": problem}])


def _product_of(req: RequestedItem) -> Product:
    if not req.product_id:
        raise _refuse_field(
            "missingProduct",
            f"Item {req.item_id} names no product: set service.serviceSpecification.id.",
            req.item_id,
            "serviceSpecification.id is required",
            "service.serviceSpecification.id",
        )
    try:
        product = get_product(req.product_id)
    except UnknownProduct as exc:
        raise _refuse_field(
            "unknownProduct",
            f"Item {req.item_id}: {exc}.",
            req.item_id,
            str(exc),
            "service.serviceSpecification.id",
        ) from None
    return product


def _characteristics_dict(req: RequestedItem) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in req.characteristics:
        if name in values:
            raise _refuse_field(
                "duplicateCharacteristic",
                f"Item {req.item_id} gives characteristic {name!r} twice.",
                req.item_id,
                "duplicate name",
                f"serviceCharacteristic.{name}",
            )
        values[name] = value
    return values


def _form_problems(exc: ValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        out.append({"field": loc or "(form)", "problem": err.get("msg", "invalid")})
    return out


def _validate_form(req: RequestedItem, product: Product) -> FormModel:
    try:
        return product.validate_form(_characteristics_dict(req))
    except ValidationError as exc:
        problems = _form_problems(exc)
        for p in problems:
            p["item"] = req.item_id
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:3])
        raise OrderRefused(
            "invalidCharacteristics",
            f"Item {req.item_id} does not fit the order form of {product.id}: {summary}.",
            problems,
        ) from None


def _check_item(req: RequestedItem) -> CheckedItem:
    try:
        action = Action(req.action)
    except ValueError:
        action = None
    if action not in SUPPORTED_ACTIONS:
        raise _refuse_field(
            "unsupportedAction",
            f"Item {req.item_id}: action {req.action!r} is not supported (add, modify, delete).",
            req.item_id,
            "unsupported action",
            "action",
        )
    assert action is not None
    product = _product_of(req)
    if action == Action.ADD and product.status == "end of life":
        raise _refuse_field(
            "productNotOrderable",
            f"Item {req.item_id}: product {product.id} is end of life and cannot be ordered.",
            req.item_id,
            "end of life",
            "service.serviceSpecification.id",
        )
    if action in (Action.MODIFY, Action.DELETE) and not req.service_id:
        raise _refuse_field(
            "missingServiceId",
            f"Item {req.item_id}: a {action} must name the subscription in service.id.",
            req.item_id,
            "service.id is required",
            "service.id",
        )
    if req.service_id and not UUID_RE.match(req.service_id):
        raise _refuse_field(
            "unknownSubscription",
            f"Item {req.item_id}: {req.service_id!r} is not a subscription id.",
            req.item_id,
            "not a subscription id",
            "service.id",
        )
    if action == Action.ADD:
        return CheckedItem(req, action, product, _validate_form(req, product), set(req.depends_on))
    # A modify names only what changes; it is validated once merged with the
    # subscription's current inputs (in resolve). A delete has no form.
    _characteristics_dict(req)
    return CheckedItem(req, action, product, None, set(req.depends_on))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _check_item_references(items: dict[str, CheckedItem]) -> None:
    for it in items.values():
        if it.form is None:
            if it.action == Action.MODIFY:
                for value in _strings(dict(it.request.characteristics)):
                    if is_item_ref(value) and value.removeprefix(ITEM_REF_PREFIX) in items:
                        it.depends_on.add(value.removeprefix(ITEM_REF_PREFIX))
            continue
        for ref in references_in(it.form):
            if not is_item_ref(ref.value):
                continue
            target_id = ref.value.removeprefix(ITEM_REF_PREFIX)
            target = items.get(target_id)
            where = f"serviceCharacteristic.{ref.path}"
            if target is None:
                raise _refuse_field(
                    "unknownItemReference",
                    f"Item {it.request.item_id}: {ref.path} points at item {target_id}, "
                    "which is not in this order.",
                    it.request.item_id,
                    "no such item",
                    where,
                )
            if target.action != Action.ADD or target.product.product_type != ref.product_type:
                raise _refuse_field(
                    "wrongReferenceType",
                    f"Item {it.request.item_id}: {ref.path} must point at an item that adds a "
                    f"{ref.product_type.value}; item {target_id} {target.action}s a "
                    f"{target.product.product_type.value}.",
                    it.request.item_id,
                    "wrong product type",
                    where,
                )
            # Using what another item creates means waiting for it.
            it.depends_on.add(target_id)


def _check_dependencies(items: dict[str, CheckedItem]) -> None:
    for it in items.values():
        for dep in it.depends_on:
            if dep not in items:
                raise _refuse_field(
                    "unknownDependency",
                    f"Item {it.request.item_id} depends on item {dep}, which is not in this order.",
                    it.request.item_id,
                    "dependsOn points nowhere",
                    "orderItemRelationship",
                )
            if dep == it.request.item_id:
                raise _refuse_field(
                    "dependencyCycle",
                    f"Item {dep} depends on itself.",
                    dep,
                    "cycle",
                    "orderItemRelationship",
                )
    cycle = _find_cycle({k: v.depends_on for k, v in items.items()})
    if cycle:
        path = " -> ".join(cycle)
        raise OrderRefused(
            "dependencyCycle",
            f"The items' dependsOn relations form a cycle: {path}.",
            [{"item": cycle[0], "field": "orderItemRelationship", "problem": f"cycle {path}"}],
        )


def _find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        color[node] = grey
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if color.get(nxt) == grey:
                return [*stack[stack.index(nxt) :], nxt]
            if color.get(nxt) == white:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        color[node] = black
        return None

    for node in sorted(graph):
        if color[node] == white:
            found = visit(node)
            if found:
                return found
    return None


def check_structure(requested: list[RequestedItem], *, max_items: int) -> CheckedOrder:
    if not requested:
        raise OrderRefused("emptyOrder", "The order has no serviceOrderItem.")
    if len(requested) > max_items:
        raise OrderRefused(
            "orderTooLarge",
            f"The order has {len(requested)} items; at most {max_items} are accepted in one order.",
        )
    items: dict[str, CheckedItem] = {}
    for req in requested:
        if req.item_id in items:
            raise _refuse_field(
                "duplicateItemId", f"Two items have the id {req.item_id!r}.", req.item_id, "duplicate", "id"
            )
        items[req.item_id] = _check_item(req)
    touched: dict[str, str] = {}
    for it in items.values():
        sid = it.request.service_id
        if sid and it.action in (Action.MODIFY, Action.DELETE):
            if sid in touched:
                raise _refuse_field(
                    "duplicateTarget",
                    f"Items {touched[sid]} and {it.request.item_id} both change subscription {sid}.",
                    it.request.item_id,
                    "one item per subscription",
                    "service.id",
                )
            touched[sid] = it.request.item_id
    _check_item_references(items)
    _check_dependencies(items)
    return CheckedOrder(list(items.values()))


def _check_target(it: CheckedItem, view: SubscriptionView | None) -> None:
    sid = it.request.service_id
    assert sid is not None
    if view is None:
        raise _refuse_field(
            "unknownSubscription",
            f"Item {it.request.item_id}: there is no subscription {sid}.",
            it.request.item_id,
            "no such subscription",
            "service.id",
        )
    if view.status == LifecycleStatus.TERMINATED:
        raise _refuse_field(
            "subscriptionTerminated",
            f"Item {it.request.item_id}: subscription {sid} is terminated; it cannot be changed.",
            it.request.item_id,
            "terminated",
            "service.id",
        )
    if view.product_type != it.product.product_type:
        raise _refuse_field(
            "wrongProduct",
            f"Item {it.request.item_id}: subscription {sid} is a {view.product_type}, "
            f"not a {it.product.product_type.value}.",
            it.request.item_id,
            "product type differs",
            "service.serviceSpecification.id",
        )
    if it.action == Action.MODIFY and view.product_id != it.product.id:
        raise _refuse_field(
            "wrongProduct",
            f"Item {it.request.item_id}: subscription {sid} is product {view.product_id}; a modify "
            f"keeps the product, so name {view.product_id}.",
            it.request.item_id,
            "product differs",
            "service.serviceSpecification.id",
        )


def _check_not_in_use(it: CheckedItem, view: SubscriptionView, deleted: set[str]) -> None:
    users = [u for u in view.in_use_by if u not in deleted]
    if users:
        raise OrderRefused(
            "subscriptionInUse",
            f"Item {it.request.item_id}: subscription {view.id} cannot be deleted while "
            f"{len(users)} active subscription(s) depend on it: {', '.join(users)}.",
            [
                {
                    "item": it.request.item_id,
                    "field": "service.id",
                    "problem": "in use",
                    "inUseBy": users,
                }
            ],
            status=409,
        )


def _check_reference(
    it: CheckedItem, path: str, ptype: ProductType, view: SubscriptionView | None, value: str
) -> None:
    where = f"serviceCharacteristic.{path}"
    if view is None:
        raise _refuse_field(
            "unknownSubscription",
            f"Item {it.request.item_id}: {path} points at subscription {value}, which does not exist.",
            it.request.item_id,
            "no such subscription",
            where,
        )
    if view.product_type != ptype:
        raise _refuse_field(
            "wrongReferenceType",
            f"Item {it.request.item_id}: {path} must be a {ptype.value} subscription; "
            f"{value} is a {view.product_type}.",
            it.request.item_id,
            "wrong product type",
            where,
        )
    if view.status != LifecycleStatus.ACTIVE:
        raise _refuse_field(
            "subscriptionNotActive",
            f"Item {it.request.item_id}: {path} points at subscription {value}, "
            f"which is {view.status}, not active.",
            it.request.item_id,
            "not active",
            where,
        )


def resolve(
    checked: CheckedOrder,
    views: Mapping[str, SubscriptionView],
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> list[Item]:
    """Check what the order points at and produce the items to store.

    Added items get their subscription id now, so other items of the same order can
    point at them (``#itemId`` is replaced by that id).
    """
    deleted = {it.request.service_id for it in checked.items if it.action == Action.DELETE}
    deleted.discard(None)
    subscription_of: dict[str, str] = {}
    for it in checked.items:
        if it.action == Action.ADD:
            subscription_of[it.request.item_id] = new_id()
        else:
            _check_target(it, views.get(it.request.service_id or ""))
            assert it.request.service_id is not None
            subscription_of[it.request.item_id] = it.request.service_id
            if it.action == Action.DELETE:
                _check_not_in_use(it, views[it.request.service_id], {d for d in deleted if d})
    items = []
    for it in checked.items:
        characteristics: dict[str, Any] = {}
        kept: set[str] = set()
        if it.action == Action.MODIFY:
            assert it.request.service_id is not None
            view = views[it.request.service_id]
            it.form = _merged_form(it, view)
            # What the subscription already pointed at was checked when it was made.
            kept = set(_strings(dict(view.characteristics)))
        if it.form is not None:
            for ref in references_in(it.form):
                if not is_item_ref(ref.value) and ref.value not in kept:
                    _check_reference(it, ref.path, ref.product_type, views.get(ref.value), ref.value)
            characteristics = it.form.model_dump(mode="json")
            for ref in references_in(it.form):
                if is_item_ref(ref.value):
                    target = subscription_of[ref.value.removeprefix(ITEM_REF_PREFIX)]
                    _set_path(characteristics, ref.path, target)
        items.append(
            Item(
                item_id=it.request.item_id,
                action=it.action,
                product_id=it.product.id,
                subscription_id=subscription_of[it.request.item_id],
                characteristics=characteristics,
                depends_on=tuple(sorted(it.depends_on)),
            )
        )
    return items


def _merged_form(it: CheckedItem, view: SubscriptionView) -> FormModel:
    """The subscription's inputs with the modify's changes on top, validated."""
    given = _characteristics_dict(it.request)
    merged = {**dict(view.characteristics), **given}
    form = _validate_form(
        RequestedItem(
            it.request.item_id,
            it.request.action,
            it.request.product_id,
            it.request.service_id,
            tuple(merged.items()),
            it.request.depends_on,
        ),
        it.product,
    )
    if it.product.product_type not in (ProductType.L2VPN, ProductType.L2_POINT_TO_POINT):
        before = {
            r.path: r.value for r in references_in(it.product.validate_form(dict(view.characteristics)))
        }
        moved = [r.path for r in references_in(form) if before.get(r.path) != r.value]
        if moved:
            raise _refuse_field(
                "immutableCharacteristic",
                f"Item {it.request.item_id}: {', '.join(moved)} cannot change on a modify; "
                "delete the subscription and order a new one.",
                it.request.item_id,
                "immutable",
                f"serviceCharacteristic.{moved[0]}",
            )
    return form


_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _set_path(document: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at a path like ``saps[1].port`` (as :func:`references_in` gives)."""
    keys: list[str | int] = [name if name else int(index) for name, index in _PATH_TOKEN.findall(path)]
    node: Any = document
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
