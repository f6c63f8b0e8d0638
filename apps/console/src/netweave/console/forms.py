"""Order forms for the browser: a product's JSON Schema as a list of fields, and refusals as field errors.

The pages render forms from these field descriptors rather than from raw JSON Schema,
so the browser needs no schema library: ``$ref`` and ``anyOf [T, null]`` are resolved
here, once, in Python where they are tested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from netweave.contracts.catalog import REF_KEY, Product

STANDARD_SPEEDS_MBPS = (100, 1_000, 10_000, 25_000, 40_000, 100_000)
_INDEX = re.compile(r"\[(\d+)\]")
# Paths of a refusal that name the order or item rather than a field of its form.
_NOT_A_FORM_FIELD = {"", "(form)", "action", "id", "orderItemRelationship"}


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return {**defs[ref.removeprefix("#/$defs/")], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _without_null(node: dict[str, Any], defs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The non-null branch of ``anyOf [T, null]``, and whether null was allowed."""
    options = node.get("anyOf")
    if not isinstance(options, list):
        return _resolve(node, defs), False
    real = [o for o in options if o.get("type") != "null"]
    nullable = len(real) < len(options)
    if len(real) != 1:
        return node, nullable
    merged = {**_resolve(real[0], defs), **{k: v for k, v in node.items() if k != "anyOf"}}
    return merged, nullable


def _kind(node: dict[str, Any]) -> str:
    if REF_KEY in node:
        return "ref"
    if "enum" in node:
        return "enum"
    if node.get("type") == "array":
        return "array"
    if node.get("type") in ("integer", "number", "boolean"):
        return str(node["type"])
    return "string"


_WORDS = {
    "lldp": "LLDP",
    "mtu": "MTU",
    "saps": "SAPs",
    "sap": "SAP",
    "vlan": "VLAN",
    "isis": "IS-IS",
    "mbps": "(Mbit/s)",
    "bum": "BUM",
    "a": "A",
    "b": "B",
    "id": "id",
    "ims": "IMS",
    "nrm": "NRM",
    "v4": "IPv4",
    "v6": "IPv6",
    "vni": "VNI",
    "ipv4": "IPv4",
    "ipv6": "IPv6",
}


def _label(name: str) -> str:
    """``isis_metric`` -> ``IS-IS metric``: the field name, spelled as network engineers do."""
    words = [_WORDS.get(w, w) for w in name.split("_")]
    first = words[0]
    return " ".join([first[:1].upper() + first[1:], *words[1:]])


def _node_field_of(name: str, names: set[str]) -> str | None:
    """``interface`` sits on ``node``, ``a_interface`` on ``a_node``: the pair the form declares."""
    if name == "interface":
        candidate = "node"
    elif name.endswith("_interface"):
        candidate = name.removesuffix("_interface") + "_node"
    else:
        return None
    return candidate if candidate in names else None


_CONSTRAINTS = {
    "minimum": "minimum",
    "maximum": "maximum",
    "exclusiveMinimum": "exclusive_minimum",
    "exclusiveMaximum": "exclusive_maximum",
    "pattern": "pattern",
    "minLength": "min_length",
    "maxLength": "max_length",
    "minItems": "min_items",
    "maxItems": "max_items",
}


def _field(
    name: str, raw: dict[str, Any], required: bool, siblings: set[str], defs: dict[str, Any]
) -> dict[str, Any]:
    node, nullable = _without_null(raw, defs)
    kind = _kind(node)
    out: dict[str, Any] = {
        "name": name,
        "label": _label(name),
        "description": node.get("description", ""),
        "kind": kind,
        "required": required,
        "nullable": nullable,
    }
    if "default" in node:
        out["default"] = node["default"]
    for key, target in _CONSTRAINTS.items():
        if key in node:
            out[target] = node[key]
    if kind == "enum":
        out["enum"] = list(node["enum"])
    if kind == "ref":
        out["ref"] = node[REF_KEY]
    node_field = _node_field_of(name, siblings)
    if node_field is not None:
        out["kind"] = "interface"
        out["node_field"] = node_field
    if kind == "array":
        items = _resolve(node.get("items", {}), defs)
        out["items"] = _object_fields(items, defs) if items.get("type") == "object" else []
    if kind == "integer" and name == "speed_mbps":
        out["suggestions"] = speed_choices(out.get("minimum"), out.get("maximum"))
    return out


def _object_fields(schema: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    names = set(properties)
    return [_field(name, raw, name in required, names, defs) for name, raw in properties.items()]


def form_fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The fields of an order form, in declaration order, with their constraints."""
    return _object_fields(schema, schema.get("$defs", {}))


def speed_choices(minimum: int | None, maximum: int | None) -> list[int]:
    """The usual line rates within the bounds a form allows."""
    low = minimum if minimum is not None else 0
    high = maximum if maximum is not None else max(STANDARD_SPEEDS_MBPS)
    return [s for s in STANDARD_SPEEDS_MBPS if low <= s <= high]


def product_form(product: Product) -> dict[str, Any]:
    """What the new-order page needs of one product."""
    schema = product.form_schema()
    return {
        "id": product.id,
        "name": product.name,
        "description": product.description,
        "product_type": product.product_type.value,
        "status": product.status,
        "fixed_inputs": dict(product.fixed_inputs),
        "depends_on": [t.value for t in product.definition.depends_on],
        "fields": form_fields(schema),
        "schema": schema,
    }


def console_path(api_field: str) -> str | None:
    """Where a refusal's ``field`` is on the form (``saps.0.port``), or None for the whole order.

    The order API names form fields two ways: pydantic's location (``saps.0.vlan``) and a
    reference's path (``serviceCharacteristic.saps[0].port``).
    """
    path = api_field.strip()
    if path.startswith("service.") and not path.startswith("serviceCharacteristic"):
        return None
    path = path.removeprefix("serviceCharacteristic").lstrip(".")
    path = _INDEX.sub(r".\1", path).strip(".")
    if path in _NOT_A_FORM_FIELD or path.startswith("body") or path.startswith("("):
        return None
    return path


@dataclass
class FieldErrors:
    """A refusal laid out for the form: messages by field path, and the rest for the top."""

    fields: dict[str, str] = field(default_factory=dict)
    top: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"fields": self.fields, "top": self.top}


def field_errors(error: dict[str, Any]) -> FieldErrors:
    """Place a TMF Error's details on the form; its reason goes with a lone field, else at the top."""
    reason = str(error.get("reason") or error.get("message") or "The order was refused.")
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    placed: dict[str, str] = {}
    for detail in details:
        path = console_path(str(detail.get("field", "")))
        if path is not None:
            problem = str(detail.get("problem") or reason)
            placed[path] = f"{placed[path]}; {problem}" if path in placed else problem
    result = FieldErrors()
    if len(placed) == 1:
        result.fields = dict.fromkeys(placed, reason)
        return result
    result.fields = placed
    result.top = [reason]
    return result
