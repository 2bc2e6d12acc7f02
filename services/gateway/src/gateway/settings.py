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
    upstream_timeout_seconds: float = Field(
        default=30.0, validation_alias="UPSTREAM_TIMEOUT_SECONDS"
    )
    upstream_pool_size: int = Field(default=256, validation_alias="UPSTREAM_POOL_SIZE")
    # Larger request bodies are refused with 413 `request_too_large` before they are read:
    # by Content-Length at once, a chunked body as soon as it grows past the limit.
    max_request_body_bytes: int = Field(
        default=1_048_576, ge=1, validation_alias="MAX_REQUEST_BODY_BYTES"
    )

    # --- authentication ---------------------------------------------------------------
    # "k1:secret1,k2:secret2", the same as the tokens service's (bos_common.session_tokens).
    session_secrets: str = Field(validation_alias="BOS_SESSION_SECRETS", min_length=1)
    # Revocations and organization changes arrive on this replica's own queue.
    amqp_url: str = Field(validation_alias="AMQP_URL")
    # How long a resolved API key is trusted without asking the tokens service again
    # (a revocation reaches the cache through api_key.revoked.v1 sooner).
    api_key_cache_seconds: float = Field(
        default=30.0, ge=0, validation_alias="API_KEY_CACHE_SECONDS"
    )
    # Full reload of revocations and organization settings, on top of the events.
    auth_state_reload_seconds: float = Field(
        default=300.0, gt=0, validation_alias="AUTH_STATE_RELOAD_SECONDS"
    )

    # --- rate limits (docs/api.md "Rate limits"; per organization: PATCH /admin/organizations)
    rate_limit_enabled: bool = Field(default=True, validation_alias="RATE_LIMIT_ENABLED")
    rate_limit_api_key: str = Field(default="100/second", validation_alias="RATE_LIMIT_API_KEY")
    rate_limit_session: str = Field(default="60/minute", validation_alias="RATE_LIMIT_SESSION")
    rate_limit_ip: str = Field(default="60/minute", validation_alias="RATE_LIMIT_IP")
    # Unset: counters in this process's memory. `redis://host:6379/0`: shared by replicas.
    rate_limit_storage_url: str | None = Field(
        default=None, validation_alias="RATE_LIMIT_STORAGE_URL"
    )
    # Load balancers in front of the gateway that append to X-Forwarded-For: the client IP
    # is the entry this many places from the right (0: the TCP peer).
    trusted_proxy_count: int = Field(default=0, ge=0, le=10, validation_alias="TRUSTED_PROXY_COUNT")

    def upstreams(self) -> dict[str, str]:
        return {
            "tokens": self.tokens_url,
            "catalog": self.catalog_url,
            "checkout": self.checkout_url,
            "subscriptions": self.subscriptions_url,
            "webhooks": self.webhooks_url,
        }
