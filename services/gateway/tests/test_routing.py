import pytest

from gateway.routing import service_for


@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("/admin/organizations", "tokens"),
        ("/v1/session-tokens/sess_1", "tokens"),
        ("/v1/products", "catalog"),
        ("/v1/prices/price_1", "catalog"),
        ("/v1/checkout-sessions/cs_1/confirm", "checkout"),
        ("/checkout/cs_1", "checkout"),
        ("/sdk/v1/checkout.js", "checkout"),
        ("/v1/subscriptions/sub_1/cancel", "subscriptions"),
        ("/v1/portal/invoices/inv_1/pdf", "subscriptions"),
        ("/portal", "subscriptions"),
        ("/v1/webhooks/stripe", "webhooks"),
    ],
)
def test_contract_paths_route_to_their_owner(path: str, service: str) -> None:
    assert service_for(path) == service


@pytest.mark.parametrize("path", ["/", "/v1", "/v1/internal/x", "/internal/price-snapshot", "/x"])
def test_other_paths_route_nowhere(path: str) -> None:
    assert service_for(path) is None
