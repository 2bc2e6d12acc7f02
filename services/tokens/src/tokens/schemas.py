"""Request and response bodies of the tokens service (docs/api.md "Organizations and keys",
"Session tokens", "Customer portal")."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from bos_common.fields import JsonInteger, Metadata, non_blank_text

# --- shared field types ----------------------------------------------------------------

RATE_LIMIT = re.compile(r"[1-9][0-9]{0,6}/(second|minute|hour)")
RATE_LIMIT_KINDS = ("api_key", "session")
MAX_ORIGINS = 50
# Postgres text and jsonb cannot hold a NUL character: refused with a 422 instead of
# failing the INSERT with a 500.
_NUL_MESSAGE = "must not contain NUL characters"


def normalize_origin(value: str) -> str:
    """`https://Shop.Example.com:443/` -> `https://shop.example.com`: the exact text a
    browser sends in `Origin`, so the gateway compares strings."""
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError("must be an origin like https://shop.example.com") from exc
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if (
        scheme not in ("http", "https")
        or not host
        or parts.username
        or parts.password
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "*" in host
    ):
        raise ValueError("must be an origin like https://shop.example.com (no path or wildcard)")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[scheme]
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")


def _origins(values: list[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        origin = normalize_origin(value)
        if origin not in out:
            out.append(origin)
    return out


def _rate_limits(values: dict[str, str]) -> dict[str, str]:
    for kind, limit in values.items():
        if kind not in RATE_LIMIT_KINDS:
            raise ValueError(f"unknown rate limit {kind!r} (use {', '.join(RATE_LIMIT_KINDS)})")
        if not RATE_LIMIT.fullmatch(limit):
            raise ValueError("a rate limit looks like '100/second', '60/minute' or '1000/hour'")
    return values


# What normalize_origin accepts, as the schema states it: http(s), a host, a port, no path.
ORIGIN_PATTERN = (
    r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
    r"(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?/?$"
)
Origin = Annotated[str, StringConstraints(pattern=ORIGIN_PATTERN)]
Origins = Annotated[list[Origin], Field(max_length=MAX_ORIGINS), AfterValidator(_origins)]
RateLimits = Annotated[
    dict[
        Literal["api_key", "session"],
        Annotated[str, StringConstraints(pattern=f"^{RATE_LIMIT.pattern}$")],
    ],
    AfterValidator(_rate_limits),
]
Name = Annotated[str, non_blank_text(200)]
# Where BOS writes to the merchant about its account (e.g. a webhook endpoint it disabled).
NotificationEmail = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
StripeAccountId = Annotated[str, StringConstraints(pattern=r"^acct_[A-Za-z0-9]{1,64}$")]
FeeBps = Annotated[int, JsonInteger(ge=0, le=10_000)]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError(_NUL_MESSAGE)
    return value


ExternalUserId = Annotated[str, non_blank_text(255), AfterValidator(_no_nul)]
CustomerId = Annotated[str, StringConstraints(pattern=r"^cus_[A-Za-z0-9_]{1,60}$")]
ExpiresIn = Annotated[int, JsonInteger(ge=60, le=86_400)]

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The anchors' rule (below) as the schema states it: weekly_anchor only with "weekly",
# monthly_anchor only with "monthly" (an absent interval is "daily").
_ANCHORS_MATCH_INTERVAL: dict[str, Any] = {
    "anyOf": [
        {
            "properties": {"interval": {"const": "weekly"}, "monthly_anchor": {"type": "null"}},
            "required": ["interval"],
        },
        {
            "properties": {"interval": {"const": "monthly"}, "weekly_anchor": {"type": "null"}},
            "required": ["interval"],
        },
        {
            "properties": {
                "interval": {"enum": ["manual", "daily"]},
                "weekly_anchor": {"type": "null"},
                "monthly_anchor": {"type": "null"},
            }
        },
    ]
}


class PayoutSchedule(_In):
    model_config = ConfigDict(json_schema_extra=_ANCHORS_MATCH_INTERVAL)

    interval: Literal["manual", "daily", "weekly", "monthly"] = "daily"
    weekly_anchor: Weekday | None = None
    monthly_anchor: Annotated[int, JsonInteger(ge=1, le=31)] | None = None
    delay_days: Annotated[int, JsonInteger(ge=0, le=30)] | None = None

    @model_validator(mode="after")
    def _anchors_match_interval(self) -> PayoutSchedule:
        if self.weekly_anchor is not None and self.interval != "weekly":
            raise ValueError("weekly_anchor is only for a weekly schedule")
        if self.monthly_anchor is not None and self.interval != "monthly":
            raise ValueError("monthly_anchor is only for a monthly schedule")
        return self


# --- requests ----------------------------------------------------------------------------


class CreateOrganization(_In):
    name: Name
    platform_fee_bps: FeeBps = 500
    allowed_origins: Origins = Field(default_factory=list)
    stripe_account_id: StripeAccountId | None = None
    payout_schedule: PayoutSchedule = Field(default_factory=PayoutSchedule)
    rate_limits: RateLimits = Field(default_factory=dict)
    notification_email: NotificationEmail | None = None
    # The first API key's mode: sk_test_ unless asked otherwise.
    livemode: StrictBool = False


class UpdateOrganization(_In):
    """PATCH /v1/organization (the merchant's own settings). Only `stripe_account_id` may
    be null (it unlinks the account); service.update_organization refuses null for the
    others, which the schema therefore does not offer."""

    name: Name | SkipJsonSchema[None] = None
    allowed_origins: Origins | SkipJsonSchema[None] = None
    platform_fee_bps: FeeBps | SkipJsonSchema[None] = None
    stripe_account_id: StripeAccountId | None = None
    payout_schedule: PayoutSchedule | SkipJsonSchema[None] = None
    notification_email: NotificationEmail | None = None


class AdminUpdateOrganization(UpdateOrganization):
    """PATCH /admin/organizations/{id}: also what only the operator may set."""

    rate_limits: RateLimits | SkipJsonSchema[None] = None


class CreateApiKey(_In):
    name: Name | None = None
    expires_at: datetime | None = None

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a timezone, e.g. 2030-01-01T00:00:00Z")
        return value


class CreateSessionToken(_In):
    external_user_id: ExternalUserId
    expires_in: ExpiresIn = 3600
    metadata: Metadata = Field(default_factory=dict)


class CreatePortalSession(_In):
    customer_id: CustomerId
    expires_in: ExpiresIn = 3600


class ResolveApiKey(_In):
    secret: Annotated[str, StringConstraints(max_length=200)]


# --- responses ---------------------------------------------------------------------------


class ApiKeyOut(BaseModel):
    id: str
    object: Literal["api_key"] = "api_key"
    name: str | None
    livemode: bool
    redacted_secret: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyWithSecret(ApiKeyOut):
    secret: str  # shown once


class ApiKeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ApiKeyOut]
    has_more: bool


class OrganizationOut(BaseModel):
    id: str
    object: Literal["organization"] = "organization"
    name: str
    platform_fee_bps: int
    allowed_origins: list[str]
    stripe_account_id: str | None
    payout_schedule: dict[str, Any]
    rate_limits: dict[str, str]
    notification_email: str | None = None
    created_at: datetime
    updated_at: datetime


class CreatedOrganization(OrganizationOut):
    api_key: ApiKeyWithSecret


class SessionTokenOut(BaseModel):
    id: str
    object: Literal["session_token"] = "session_token"
    external_user_id: str | None
    metadata: dict[str, str]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


class CreatedSessionToken(SessionTokenOut):
    token: str


class PortalSessionOut(BaseModel):
    id: str
    object: Literal["portal_session"] = "portal_session"
    token: str
    url: str
    customer_id: str
    created_at: datetime
    expires_at: datetime


class ResolvedApiKey(BaseModel):
    key_id: str
    org_id: str
    livemode: bool
    expires_at: datetime | None


class RevokedToken(BaseModel):
    id: str
    expires_at: datetime


class OrganizationGatewaySettings(BaseModel):
    id: str
    version: int
    allowed_origins: list[str]
    rate_limits: dict[str, str]


class GatewaySnapshot(BaseModel):
    """What a gateway replica needs to authenticate without asking again: the revoked,
    unexpired tokens and every organization's origins and rate limits."""

    revoked_tokens: list[RevokedToken]
    organizations: list[OrganizationGatewaySettings]
