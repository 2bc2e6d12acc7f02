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

    @cached_property
    def webhook_secrets(self) -> list[str]:
        """Every secret an event may be signed with: the account endpoint's, then the
        Connect endpoint's (an event verifies against any of them)."""
        secrets = f"{self.stripe_webhook_secrets},{self.stripe_connect_webhook_secrets}"
        return list(dict.fromkeys(s.strip() for s in secrets.split(",") if s.strip()))
