from gateway.openapi import merge_openapi


def doc(paths: dict, schemas: dict) -> dict:
    return {"paths": paths, "components": {"schemas": schemas}}


def test_only_public_paths_are_merged() -> None:
    merged = merge_openapi(
        {
            "catalog": doc({"/v1/products": {"get": {}}, "/internal/snapshot": {"get": {}}}, {}),
            "webhooks": doc({"/v1/webhooks/stripe": {"post": {}}}, {}),
        }
    )
    assert set(merged["paths"]) == {"/v1/products", "/v1/webhooks/stripe"}


def test_clashing_schema_names_are_renamed_with_their_references() -> None:
    ref = {"$ref": "#/components/schemas/Item"}
    merged = merge_openapi(
        {
            "catalog": doc({"/v1/products": {"get": {"x": ref}}}, {"Item": {"title": "A"}}),
            "checkout": doc(
                {"/v1/checkout-sessions": {"get": {"x": ref}}}, {"Item": {"title": "B"}}
            ),
        }
    )
    schemas = merged["components"]["schemas"]
    assert schemas["Item"] == {"title": "A"}
    assert schemas["CheckoutItem"] == {"title": "CheckoutItem"}
    assert merged["paths"]["/v1/checkout-sessions"]["get"]["x"] == {
        "$ref": "#/components/schemas/CheckoutItem"
    }
    assert merged["paths"]["/v1/checkout-sessions"]["get"]["tags"] == ["checkout"]


def test_identical_schemas_are_kept_once() -> None:
    merged = merge_openapi(
        {"a": doc({}, {"Error": {"title": "E"}}), "b": doc({}, {"Error": {"title": "E"}})}
    )
    assert list(merged["components"]["schemas"]) == ["Error"]
