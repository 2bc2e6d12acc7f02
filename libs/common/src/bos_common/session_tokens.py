"""Session and portal tokens: the one implementation of their format (docs/api.md "Session
tokens"), shared by the tokens service (which mints them) and the gateway (which
verifies them locally, with no network hop).

    bos_session_{payload}.{signature}

`payload` is base64url (no padding) of a JSON object of JWT registered claims:
`iss`, `sub` (the external user id; the customer id for a portal token), `org`, `jti`
(`sess_...` or `ps_...`), `iat`, `exp`, `scope` (`session` or `portal`), `kid` (which
secret signed it) and, for a portal token, `cus` (the customer it is bound to).
`signature` is base64url of HMAC-SHA256 of the payload text under the secret `kid` names.

Secrets come from `BOS_SESSION_SECRETS="k1:secret1,k2:secret2"`: the first signs, all
verify, so a rotation adds a key in front and drops the old one after the longest token
lifetime (24 h). Verification never parses unauthenticated JSON: the payload text must
match a key's MAC first (tried in order, constant-time), and only then is it decoded;
its `kid` must name that same key. The signature is compared as canonical base64url
text, so no alternative encoding of the same bytes verifies.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson

PREFIX: Final = "bos_session_"
ISSUER: Final = "bos"
ALGORITHM: Final = "HS256"
SCOPES: Final = frozenset({"session", "portal"})
# A token's whole text; far above a real one (~300 chars), far below a header limit.
MAX_TOKEN_LENGTH: Final = 2048
# Clock skew tolerated on `iat` between the minting and the verifying machine.
IAT_LEEWAY_SECONDS: Final = 60
MIN_SECRET_LENGTH: Final = 16

_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_KID = re.compile(r"[A-Za-z0-9_-]{1,32}")

Scope = Literal["session", "portal"]


class TokenInvalid(Exception):  # noqa: N818 - reads as a verdict: "token invalid"
    """Tampered, forged, malformed or signed by an unknown key (docs/api.md: `session_invalid`)."""


class TokenExpired(Exception):  # noqa: N818
    """Genuine but past its `exp` (docs/api.md: `session_expired`)."""

    def __init__(self, claims: Claims) -> None:
        super().__init__("token expired")
        self.claims = claims


@dataclass(frozen=True, slots=True)
class Claims:
    jti: str
    org: str
    sub: str
    scope: Scope
    iat: int
    exp: int
    kid: str
    iss: str = ISSUER
    cus: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "iss": self.iss,
            "sub": self.sub,
            "org": self.org,
            "jti": self.jti,
            "iat": self.iat,
            "exp": self.exp,
            "scope": self.scope,
            "kid": self.kid,
        }
        if self.cus is not None:
            out["cus"] = self.cus
        return out


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict: only the base64url alphabet, no padding, a valid length."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> str:
    return b64url(hmac.digest(key, payload.encode("ascii"), "sha256"))


def new_token_id(prefix: str = "sess") -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class SessionKeys:
    """The signing and verifying secrets, in order: the first signs, every one verifies."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("at least one session secret is required")
        seen: set[str] = set()
        for kid, secret in keys:
            if not _KID.fullmatch(kid):
                raise ValueError(f"invalid session key id {kid!r}")
            if kid in seen:
                raise ValueError(f"session key id {kid!r} appears twice")
            if len(secret) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"session secret {kid!r} is shorter than {MIN_SECRET_LENGTH} bytes"
                )
            seen.add(kid)
        self._keys: tuple[tuple[str, bytes], ...] = tuple(keys)
        self.signing_kid = self._keys[0][0]

    @classmethod
    def parse(cls, spec: str) -> SessionKeys:
        """`"k1:secret1,k2:secret2"` (the format of `BOS_SESSION_SECRETS`). An entry
        without a `kid:` is named by its position (`k1`, `k2`, ...), so a single bare
        secret also works."""
        keys: list[tuple[str, bytes]] = []
        for position, part in enumerate(p.strip() for p in spec.split(",")):
            if not part:
                continue
            kid, sep, secret = part.partition(":")
            if not sep:
                kid, secret = f"k{position + 1}", part
            keys.append((kid.strip(), secret.strip().encode()))
        return cls(keys)

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(kid for kid, _ in self._keys)

    # --- minting (tokens service) -------------------------------------------------

    def mint(
        self,
        *,
        org: str,
        sub: str,
        scope: Scope,
        expires_in: int,
        jti: str | None = None,
        cus: str | None = None,
        now: int | None = None,
    ) -> tuple[str, Claims]:
        """A new token and its claims, signed with the first key."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        if scope == "portal" and not cus:
            raise ValueError("a portal token is bound to a customer (cus)")
        iat = int(time.time()) if now is None else now
        claims = Claims(
            jti=jti or new_token_id("ps" if scope == "portal" else "sess"),
            org=org,
            sub=sub,
            scope=scope,
            iat=iat,
            exp=iat + expires_in,
            kid=self.signing_kid,
            cus=cus,
        )
        return self.sign(claims.to_json()), claims

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        """Encode and sign arbitrary claims (tests use this to build hostile tokens)."""
        kid = kid or self.signing_kid
        key = dict(self._keys)[kid]
        payload = b64url(orjson.dumps(claims))
        return f"{PREFIX}{payload}.{_mac(key, payload)}"

    # --- verifying (gateway) --------------------------------------------------------

    def verify(self, token: str, *, now: float | None = None) -> Claims:
        """The token's claims; raises TokenInvalid or TokenExpired."""
        if (
            not isinstance(token, str)
            or len(token) > MAX_TOKEN_LENGTH
            or not token.startswith(PREFIX)
        ):
            raise TokenInvalid("not a session token")
        payload, sep, signature = token[len(PREFIX) :].partition(".")
        if not sep or not _B64URL.fullmatch(payload) or not _B64URL.fullmatch(signature):
            raise TokenInvalid("malformed")
        kid = self._kid_that_signed(payload, signature)
        try:
            raw = orjson.loads(b64url_decode(payload))
        except (ValueError, orjson.JSONDecodeError) as exc:
            raise TokenInvalid("undecodable payload") from exc
        claims = _claims(raw, kid)
        current = time.time() if now is None else now
        if claims.iat > current + IAT_LEEWAY_SECONDS:
            raise TokenInvalid("issued in the future")
        if current >= claims.exp:
            raise TokenExpired(claims)
        return claims

    def _kid_that_signed(self, payload: str, signature: str) -> str:
        # Constant-time per key; stopping at the match reveals only which key signed,
        # which the payload says anyway (`kid`).
        for kid, key in self._keys:
            if hmac.compare_digest(_mac(key, payload), signature):
                return kid
        raise TokenInvalid("bad signature")


