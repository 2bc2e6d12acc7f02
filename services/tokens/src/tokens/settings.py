from typing import ClassVar

from pydantic import AliasChoices, Field

from bos_common.session_tokens import SessionKeys
from bos_common.settings import ServiceSettings


class TokensSettings(ServiceSettings):
    service_name: ClassVar[str] = "tokens"

    # "k1:secret1,k2:secret2": the first signs, all verify (bos_common.session_tokens).
    session_secrets: str = Field(validation_alias="BOS_SESSION_SECRETS", min_length=1)
    # Where the public URLs this service hands out (portal links) point: the gateway.
    public_url: str = Field(
        default="http://127.0.0.1:8080",
        validation_alias=AliasChoices("BOS_PUBLIC_URL", "GATEWAY_URL"),
    )
    # The checkout service owns customers; portal sessions ask it whether one exists.
    checkout_url: str | None = Field(default=None, validation_alias="CHECKOUT_URL")
    # Expired session and portal tokens are kept this long, then deleted in batches.
    session_token_retention_seconds: int = Field(
        default=86_400, ge=0, validation_alias="SESSION_TOKEN_RETENTION_SECONDS"
    )
    cleanup_interval_seconds: float = Field(
        default=300.0, gt=0, validation_alias="SESSION_CLEANUP_INTERVAL_SECONDS"
    )
    cleanup_batch_size: int = Field(
        default=50_000, ge=1, le=1_000_000, validation_alias="SESSION_CLEANUP_BATCH_SIZE"
    )

    def session_keys(self) -> SessionKeys:
        return SessionKeys.parse(self.session_secrets)
