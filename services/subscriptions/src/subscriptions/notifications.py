"""Customer emails: subscription and invoice events become messages sent over SMTP
(aiosmtplib), from per-event templates (Jinja2, HTML and plain text) branded with the
organization's name. Rows are written in the transaction of the change they announce
(`notifications`, unique per event) and a worker sends them, retrying with backoff."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr
from typing import Any
from urllib.parse import urlsplit

import aiosmtplib
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from bos_common.errors import is_dependency_unavailable
from subscriptions import repository
from subscriptions.clock import wall_now
from subscriptions.pdf import money, render_invoice_pdf
from subscriptions.rows import Notification, Row
from subscriptions.runtime import SubscriptionsRuntime

log = logging.getLogger("bos.subscriptions.notifications")

MAX_ATTEMPTS = 10
# How long a claimed batch is its sender's: longer than sending a batch takes.
CLAIM_LEASE = timedelta(seconds=60)
# How long a pass sends before leaving the rest to the next one: well within the lease.
SEND_BUDGET = CLAIM_LEASE / 2

SUBJECTS = {
    "trial_extended": "Your {product} trial was extended",
    "trial_ending": "Your {product} trial ends soon",
    "trial_converted": "Your {product} subscription has started",
    "payment_failed": "Payment failed for {product}",
    "subscription_canceled": "Your {product} subscription was canceled",
    "subscription_reactivated": "Your {product} subscription was reactivated",
    "invoice_paid": "Receipt for {product}",
    "checkout_completed": "Your {product} order is confirmed",
}

# The kinds that are receipts of a payment: their invoice is attached.
RECEIPTS = frozenset({"invoice_paid", "checkout_completed"})

_env = Environment(
    loader=PackageLoader("subscriptions", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: str | None) -> str:
    if not value:
        return ""
    return datetime.fromisoformat(value).strftime("%B %d, %Y")


_env.filters["when"] = _when


def render(kind: str, context: Row) -> tuple[str, str, str]:
    """(subject, text, html) for one notification."""
    product = context.get("product_name", "")
    subject = SUBJECTS[kind].format(product=product)
    text = _env.get_template(f"{kind}.txt").render(**context)
    html = _env.get_template("layout.html").render(
        body=_env.get_template(f"{kind}.html").render(**context), subject=subject, **context
    )
    return subject, text, html


class Mailer:
    def __init__(self, url: str, sender: str) -> None:
        parts = urlsplit(url)
        self.hostname = parts.hostname or "127.0.0.1"
        self.port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self.username = parts.username
        self.password = parts.password
        self.use_tls = parts.scheme == "smtps"
        self.sender = sender

    async def send(self, message: EmailMessage) -> None:
        await aiosmtplib.send(
            message,
            hostname=self.hostname,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.use_tls,
            start_tls=False if not self.use_tls else None,
            timeout=10,
        )


async def build_message(
    rt: SubscriptionsRuntime, session: Any, row: Notification, sender: str
) -> EmailMessage:
    org_name = await repository.organization_name(session, row.org_id) or row.org_id
    context = dict(row.context)
    # A receipt carries its invoice as a PDF, with the number the invoice got when written.
    inv = None
    if row.kind in RECEIPTS and row.invoice_id:
        inv = await repository.get_invoice(session, row.invoice_id)
        if inv is not None:
            context["number"] = inv.number
    locale = rt.settings.invoice_locale
    for key in ("amount", "amount_due", "amount_paid"):
        if isinstance(context.get(key), int):
            context[f"{key}_display"] = money(context[key], context.get("currency", "usd"), locale)
    context.update(org_name=org_name, portal_url=f"{rt.settings.public_url}/portal")
    subject, text, html = render(row.kind, context)
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = formataddr((org_name, sender))
    message["To"] = row.to_email
    # One id per notification: a message sent again (its sender killed before recording
    # it sent) is the same message to the receiving side.
    message["Message-ID"] = f"<{row.id}@bos.localhost>"
    message["X-BOS-Notification"] = row.kind
    message["X-BOS-Dedupe-Key"] = row.dedupe_key
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    if inv is not None:
        pdf = render_invoice_pdf(
            inv, seller=org_name, locale=locale, font_path=rt.settings.invoice_font
        )
        message.add_attachment(
            pdf, maintype="application", subtype="pdf", filename=f"invoice-{inv.number}.pdf"
        )
    return message


async def send_pending(
    rt: SubscriptionsRuntime, mailer: Mailer, *, limit: int = 20, now: datetime | None = None
) -> int:
    """Send one batch of due notifications; returns how many were claimed. Due and retry
    times are real time (`wall_now`), not the billing clock; `now` is for tests."""
    now = now or wall_now()
    async with rt.db.transaction() as session:
        rows = await repository.claim_notifications(session, now, limit, CLAIM_LEASE)
    # Each one recorded as soon as it is sent: a sender killed mid-batch sends again only
    # the message it was sending, the rest when their lease runs out. Past most of the
    # lease (a slow SMTP server), the rest is left for the next pass, never sent by two.
    # A pass that stops early (that budget used, or the database failing) releases the
    # rows it never handed to the mailer, so they do not wait out the lease.
    loop = asyncio.get_running_loop()
    claimed = loop.time()
    untried = 0  # rows[untried:] were never handed to the mailer
    try:
        for index, row in enumerate(rows):
            if loop.time() - claimed > SEND_BUDGET.total_seconds():
                break
            attempts = row.attempts + 1
            async with rt.db.transaction() as session:
                try:
                    message = await build_message(rt, session, row, mailer.sender)
                except Exception as exc:
                    if is_dependency_unavailable(exc):
                        raise  # the database, not this row: the pass stops
                    await _record_failure(session, row, attempts, exc, now)
                    untried = index + 1
                    continue
                # From here on the message may be out: this row keeps its lease.
                untried = index + 1
                try:
                    await mailer.send(message)
                except Exception as exc:  # noqa: BLE001 - SMTP: retry later
                    await _record_failure(session, row, attempts, exc, now)
                    continue
                await repository.record_notification_attempt(
                    session, row.id, attempts=attempts, status="sent", sent_at=now, last_error=None
                )
    except Exception:
        await _release(rt, rows[untried:], now)
        raise
    await _release(rt, rows[untried:], now)
    return len(rows)


async def _record_failure(
    session: Any, row: Notification, attempts: int, exc: Exception, now: datetime
) -> None:
    log.warning("notification %s (%s) failed: %s", row.id, row.kind, exc)
    await repository.record_notification_attempt(
        session,
        row.id,
        attempts=attempts,
        last_error=str(exc)[:500],
        status="failed" if attempts >= MAX_ATTEMPTS else "pending",
        next_attempt_at=now + timedelta(seconds=min(2**attempts, 3600)),
    )


async def _release(rt: SubscriptionsRuntime, rows: list[Notification], now: datetime) -> None:
    """Best effort: with the database down this fails too, and the lease is the fallback."""
    if not rows:
        return
    try:
        async with rt.db.transaction() as session:
            await repository.release_notifications(
                session, [row.id for row in rows], leased_until=now + CLAIM_LEASE, due=now
            )
    except Exception as exc:  # noqa: BLE001 - the lease runs out instead
        log.warning("releasing %d notifications failed: %s", len(rows), exc)


async def notification_loop(rt: SubscriptionsRuntime) -> None:
    if not rt.settings.smtp_url:
        log.info("SMTP_URL not set: notifications are recorded, not sent")
        return
    mailer = Mailer(rt.settings.smtp_url, rt.settings.mail_from)
    while True:
        try:
            if await send_pending(rt, mailer) > 0:
                continue
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - never die
            log.warning("notification pass failed: %s", exc)
        await asyncio.sleep(rt.settings.notify_interval)
