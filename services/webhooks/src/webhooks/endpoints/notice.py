"""Telling the merchant that BOS disabled one of its endpoints: an e-mail to the
organization's `notification_email` (asked of tokens), sent over SMTP (aiosmtplib). The
endpoint's `disabled_reason` and `disabled_at` say it through the API in any case. The
e-mail is owed from the disabling's transaction on (`disabled_notice_due_at`); a worker
claims what is due with a lease (replicas skip each other's), sends it, and records it sent
or due again later with backoff, so SMTP or tokens being down only delays it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from datetime import timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import aiosmtplib

from bos_common.errors import BOSError
from bos_common.internal import InternalClient
from webhooks.endpoints import repository
from webhooks.endpoints.rows import Endpoint

log = logging.getLogger("webhooks.merchant")

# The X-BOS-Notification header of the message (what kind of notice it is).
KIND = "webhook_endpoint_disabled"
# How long a claimed notice is its sender's: well past one attempt (tokens' answer and the
# SMTP timeout); a sender past half of it leaves the rest of its batch to the next claim.
CLAIM_LEASE = timedelta(seconds=60)
SMTP_TIMEOUT_SECONDS = 10
CLAIM_BATCH = 10
# Attempts before the notice is given up (logged as an error), about a day of retries.
MAX_ATTEMPTS = 30
RETRY_CAP_SECONDS = 3600


def retry_delay(attempts: int) -> timedelta | None:
    """After `attempts` failed attempts, when to try again: doubling from 2 s, at most an
    hour apart; None once MAX_ATTEMPTS are spent."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return timedelta(seconds=min(2**attempts, RETRY_CAP_SECONDS))


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
    # One id per disabling: a notice sent again (its sender stopped before recording it
    # sent) is the same message to the receiving side.
    stamp = int(disabled_at.timestamp() * 1_000_000) if disabled_at else 0
    message["Message-ID"] = f"<{endpoint.id}.{stamp}@{sender.rpartition('@')[2] or 'bos'}>"
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
    """Sends the notices owed (`disabled_notice_due_at`) when SMTP is configured
    (SMTP_URL); without it they stay owed and the API alone says it."""

    def __init__(
        self,
        db: Any,
        tokens: InternalClient,
        smtp_url: str | None,
        sender: str,
        poll_seconds: float = 5.0,
    ) -> None:
        self.db = db
        self._tokens = tokens
        self._smtp = urlsplit(smtp_url) if smtp_url else None
        self._sender = sender
        self._poll = poll_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """An endpoint was disabled (after that commit): look now, not at the next poll."""
        self._wake.set()

    async def run_forever(self) -> None:
        if self._smtp is None:
            log.info("SMTP_URL not set: notices of disabled webhook endpoints are not sent")
            return
        while True:
            self._wake.clear()
            try:
                if await self.send_due() >= CLAIM_BATCH:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - database down: try again after a pause
                log.warning("sending notices of disabled webhook endpoints failed: %s", exc)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
            except TimeoutError:
                pass

    async def send_due(self, limit: int = CLAIM_BATCH) -> int:
        """One pass: claims the due notices and tries each; returns how many were claimed."""
        async with self.db.transaction() as session:
            notices = await repository.claim_disabled_notices(session, limit, CLAIM_LEASE)
        claimed = time.monotonic()
        for notice in notices:
            if time.monotonic() - claimed > CLAIM_LEASE.total_seconds() / 2:
                break  # the rest is claimed again when its lease ends, never sent by two
            sent = await self.notify(notice.endpoint)
            attempts = notice.attempts + 1
            retry_in = None if sent else retry_delay(attempts)
            if not sent and retry_in is None:
                log.error(
                    "the notice of a disabled webhook endpoint was given up after %d attempts",
                    attempts,
                    extra={"endpoint_id": notice.endpoint.id, "org_id": notice.endpoint.org_id},
                )
            async with self.db.transaction() as session:
                await repository.settle_disabled_notice(
                    session, notice.endpoint.id, notice.claimed_until, retry_in
                )
        return len(notices)

    async def notify(self, endpoint: Endpoint) -> bool:
        """True when the notice is settled: sent, or nothing to send (no address); False
        when it must be tried again. Never raises (logged instead)."""
        if self._smtp is None:
            return False
        try:
            _, org = await self._tokens.request("GET", f"/internal/organizations/{endpoint.org_id}")
            message = disabled_notice(endpoint, org, self._sender)
            if message is None:
                return True
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
                timeout=SMTP_TIMEOUT_SECONDS,
            )
            return True
        except (BOSError, aiosmtplib.SMTPException, OSError) as exc:
            log.warning(
                "the notice of a disabled webhook endpoint was not sent (tried again later): %s",
                exc,
                extra={"endpoint_id": endpoint.id, "org_id": endpoint.org_id},
            )
            return False

    async def close(self) -> None:
        await self._tokens.close()
