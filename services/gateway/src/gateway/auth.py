"""Authentication seam of the gateway.

`Authenticator.authenticate` turns a request's credentials into the `Identity` the
gateway signs and forwards. The foundation knows only the admin token; API keys,
session and portal tokens plug in here (tokens issue) without touching the proxy.
"""

from __future__ import annotations

import hmac

from bos_common.auth import ANONYMOUS, Identity
from bos_common.errors import AuthenticationError


class Authenticator:
    def __init__(self, admin_token: str) -> None:
        self._admin_token = admin_token.encode()

    async def authenticate(self, authorization: str | None, path: str) -> Identity:
        if not authorization:
            return ANONYMOUS
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credential:
            raise AuthenticationError(
                "invalid_authorization", "Use an Authorization: Bearer <credential> header."
            )
        if hmac.compare_digest(credential.encode(), self._admin_token):
            return Identity(principal_type="admin", principal_id="admin")
        # API keys and session tokens: the tokens issue resolves them here.
        raise AuthenticationError("invalid_api_key", "Invalid API key provided.")

    async def start(self) -> None:
        """Warm caches and subscribe to revocations (nothing yet)."""

    async def stop(self) -> None:
        """Release what start() took."""
