"""Telling the merchant that BOS disabled one of its endpoints: an e-mail to the
organization's `notification_email` (asked of tokens), sent over SMTP (aiosmtplib). The
endpoint's `disabled_reason` and `disabled_at` say it through the API in any case; the
e-mail is sent once, when the endpoint is disabled, and is lost if the relay is down then."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import aiosmtplib

from bos_common.errors import BOSError
from bos_common.internal import InternalClient
from webhooks.endpoints.rows import Endpoint

log = logging.getLogger("webhooks.merchant")

# The X-BOS-Notification header of the message (what kind of notice it is).
KIND = "webhook_endpoint_disabled"


def disabled_notice(endpoint: Endpoint, org: Mapping[str, Any], sender: str) -> EmailMessage | None:
    """The e-mail about a disabled endpoint, or None when the organization (as tokens'
    internal API answers it) has no address to write to."""
    to = org.get("notification_email")
    if not to:
        return None
    disabled_at = endpoint.disabled_at
    when = f"{disabled_at:%Y-%m-%d %H:%M} UTC" if disabled_at else "now"
    message = EmailMessage()
    message["Subject"] = "A webhook endpoint was disabled"
    message["From"] = sender
    message["To"] = to
    message["X-BOS-Notification"] = KIND
    message.set_content(
        f"Hello {org.get('name') or org.get('id')},\n\n"
        f"BOS disabled your webhook endpoint {endpoint.id} ({endpoint.url}) on {when}: "
        f"{endpoint.disabled_reason or 'its deliveries kept failing'}.\n\n"
        "Events are no longer sent to it. Once it answers again, enable it with\n"
        f'PATCH /v1/webhook-endpoints/{endpoint.id} {{"status": "enabled"}}:\n'
        "the deliveries still pending are then sent.\n"
    )
    return message


class DisabledNotifier:
    """Sends `disabled_notice` when SMTP is configured (SMTP_URL)."""

    def __init__(self, tokens: InternalClient, smtp_url: str | None, sender: str) -> None:
        self._tokens = tokens
        self._smtp = urlsplit(smtp_url) if smtp_url else None
        self._sender = sender

    async def notify(self, endpoint: Endpoint) -> bool:
        """True when an e-mail went out; never raises (logged instead)."""
        if self._smtp is None:
            return False
        try:
            _, org = await self._tokens.request("GET", f"/internal/organizations/{endpoint.org_id}")
            message = disabled_notice(endpoint, org, self._sender)
            if message is None:
                return False
            smtp = self._smtp
            tls = smtp.scheme == "smtps"
            await aiosmtplib.send(
                message,
                hostname=smtp.hostname or "127.0.0.1",
                port=smtp.port or (465 if tls else 25),
                username=smtp.username,
                password=smtp.password,
                use_tls=tls,
                start_tls=False if not tls else None,
                timeout=10,
            )
            return True
        except (BOSError, aiosmtplib.SMTPException, OSError) as exc:
            log.warning(
                "the notice of a disabled webhook endpoint was not sent: %s",
                exc,
                extra={"endpoint_id": endpoint.id, "org_id": endpoint.org_id},
            )
            return False

    async def close(self) -> None:
        await self._tokens.close()
