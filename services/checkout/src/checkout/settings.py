from typing import ClassVar

from pydantic import Field

from bos_common.settings import ServiceSettings


class CheckoutSettings(ServiceSettings):
    service_name: ClassVar[str] = "checkout"

    stripe_secret_key: str = Field(validation_alias="STRIPE_SECRET_KEY", min_length=1)
    stripe_api_base: str | None = Field(default=None, validation_alias="STRIPE_API_BASE")
    # Where browsers load Stripe.js from: real Stripe in production, the simulator in dev.
    stripe_js_url: str = Field(
        default="https://js.stripe.com/v3/", validation_alias="STRIPE_JS_URL"
    )
    stripe_publishable_key: str = Field(
        default="pk_test_bos", validation_alias="STRIPE_PUBLISHABLE_KEY"
    )
    # The public address of the gateway, for the hosted page URL.
    public_base_url: str = Field(
        default="http://127.0.0.1:8080", validation_alias="PUBLIC_BASE_URL"
    )
    catalog_url: str = Field(validation_alias="CATALOG_URL")
    tokens_url: str = Field(validation_alias="TOKENS_URL")
    subscriptions_url: str = Field(validation_alias="SUBSCRIPTIONS_URL")
    checkout_ttl_seconds: int = Field(
        default=24 * 3600, validation_alias="CHECKOUT_TTL_SECONDS", ge=60
    )
    expiry_sweep_seconds: float = Field(default=30.0, validation_alias="EXPIRY_SWEEP_SECONDS")
    transfer_sweep_seconds: float = Field(default=60.0, validation_alias="TRANSFER_SWEEP_SECONDS")
    # How long a price snapshot from catalog may serve new checkouts when no invalidation
    # event arrives (checkout.snapshots explains the bound); 0 disables the cache.
    snapshot_cache_seconds: float = Field(
        default=5.0, validation_alias="SNAPSHOT_CACHE_SECONDS", ge=0, le=60
    )
