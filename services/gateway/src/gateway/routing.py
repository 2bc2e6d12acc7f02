"""Which service owns a public path. The contract's paths are fixed (API.md), so the
table is static and the lookup is a dict hit on the first path segments."""

from __future__ import annotations

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
    ("checkout", "*"): "checkout",
    ("sdk", "*"): "checkout",
    ("v1", "subscriptions"): "subscriptions",
    ("v1", "entitlements"): "subscriptions",
    ("v1", "portal"): "subscriptions",
    ("portal", "*"): "subscriptions",
    ("v1", "webhooks"): "webhooks",
}


def service_for(path: str) -> str | None:
    parts = path.lstrip("/").split("/", 2)
    first = parts[0]
    second = parts[1] if len(parts) > 1 else ""
    return ROUTES.get((first, second)) or ROUTES.get((first, "*"))


def is_public_path(path: str) -> bool:
    """Paths a service may publish in the merged OpenAPI (never /internal ones)."""
    return service_for(path) is not None
