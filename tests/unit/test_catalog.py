"""The product catalog: products, forms, blocks and the dependency model."""

from __future__ import annotations

import jsonschema
import pytest
from pydantic import ValidationError

from netweave.contracts.catalog import (
    PRODUCT_TYPES,
    PRODUCTS,
    ProductType,
    UnknownProduct,
    get_product,
    references_in,
    service_description,
)


def test_the_portfolio_covers_every_product_type_of_the_domain() -> None:
    assert {p.product_type for p in PRODUCTS} == set(ProductType)
    ids = [p.id for p in PRODUCTS]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("product", PRODUCTS, ids=lambda p: p.id)
def test_every_order_form_is_a_valid_json_schema(product: object) -> None:
    schema = product.form_schema()  # type: ignore[attr-defined]
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["x-netweave-product"] == product.id  # type: ignore[attr-defined]


def test_dependencies_follow_from_references_in_the_forms() -> None:
    assert PRODUCT_TYPES[ProductType.NODE].depends_on == ()
    assert PRODUCT_TYPES[ProductType.PORT].depends_on == (ProductType.NODE,)
    assert PRODUCT_TYPES[ProductType.CORE_LINK].depends_on == (ProductType.NODE,)
    assert PRODUCT_TYPES[ProductType.L2_POINT_TO_POINT].depends_on == (ProductType.PORT,)
    assert PRODUCT_TYPES[ProductType.L2VPN].depends_on == (ProductType.PORT,)


def test_references_are_found_with_their_path() -> None:
    form = get_product("l2vpn").validate_form(
        {"saps": [{"port": "#a"}, {"port": "#b", "vlan": 10}, {"port": "#c"}]}
    )
    refs = list(references_in(form))
    assert [(r.path, r.value) for r in refs] == [
        ("saps[0].port", "#a"),
        ("saps[1].port", "#b"),
        ("saps[2].port", "#c"),
    ]
    assert {r.product_type for r in refs} == {ProductType.PORT}


def test_a_form_refuses_what_does_not_fit() -> None:
    port = get_product("port-10g")
    with pytest.raises(ValidationError):
        port.validate_form({"node": "#n", "interface": "eth1", "mtu": 99999})
    with pytest.raises(ValidationError):
        port.validate_form({"node": "#n", "interface": "eth1", "colour": "blue"})
    with pytest.raises(ValidationError, match="different routers"):
        get_product("core-link-10g").validate_form(
            {"a_node": "#n", "a_interface": "eth1", "b_node": "#n", "b_interface": "eth2"}
        )
    with pytest.raises(ValidationError, match="same port"):
        get_product("l2-p2p-10g").validate_form({"saps": [{"port": "#p"}, {"port": "#p"}]})
    with pytest.raises(ValidationError):
        get_product("l2-p2p-10g").validate_form({"saps": [{"port": "#p"}]})


def test_fixed_inputs_and_unknown_products() -> None:
    assert get_product("port-100g").fixed("speed_mbps") == 100_000
    assert get_product("l2-p2p-10g-protected").fixed("protection_type") == "protected"
    with pytest.raises(UnknownProduct, match="the catalog has"):
        get_product("port-400g")


def test_descriptions_follow_one_pattern() -> None:
    assert service_description("PORT", "0123456789abcdef", "acme", "host1") == "PORT 01234567 acme host1"
    assert service_description("CORE", "0123456789", "noc", "") == "CORE 01234567 noc -"
