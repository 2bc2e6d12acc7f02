"""The gateway authenticates before it forwards (issue 15.3): over every public route the
services declare, which ones a request without credentials may reach. Everything else is
401 at the gateway, so an anonymous request never reaches a service's validation."""

from __future__ import annotations

import importlib
import re

import pytest
from fastapi.routing import APIRoute

from gateway.routing import allows_anonymous, service_for

# (module with a `router`, the service that owns it)
SERVICE_ROUTERS = [
    ("tokens.api", "tokens"),
    ("catalog.api", "catalog"),
    ("checkout.api", "checkout"),
    ("checkout.page", "checkout"),
    ("subscriptions.api", "subscriptions"),
    ("webhooks.api", "webhooks"),
]
# Open to anyone (docs/api.md): pages, their assets, the SDK, Stripe's signed event intake.
ANYONE = {
    ("GET", "/checkout/{checkout_id}"),
    ("GET", "/checkout/{checkout_id}/savings"),
    ("GET", "/portal"),
    ("POST", "/v1/webhooks/stripe"),
}
ANYONE_PREFIXES = ("/sdk/",)
# Open to the hosted page with the checkout's client secret (X-Checkout-Secret).
WITH_CHECKOUT_SECRET = {
    ("GET", "/v1/checkout-sessions/{checkout_id}"),
    ("POST", "/v1/checkout-sessions/{checkout_id}/coupon"),
    ("POST", "/v1/checkout-sessions/{checkout_id}/confirm"),
    ("POST", "/v1/checkout-sessions/{checkout_id}/confirm-free"),
    ("POST", "/v1/checkout-sessions/{checkout_id}/cancel"),
}


def public_routes() -> list[tuple[str, str, str]]:
    """(method, path template, owner) of every route a service serves to the public."""
    routes: list[tuple[str, str, str]] = []
    for module_name, owner in SERVICE_ROUTERS:
        module = importlib.import_module(module_name)
        for route in module.router.routes:
            if not isinstance(route, APIRoute) or route.path.startswith("/internal"):
                continue
            routes.extend((method, route.path, owner) for method in sorted(route.methods or ()))
    return routes


ROUTES = public_routes()


def concrete(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "x_1", template)


def test_the_services_routes_were_found() -> None:
    assert len(ROUTES) > 40
    assert ("POST", "/v1/products", "catalog") in ROUTES


@pytest.mark.parametrize(("method", "template", "owner"), ROUTES)
def test_every_public_route_is_routed_to_its_owner(method: str, template: str, owner: str) -> None:
    assert service_for(concrete(template)) == owner


@pytest.mark.parametrize(("method", "template", "owner"), ROUTES)
def test_anonymous_access_to_every_route(method: str, template: str, owner: str) -> None:
    path = concrete(template)
    if (method, template) in ANYONE or template.startswith(ANYONE_PREFIXES):
        assert allows_anonymous(path, has_checkout_secret=False)
    elif (method, template) in WITH_CHECKOUT_SECRET:
        assert allows_anonymous(path, has_checkout_secret=True)
        assert not allows_anonymous(path, has_checkout_secret=False)
    else:
        # Credentials required: a client secret does not stand in for them either.
        assert not allows_anonymous(path, has_checkout_secret=True)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/checkout-sessions",
        "/v1/checkout-sessions/",
        "/v1/products",
        "/admin/organizations",
        "/v1/portal/subscriptions",
        "/v1/portal-sessions",
    ],
)
def test_collections_and_merchant_routes_need_credentials(path: str) -> None:
    assert not allows_anonymous(path, has_checkout_secret=True)


@pytest.mark.parametrize(
    "path", ["/checkout/cs_1", "/sdk/v1/checkout.js", "/portal", "/v1/webhooks/stripe"]
)
def test_pages_the_sdk_and_stripe_need_none(path: str) -> None:
    assert allows_anonymous(path, has_checkout_secret=False)
