"""The official Stripe SDK, configured once for every service that talks to Stripe.

Only the API base and the key change between real Stripe and `tools/stripe-sim`, so the
services never know which one answers. Calls are async (`*_async` methods) over aiohttp.

`STRIPE_API_VERSION` is the one Stripe API version BOS speaks: every client built here
sends it as `Stripe-Version` on every request (raw ones included), whatever the account's
default. It is the version the locked stripe SDK was generated for (its typed params
describe exactly that version); a test fails when uv.lock brings an SDK generated for
another one, so an upgrade is a deliberate change of this line (and of the webhook
endpoints' version, deploy/README.md).
"""

from __future__ import annotations

from typing import Any

import stripe

from bos_common.errors import ServiceUnavailable

PROVIDER_UNAVAILABLE = "Payment provider unavailable, please retry"

STRIPE_API_VERSION = "2026-10-28.endive"


def stripe_client(
    api_key: str,
    api_base: str | None = None,
    *,
    timeout: float = 20.0,
    max_network_retries: int = 0,
    http_client: stripe.HTTPClient | None = None,
) -> stripe.StripeClient:
    """`max_network_retries` stays 0 by default: BOS retries at its own level with the
    same idempotency key, so a retry is never a second charge and never hidden.
    `http_client` replaces aiohttp (tests record the requests with it)."""
    base = {"api": api_base} if api_base else None
    return stripe.StripeClient(
        api_key,
        base_addresses=base,  # type: ignore[arg-type]
        stripe_version=STRIPE_API_VERSION,
        http_client=http_client or stripe.AIOHTTPClient(timeout=timeout),
        max_network_retries=max_network_retries,
    )


def is_provider_outage(exc: BaseException) -> bool:
    """Stripe could not be reached or answered 5xx/429: retryable, nothing decided."""
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError):
        return True
    return isinstance(exc, stripe.APIError) and (exc.http_status or 500) >= 500


def provider_unavailable() -> ServiceUnavailable:
    return ServiceUnavailable("payment_provider_unavailable", PROVIDER_UNAVAILABLE)


def as_dict(obj: Any) -> dict[str, Any]:
    """A Stripe object as plain nested dicts (the SDK's objects are not dicts)."""
    if obj is None:
        return {}
    if hasattr(obj, "to_dict"):
        return dict(obj.to_dict())
    return dict(obj)
