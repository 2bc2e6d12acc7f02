"""Which service owns a public path. The contract's paths are fixed (docs/api.md), so the
table is static and the lookup is a dict hit on the first path segments."""

from __future__ import annotations

from typing import Final, Literal

# (first segment, second segment or "*") -> service
ROUTES: dict[tuple[str, str], str] = {
    ("admin", "organizations"): "tokens",
    ("v1", "api-keys"): "tokens",
    ("v1", "organization"): "tokens",
    ("v1", "session-tokens"): "tokens",
    ("v1", "portal-sessions"): "tokens",
    ("v1", "products"): "catalog",
    ("v1", "prices"): "catalog",
    ("v1", "coupons"): "catalog",
    ("v1", "checkout-sessions"): "checkout",
    ("v1", "customers"): "checkout",
    ("v1", "connected-account"): "checkout",
    ("checkout", "*"): "checkout",
    ("sdk", "*"): "checkout",
    ("v1", "subscriptions"): "subscriptions",
    ("v1", "invoices"): "subscriptions",
    ("v1", "entitlements"): "subscriptions",
    ("v1", "portal"): "subscriptions",
    ("portal", "*"): "subscriptions",
    ("v1", "webhooks"): "webhooks",
    ("v1", "webhook-endpoints"): "webhooks",
    ("v1", "webhook-deliveries"): "webhooks",
}


def service_for(path: str) -> str | None:
    parts = path.lstrip("/").split("/", 2)
    first = parts[0]
    second = parts[1] if len(parts) > 1 else ""
    return ROUTES.get((first, second)) or ROUTES.get((first, "*"))


def is_public_path(path: str) -> bool:
    """Paths a service may publish in the merged OpenAPI (never /internal ones)."""
    return service_for(path) is not None


# Routes a request without credentials may reach (docs/api.md): the hosted checkout page, the
# browser SDK, the portal page, Stripe's event intake (its signature is its credential)
# and, with the client secret the hosted page holds (`X-Checkout-Secret`), one checkout
# session `/v1/checkout-sessions/{id}[/...]`. Any other routed path without credentials is
# 401 `authentication_required` at the gateway: no anonymous request reaches a service's
# authenticated routes, and no body is read for it.
AnonymousAccess = Literal["anyone", "checkout_secret"]
ANONYMOUS_ROUTES: Final[dict[tuple[str, str], AnonymousAccess]] = {
    ("checkout", "*"): "anyone",
    ("sdk", "*"): "anyone",
    ("portal", "*"): "anyone",
    ("v1", "webhooks"): "anyone",
    ("v1", "checkout-sessions"): "checkout_secret",
}
CHECKOUT_SECRET_HEADER: Final = b"x-checkout-secret"


def allows_anonymous(path: str, has_checkout_secret: bool) -> bool:
    parts = path.lstrip("/").split("/", 2)
    first = parts[0]
    second = parts[1] if len(parts) > 1 else ""
    access = ANONYMOUS_ROUTES.get((first, second)) or ANONYMOUS_ROUTES.get((first, "*"))
    if access == "anyone":
        return True
    # One checkout (a third segment, its id), never the collection (creation).
    return (
        access == "checkout_secret" and has_checkout_secret and len(parts) == 3 and parts[2] != ""
    )


# What a browser credential may reach (docs/api.md "Principals"): a session token the checkout
# and the catalog's reads; a portal token only the portal. Value: the methods allowed
# (None: any). Everything else is 403 for them, whatever the service would say.
_READS = frozenset({"GET", "HEAD"})
SCOPE_ROUTES: dict[str, dict[tuple[str, str], frozenset[str] | None]] = {
    "session": {
        ("v1", "checkout-sessions"): None,
        ("v1", "products"): _READS,
        ("v1", "prices"): _READS,
        ("v1", "coupons"): _READS,
        ("checkout", "*"): None,
        ("sdk", "*"): None,
    },
    "portal": {
        ("v1", "portal"): None,
        ("portal", "*"): None,
    },
}


def scope_allows(scope: str, method: str, path: str) -> bool:
    routes = SCOPE_ROUTES.get(scope)
    if routes is None:
        return False
    parts = path.lstrip("/").split("/", 2)
    first = parts[0]
    second = parts[1] if len(parts) > 1 else ""
    key = (first, second) if (first, second) in routes else (first, "*")
    if key not in routes:
        return False
    methods = routes[key]
    return methods is None or method in methods