def _claims(raw: Any, kid: str) -> Claims:
    """Typed claims from a payload whose MAC already verified under `kid`."""
    if not isinstance(raw, dict):
        raise TokenInvalid("payload is not an object")
    if raw.get("kid") != kid:
        raise TokenInvalid("kid does not name the key that signed")
    if "alg" in raw and raw["alg"] != ALGORITHM:
        raise TokenInvalid("unsupported alg")
    if raw.get("iss") != ISSUER:
        raise TokenInvalid("wrong issuer")
    scope = raw.get("scope")
    if scope not in SCOPES:
        raise TokenInvalid("unknown scope")
    jti, org, sub = raw.get("jti"), raw.get("org"), raw.get("sub")
    if not (
        isinstance(jti, str)
        and jti
        and isinstance(org, str)
        and org
        and isinstance(sub, str)
        and sub
    ):
        raise TokenInvalid("missing claim")
    iat, exp = raw.get("iat"), raw.get("exp")
    # bool is an int in Python; a JSON true is no timestamp.
    if type(iat) is not int or type(exp) is not int or exp <= iat:
        raise TokenInvalid("bad timestamps")
    cus = raw.get("cus")
    if scope == "portal" and not (isinstance(cus, str) and cus):
        raise TokenInvalid("portal token without a customer")
    if cus is not None and not isinstance(cus, str):
        raise TokenInvalid("bad customer claim")
    return Claims(
        jti=jti,
        org=org,
        sub=sub,
        scope=scope,
        iat=iat,
        exp=exp,
        kid=kid,
        cus=cus,
    )
