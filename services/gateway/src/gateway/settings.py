from typing import ClassVar

from pydantic import Field

from bos_common.settings import CommonSettings


class GatewaySettings(CommonSettings):
    service_name: ClassVar[str] = "gateway"

    admin_token: str = Field(validation_alias="BOS_ADMIN_TOKEN", min_length=8)
    tokens_url: str = Field(validation_alias="TOKENS_URL")
    catalog_url: str = Field(validation_alias="CATALOG_URL")
    checkout_url: str = Field(validation_alias="CHECKOUT_URL")
    subscriptions_url: str = Field(validation_alias="SUBSCRIPTIONS_URL")
    webhooks_url: str = Field(validation_alias="WEBHOOKS_URL")
    upstream_timeout_seconds: float = Field(default=30.0, validation_alias="UPSTREAM_TIMEOUT_SECONDS")
    upstream_pool_size: int = Field(default=256, validation_alias="UPSTREAM_POOL_SIZE")

    def upstreams(self) -> dict[str, str]:
        return {
            "tokens": self.tokens_url,
            "catalog": self.catalog_url,
            "checkout": self.checkout_url,
            "subscriptions": self.subscriptions_url,
            "webhooks": self.webhooks_url,
        }
