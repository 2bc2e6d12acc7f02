from functools import cached_property
from typing import ClassVar

from pydantic import AliasChoices, Field

from bos_common.settings import ServiceSettings


class WebhooksSettings(ServiceSettings):
    service_name: ClassVar[str] = "webhooks"

    # A platform runs two Stripe webhook endpoints, each with its own signing secret: the
    # account endpoint (the platform's own events) and the Connect endpoint (connected
    # accounts' events). Comma-separated: during a rotation the old and the new secret of an
    # endpoint both verify. The singular names are accepted too.
    stripe_webhook_secrets: str = Field(
        validation_alias=AliasChoices("STRIPE_WEBHOOK_SECRETS", "STRIPE_WEBHOOK_SECRET"),
        min_length=1,
    )
    stripe_connect_webhook_secrets: str = Field(
        default="",
        validation_alias=AliasChoices(
            "STRIPE_CONNECT_WEBHOOK_SECRETS", "STRIPE_CONNECT_WEBHOOK_SECRET"
        ),
    )
    stripe_secret_key: str = Field(validation_alias="STRIPE_SECRET_KEY", min_length=1)
    stripe_api_base: str | None = Field(default=None, validation_alias="STRIPE_API_BASE")
    # Events of the platform account itself carry no `account`, or this id.
    stripe_platform_account_id: str | None = Field(
        default=None, validation_alias="STRIPE_PLATFORM_ACCOUNT_ID"
    )
    tokens_url: str = Field(validation_alias="TOKENS_URL")
    signature_tolerance_seconds: int = Field(
        default=300, validation_alias="WEBHOOK_TOLERANCE_SECONDS"
    )
    reconcile_interval_seconds: float = Field(
        default=300.0, validation_alias="RECONCILE_INTERVAL_SECONDS", gt=0
    )
    # How far back reconciliation looks (Stripe keeps events for 30 days).
    reconcile_window_seconds: int = Field(
        default=3 * 24 * 3600, validation_alias="RECONCILE_WINDOW_SECONDS", gt=0
    )

    # --- webhooks to merchants ---------------------------------------------------------
    # `production` (or `prod`) requires https endpoints on public addresses.
    profile: str = Field(default="dev", validation_alias="BOS_PROFILE")
    # Endpoints on private, loopback or link-local addresses: unset, allowed except in
    # production.
    merchant_webhooks_allow_private: bool | None = Field(
        default=None, validation_alias="MERCHANT_WEBHOOKS_ALLOW_PRIVATE"
    )
    # Where the objects of public events are read (their services' GET routes).
    checkout_url: str | None = Field(default=None, validation_alias="CHECKOUT_URL")
    subscriptions_url: str | None = Field(default=None, validation_alias="SUBSCRIPTIONS_URL")
    merchant_webhook_timeout_seconds: float = Field(
        default=10.0, validation_alias="MERCHANT_WEBHOOK_TIMEOUT_SECONDS", gt=0
    )
    # The first retry's delay; later ones grow fourfold up to the cap (schedule.py).
    merchant_webhook_retry_base_seconds: float = Field(
        default=30.0, validation_alias="MERCHANT_WEBHOOK_RETRY_BASE_SECONDS", gt=0
    )
    merchant_webhook_retry_cap_seconds: float = Field(
        default=12 * 3600.0, validation_alias="MERCHANT_WEBHOOK_RETRY_CAP_SECONDS", gt=0
    )
    merchant_webhook_max_attempts: int = Field(
        default=12, validation_alias="MERCHANT_WEBHOOK_MAX_ATTEMPTS", ge=1
    )
    # An endpoint whose every attempt failed for this long is disabled.
    merchant_webhook_disable_after_seconds: float = Field(
        default=3 * 24 * 3600.0, validation_alias="MERCHANT_WEBHOOK_DISABLE_AFTER_SECONDS", gt=0
    )
    # How long a rotated-out secret keeps signing beside the new one.
    merchant_webhook_secret_overlap_seconds: float = Field(
        default=24 * 3600.0, validation_alias="MERCHANT_WEBHOOK_SECRET_OVERLAP_SECONDS", gt=0
    )
    # Requests in flight: per endpoint (counted across replicas by the claim) and in all
    # (per replica).
    merchant_webhook_concurrency: int = Field(
        default=128, validation_alias="MERCHANT_WEBHOOK_CONCURRENCY", ge=1
    )
    merchant_webhook_endpoint_concurrency: int = Field(
        default=32, validation_alias="MERCHANT_WEBHOOK_ENDPOINT_CONCURRENCY", ge=1
    )
    # The merchant's e-mail when BOS disables its endpoint (without SMTP_URL: none).
    smtp_url: str | None = Field(default=None, validation_alias="SMTP_URL")
    mail_from: str = Field(default="webhooks@bos.localhost", validation_alias="MAIL_FROM")
    # How often the worker looks for due deliveries when nothing woke it.
    merchant_webhook_poll_seconds: float = Field(
        default=1.0, validation_alias="MERCHANT_WEBHOOK_POLL_SECONDS", gt=0
    )

    @property
    def is_production(self) -> bool:
        return self.profile.lower() in ("prod", "production")

    @property
    def allow_private_endpoints(self) -> bool:
        if self.merchant_webhooks_allow_private is not None:
            return self.merchant_webhooks_allow_private
        return not self.is_production

    @cached_property
    def webhook_secrets(self) -> list[str]:
        """Every secret an event may be signed with: the account endpoint's, then the
        Connect endpoint's (an event verifies against any of them)."""
        secrets = f"{self.stripe_webhook_secrets},{self.stripe_connect_webhook_secrets}"
        return list(dict.fromkeys(s.strip() for s in secrets.split(",") if s.strip()))
