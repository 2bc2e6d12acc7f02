"""Authentication seam of the gateway.

`Authenticator.authenticate` turns a request's credentials into the `Identity` the
gateway signs and forwards (docs/api.md "Principals"):

- `Bearer bos_session_...`: a session or portal token, verified here with no network
  hop (HMAC + expiry, bos_common.session_tokens) and checked against the replica's
  revocation set. Expired: 401 `session_expired`; revoked, tampered or unknown key:
  401 `session_invalid`.
- `Bearer sk_test_...` / `sk_live_...`: an API key, resolved by the tokens service and
  cached briefly in process (gateway.apikeys). Unknown, expired or revoked: 401
  `invalid_api_key`.
- `Bearer <BOS_ADMIN_TOKEN>`: the operator.
- no Authorization header: anonymous.
"""

from __future__ import annotations

import hmac
import time
from typing import Any, Final

from bos_common.auth import ANONYMOUS, Identity
from bos_common.errors import AuthenticationError, BOSError, ServiceUnavailable
from bos_common.internal import InternalClient
from bos_common.session_tokens import PREFIX, SessionKeys, TokenExpired, TokenInvalid
from gateway.apikeys import INVALID_API_KEY, ApiKeyCache
from gateway.origins import OriginPolicy
from gateway.settings import GatewaySettings
from gateway.state import AuthState
from gateway.sync import StateSync

SESSION_EXPIRED: Final = ("session_expired", "Session expired")
SESSION_INVALID: Final = ("session_invalid", "Session invalid")
API_KEY_PREFIXES: Final = ("sk_test_", "sk_live_")
MAX_API_KEY_LENGTH: Final = 200
# The longest a token may live (docs/api.md: expires_in <= 86400): how long a revocation
# seen only by its id is remembered.
MAX_TOKEN_LIFETIME: Final = 86_400
# Tokens whose signature already verified on this replica, with their identity: a
# browser sends the same token many times, and a repeat costs a dict lookup instead of
# an HMAC, a base64 decode, a JSON parse and a model. A changed token is another string,
# so it misses and is verified in full; expiry and revocation are checked every time.
VERIFIED_CACHE_SIZE: Final = 50_000
ADMIN: Final = Identity(principal_type="admin", principal_id="admin")


class Authenticator:
    def __init__(self, settings: GatewaySettings, *, tokens: InternalClient | None = None) -> None:
        self._admin_token = settings.admin_token.encode()
        self.keys = SessionKeys.parse(settings.session_secrets)
        self.state = AuthState()
        self.tokens = tokens or InternalClient(
            settings.tokens_url, caller="gateway", secret=settings.internal_secret, timeout=2.0
        )
        self.api_keys = ApiKeyCache(self._resolve_api_key, ttl=settings.api_key_cache_seconds)
        self.origins = OriginPolicy(self.state, self._organizations_allowing)
        self._verified: dict[str, tuple[Identity, int]] = {}  # token -> (identity, exp)
        self.sync = StateSync(
            settings.amqp_url,
            self.state,
            self.api_keys,
            self._snapshot,
            on_organizations_changed=self.origins.forget_confirmations,
            reload_seconds=settings.auth_state_reload_seconds,
        )

    async def authenticate(self, authorization: str | None, path: str) -> Identity:
        if not authorization:
            return ANONYMOUS
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credential:
            raise AuthenticationError(
                "invalid_authorization", "Use an Authorization: Bearer <credential> header."
            )
        if credential.startswith(PREFIX):
            return self.session_identity(credential)
        if hmac.compare_digest(credential.encode(), self._admin_token):
            return ADMIN
        if credential.startswith(API_KEY_PREFIXES) and len(credential) <= MAX_API_KEY_LENGTH:
            return await self.api_keys.identity(credential)
        raise AuthenticationError(*INVALID_API_KEY)

    def session_identity(self, token: str, *, now: float | None = None) -> Identity:
        current = time.time() if now is None else now
        cached = self._verified.get(token)
        if cached is None:
            identity, exp = self._verify(token, current)
        else:
            identity, exp = cached
            if current >= exp:
                raise AuthenticationError(*SESSION_EXPIRED)
        if not self.state.loaded:
            # Never accept a token without knowing which ones were revoked.
            raise ServiceUnavailable("auth_state_loading", "Service starting, please retry.")
        if self.state.is_revoked(identity.principal_id):  # type: ignore[arg-type]
            raise AuthenticationError(*SESSION_INVALID)
        return identity

    def _verify(self, token: str, now: float) -> tuple[Identity, int]:
        try:
            claims = self.keys.verify(token, now=now)
        except TokenExpired:
            raise AuthenticationError(*SESSION_EXPIRED) from None
        except TokenInvalid:
            raise AuthenticationError(*SESSION_INVALID) from None
        if claims.scope == "portal":
            identity = Identity(
                principal_type="portal",
                principal_id=claims.jti,
                org_id=claims.org,
                customer_id=claims.cus,
                scope="portal",
            )
        else:
            identity = Identity(
                principal_type="session",
                principal_id=claims.jti,
                org_id=claims.org,
                external_user_id=claims.sub,
                scope="session",
            )
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[token] = (identity, claims.exp)
        return identity, claims.exp

    # --- what the proxy tells us ----------------------------------------------------------

    def changed_here(self, service: str, method: str, path: str, status: int) -> None:
        """A change this replica just proxied takes effect here before its event arrives
        (other replicas learn it from the event, within milliseconds): a revocation at
        once, an organization change by dropping the origin confirmations."""
        if service != "tokens" or status != 200:
            return
        parts = path.strip("/").split("/")
        if method == "PATCH" and parts[:2] in (["v1", "organization"], ["admin", "organizations"]):
            self.origins.forget_confirmations()
        elif method == "DELETE" and len(parts) == 3 and parts[0] == "v1":
            if parts[1] == "session-tokens":
                self.state.revoke(parts[2], time.time() + MAX_TOKEN_LIFETIME)
            elif parts[1] == "api-keys":
                self.api_keys.revoke(parts[2])

    # --- the tokens service -------------------------------------------------------------

    async def _resolve_api_key(self, secret: str) -> dict[str, Any] | None:
        try:
            _, body = await self.tokens.request(
                "POST", "/internal/api-keys/resolve", json={"secret": secret}
            )
        except BOSError as exc:
            if exc.status_code == 401:
                return None
            if exc.status_code >= 500:
                raise
            raise ServiceUnavailable(
                "dependency_unavailable", "A dependency is unavailable, please retry."
            ) from exc
        assert isinstance(body, dict)
        return body

    async def _organizations_allowing(self, origin: str) -> list[dict[str, Any]]:
        _, body = await self.tokens.request(
            "GET", "/internal/gateway/organizations", params={"allowed_origin": origin}
        )
        assert isinstance(body, list)
        return body

    async def _snapshot(self) -> dict[str, Any]:
        _, body = await self.tokens.request("GET", "/internal/gateway/snapshot")
        assert isinstance(body, dict)
        return body

    async def start(self) -> None:
        """Subscribe to revocations and load the current state (in the background: the
        gateway starts even while the tokens service is not up yet)."""
        await self.sync.start()

    async def stop(self) -> None:
        await self.sync.stop()
        await self.tokens.close()
