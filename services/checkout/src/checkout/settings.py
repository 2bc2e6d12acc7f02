from typing import ClassVar, Self

from pydantic import Field, model_validator

from bos_common.settings import ServiceSettings

# The development default: the simulator accepts it, Stripe does not.
TEST_PUBLISHABLE_KEY = "pk_test_bos"
PRODUCTION_PROFILES = ("prod", "production")


class CheckoutSettings(ServiceSettings):
    service_name: ClassVar[str] = "checkout"

    stripe_secret_key: str = Field(validation_alias="STRIPE_SECRET_KEY", min_length=1)
    stripe_api_base: str | None = Field(default=None, validation_alias="STRIPE_API_BASE")
    # Where browsers load Stripe.js from: real Stripe in production, the simulator in dev.
    stripe_js_url: str = Field(
        default="https://js.stripe.com/v3/", validation_alias="STRIPE_JS_URL"
    )
    stripe_publishable_key: str = Field(
        default=TEST_PUBLISHABLE_KEY, validation_alias="STRIPE_PUBLISHABLE_KEY"
    )
    # `production` (deploy/k8s/overlays/prod) refuses development defaults at start.
    profile: str = Field(default="dev", validation_alias="BOS_PROFILE")
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
    # How long a free confirm waits for the subscription before answering `processing`.
    free_confirm_wait_seconds: float = Field(
        default=5.0, validation_alias="FREE_CONFIRM_WAIT_SECONDS", ge=0, le=30
    )
    expiry_sweep_seconds: float = Field(default=30.0, validation_alias="EXPIRY_SWEEP_SECONDS")
    transfer_sweep_seconds: float = Field(default=60.0, validation_alias="TRANSFER_SWEEP_SECONDS")
    # A confirm renews the lease of its pending payment while it runs; a payment whose
    # lease ran out (its process died) is settled against Stripe by the recovery sweep.
    payment_lease_seconds: float = Field(
        default=6.0, validation_alias="PAYMENT_LEASE_SECONDS", gt=0, le=60
    )
    recovery_sweep_seconds: float = Field(
        default=2.0, validation_alias="RECOVERY_SWEEP_SECONDS", gt=0
    )
    # How long a price snapshot from catalog may serve new checkouts when no invalidation
    # event arrives (checkout.snapshots explains the bound); 0 disables the cache.
    snapshot_cache_seconds: float = Field(
        default=5.0, validation_alias="SNAPSHOT_CACHE_SECONDS", ge=0, le=60
    )

    @property
    def is_production(self) -> bool:
        """Production: said by BOS_PROFILE, or implied by a live Stripe secret key."""
        live_key = self.stripe_secret_key.startswith(("sk_live_", "rk_live_"))
        return self.profile.lower() in PRODUCTION_PROFILES or live_key

    @model_validator(mode="after")
    def _publishable_key_fits(self) -> Self:
        """In production the page's Stripe.js must get the account's real key: the test
        default (or a placeholder left in a manifest) would load a page that cannot pay."""
        if not self.is_production:
            return self
        key = self.stripe_publishable_key
        if key == TEST_PUBLISHABLE_KEY or "replace" in key.lower():
            raise ValueError(
                f"STRIPE_PUBLISHABLE_KEY is {key!r} in production: set the Stripe account's "
                "publishable key (pk_live_...)"
            )
        if self.stripe_secret_key.startswith(("sk_live_", "rk_live_")) != key.startswith(
            "pk_live_"
        ):
            raise ValueError(
                "STRIPE_PUBLISHABLE_KEY and STRIPE_SECRET_KEY are of different modes (live/test)"
            )
        return self
