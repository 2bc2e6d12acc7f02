from typing import ClassVar

from pydantic import Field

from bos_common.settings import ServiceSettings


class WebhooksSettings(ServiceSettings):
    service_name: ClassVar[str] = "webhooks"

    # Comma-separated: during a rotation both the old and the new secret verify.
    stripe_webhook_secrets: str = Field(validation_alias="STRIPE_WEBHOOK_SECRETS", min_length=1)

    @property
    def webhook_secrets(self) -> list[str]:
        return [s.strip() for s in self.stripe_webhook_secrets.split(",") if s.strip()]
