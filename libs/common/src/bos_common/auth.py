"""The identity the gateway forwards to services.

The gateway authenticates the caller once and forwards who it is in `X-BOS-Identity`:
base64url(JSON) + "." + base64url(HMAC-SHA256) under `BOS_INTERNAL_SECRET`. Services
trust that header only when the signature verifies and it is fresh; the gateway strips
any copy a client sends. Internal calls between services sign the same way with
principal type `service`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, ValidationError

from bos_common.errors import AuthenticationError, PermissionDenied

IDENTITY_HEADER = "x-bos-identity"
MAX_AGE_SECONDS = 300

PrincipalType = Literal["api_key", "session", "portal", "admin", "service", "anonymous"]


class Identity(BaseModel):
    model_config = ConfigDict(frozen=True)

    principal_type: PrincipalType
    principal_id: str | None = None  # key id, session id, service name
    org_id: str | None = None
    external_user_id: str | None = None
    customer_id: str | None = None
    scope: str | None = None
    iat: int = 0

    @property
    def principal_key(self) -> str:
        """Stable key for per-principal state (idempotency keys, rate limits)."""
        return f"{self.principal_type}:{self.org_id or '-'}:{self.principal_id or '-'}"


ANONYMOUS = Identity(principal_type="anonymous")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def sign_identity(identity: Identity, secret: str, *, now: float | None = None) -> str:
    stamped = identity.model_copy(update={"iat": int(now if now is not None else time.time())})
    payload = _b64(stamped.model_dump_json(exclude_none=True).encode())
    mac = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


# Verified headers, remembered per process: the gateway signs one header per identity
# and second, so a service sees the same bytes many times in a row, and the HMAC and
# JSON parse are then skipped. The age is checked on every use all the same.
_VERIFIED: dict[tuple[str, str], Identity] = {}
_VERIFIED_MAX = 4096


def verify_identity(value: str, secret: str, *, now: float | None = None) -> Identity | None:
    """The identity in a header value, or None when it is forged, stale or malformed."""
    identity = _VERIFIED.get((secret, value))
    if identity is None:
        identity = _verify_signature(value, secret)
        if identity is None:
            return None
        if len(_VERIFIED) >= _VERIFIED_MAX:
            _VERIFIED.clear()
        _VERIFIED[(secret, value)] = identity
    age = (now if now is not None else time.time()) - identity.iat
    if age > MAX_AGE_SECONDS or age < -MAX_AGE_SECONDS:
        return None
    return identity


def _verify_signature(value: str, secret: str) -> Identity | None:
    payload, _, mac = value.partition(".")
    if not payload or not mac:
        return None
    expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(expected, _unb64(mac)):
            return None
        return Identity.model_validate_json(_unb64(payload))
    except (ValueError, ValidationError):
        return None


def request_identity(request: Request, secret: str) -> Identity:
    """The caller's identity (anonymous when the gateway sent none)."""
    cached = request.scope.get("bos.identity")
    if isinstance(cached, Identity):
        return cached
    header = request.headers.get(IDENTITY_HEADER)
    identity = ANONYMOUS
    if header:
        verified = verify_identity(header, secret)
        if verified is None:
            raise AuthenticationError("invalid_identity", "Request identity could not be verified.")
        identity = verified
    request.scope["bos.identity"] = identity
    return identity


def require(identity: Identity, *types: PrincipalType) -> Identity:
    if identity.principal_type == "anonymous":
        raise AuthenticationError("authentication_required", "Authentication required.")
    if types and identity.principal_type not in types:
        raise PermissionDenied("forbidden", "This credential cannot perform this action.")
    return identity


def require_org(identity: Identity, *types: PrincipalType) -> str:
    """`require`, then the organization the credential acts for (403 without one)."""
    require(identity, *types)
    if not identity.org_id:
        raise PermissionDenied("forbidden", "This credential has no organization.")
    return identity.org_id
