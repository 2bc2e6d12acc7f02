"""Renewals and Connect accounts end to end: subscriptions bills, checkout charges the
saved card off-session, webhooks check whose Stripe account an event belongs to."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from bos_common.testing import eventually

sys.path.insert(0, str(Path(__file__).parent))
from billing_clock import billing_clock_ahead  # noqa: E402
from merchant import Merchant, new_merchant, sent_mails, unique  # noqa: E402

pytestmark = pytest.mark.e2e


def receipts_async(
    probe: Callable[[], list[EmailMessage]],
) -> Callable[[], Awaitable[list[EmailMessage]]]:
    async def run() -> list[EmailMessage]:
        return probe()

    return run


async def test_a_renewal_charges_the_saved_card_once_and_extends_the_period(
    merchant: Merchant,
) -> None:
    customer_email = f"{unique('renewal')}@example.com"
    checkout = await merchant.checkout((await merchant.price(2900))["id"], email=customer_email)
    await merchant.confirm(checkout["id"], await merchant.card())
    done = await merchant.wait_status(checkout["id"], "complete")
    sub_path = f"/v1/subscriptions/{done['subscription_id']}"
    before = (await merchant.get(sub_path)).json()

    async with billing_clock_ahead(32 * 86400) as clock:
        await clock.run_scheduler()

        async def renewed() -> dict | None:
            sub = (await merchant.get(sub_path)).json()
            return sub if sub["current_period_end"] != before["current_period_end"] else None

        after = await eventually(renewed, timeout=30)
    assert after["status"] == "active"
    assert after["current_period_start"] == before["current_period_end"]
    invoices = (await merchant.get(f"{sub_path}/invoices")).json()["data"]
    assert sorted(i["status"] for i in invoices) == ["paid", "paid"]
    assert all(i["amount_due"] == 2900 for i in invoices)
    # The renewal receipt: an email with the invoice's number and its PDF.
    renewal = max(invoices, key=lambda i: i["created_at"])

    def receipts() -> list[EmailMessage]:
        return [
            m
            for m in sent_mails(customer_email, "invoice_paid")
            if renewal["number"] in m.get_body(preferencelist=("plain",)).get_content()
        ]

    [mail] = await eventually(receipts_async(receipts), timeout=30)
    [pdf] = [p for p in mail.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert pdf.get_content().startswith(b"%PDF")


async def _delivery_status(sim: httpx.AsyncClient, event_id: str) -> int | None:
    for event in (await sim.get("/_sim/events", params={"limit": 100})).json()["data"]:
        if event["id"] == event_id and event["deliveries"]:
            return event["deliveries"][-1]["status_code"]
    return None


async def test_9_7_an_event_for_a_stranger_account_is_rejected(
    gateway: httpx.AsyncClient, sim: httpx.AsyncClient
) -> None:
    # A connected account's event reaches the Connect endpoint (the types it subscribes to).
    stranger = f"acct_stranger{uuid.uuid4().hex[:8]}"
    emitted = (
        await sim.post(
            "/_sim/events",
            json={
                "type": "account.updated",
                "account": stranger,
                "data": {"object": {"id": stranger, "object": "account", "charges_enabled": True}},
            },
        )
    ).json()
    assert await eventually(lambda: _delivery_status(sim, emitted["id"])) == 400


async def test_an_event_for_a_connected_account_of_ours_is_accepted(
    gateway: httpx.AsyncClient, sim: httpx.AsyncClient
) -> None:
    account = (await sim.post("/v1/accounts", data={"type": "express"})).json()["id"]
    await new_merchant(gateway, sim, stripe_account_id=account)
    emitted = (
        await sim.post(
            "/_sim/events",
            json={
                "type": "account.updated",
                "account": account,
                "data": {
                    "object": {
                        "id": account,
                        "object": "account",
                        "charges_enabled": True,
                        "payouts_enabled": True,
                    }
                },
            },
        )
    ).json()
    assert await eventually(lambda: _delivery_status(sim, emitted["id"])) == 200
