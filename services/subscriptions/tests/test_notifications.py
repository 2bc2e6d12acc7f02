"""Customer emails over SMTP (aiosmtpd sink): per-event templates with a plain-text part,
org branding, the invoice PDF attached to receipts, one email per event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from subscriptions import repository
from subscriptions.notifications import Mailer, render, send_pending
from subscriptions.smtp_sink import SmtpSink
from subscriptions.testing import price

pytestmark = pytest.mark.integration


@pytest.fixture
def sink():
    s = SmtpSink().start()
    yield s
    s.stop()


async def test_emails_sent_once_with_text_part_branding_and_receipt_pdf(drv, sink):
    async with drv.rt.db.transaction() as session:
        await repository.upsert_organization(session, drv.org, "Acme", 3, drv.now)
    sub = await drv.checkout(price(trial_days=14), trial_days=14, email="ada@example.com")
    await drv.client.post(
        f"/v1/subscriptions/{sub['id']}/extend-trial", json={"days": 7}, headers=drv.api()
    )
    drv.at(sub["trial_end"] + __import__("datetime").timedelta(days=7))
    await drv.run_scheduler()
    [inv] = await drv.invoices_created(sub["id"])
    await drv.pay(inv)
    await drv.pay(inv)  # a duplicate result: no second receipt

    mailer = Mailer(sink.url, "billing@bos.localhost")
    while await send_pending(drv.rt, mailer):
        pass
    kinds = sorted(m["X-BOS-Notification"] for m in sink.find(to="ada@example.com"))
    assert kinds == ["checkout_completed", "invoice_paid", "trial_converted", "trial_extended"]
    receipt = sink.find(kind="invoice_paid")[0]
    assert receipt["From"].addresses[0].display_name == "Acme"
    text = receipt.get_body(preferencelist=("plain",)).get_content()
    assert "$50.00" in text and inv["number"] in text
    html = receipt.get_body(preferencelist=("html",)).get_content()
    assert "Acme" in html
    [pdf] = [p for p in receipt.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert pdf.get_content().startswith(b"%PDF")
    # Sending again sends nothing: each notification went out once.
    assert await send_pending(drv.rt, mailer) == 0
    assert len(sink.find(to="ada@example.com")) == 4


class ProcessKilled(BaseException):
    """The sender's process dying (SIGKILL): nothing after this point runs, no handler."""


class DiesAtSend:
    """Sends through `mailer` until its `at`-th message, where the process dies."""

    def __init__(self, mailer: Mailer, at: int) -> None:
        self.mailer, self.at, self.sender, self.count = mailer, at, mailer.sender, 0

    async def send(self, message) -> None:
        self.count += 1
        if self.count == self.at:
            raise ProcessKilled
        await self.mailer.send(message)


async def test_a_sender_killed_mid_batch_sends_no_email_twice(drv, sink):
    """Killed at its third email: the two sent are recorded as sent (not sent again by the
    next pass, as when the batch was one transaction); the third and the rest go out once
    their lease runs out, each with the Message-ID of its notification."""
    sub = await drv.checkout(price(trial_days=14), trial_days=14, email="kim@example.com")
    await drv.client.post(
        f"/v1/subscriptions/{sub['id']}/extend-trial", json={"days": 7}, headers=drv.api()
    )
    drv.at(sub["trial_end"] + timedelta(days=7))
    await drv.run_scheduler()
    [inv] = await drv.invoices_created(sub["id"])
    await drv.pay(inv)
    live = Mailer(sink.url, "billing@bos.localhost")
    with pytest.raises(ProcessKilled):
        await send_pending(drv.rt, DiesAtSend(live, at=3))
    assert len(sink.find(to="kim@example.com")) == 2
    assert len({m["Message-ID"] for m in sink.find(to="kim@example.com")}) == 2
    later = datetime.now(UTC) + timedelta(minutes=5)
    while await send_pending(drv.rt, live, now=later):
        pass
    sent = sink.find(to="kim@example.com")
    kinds = sorted(m["X-BOS-Notification"] for m in sent)
    assert kinds == ["checkout_completed", "invoice_paid", "trial_converted", "trial_extended"]
    rows = {str(r["id"]) for kind in kinds for r in await drv.notifications(kind)}
    assert {m["Message-ID"] for m in sent} == {f"<{i}@bos.localhost>" for i in rows}


async def test_smtp_down_is_retried_later(drv, sink):
    await drv.checkout(price(trial_days=14), trial_days=14, email="bob@example.com")
    sub = (await drv.events("subscription.created.v1"))[0]
    await drv.client.post(f"/v1/subscriptions/{sub['subscription_id']}/cancel", headers=drv.api())
    dead = Mailer("smtp://127.0.0.1:1", "billing@bos.localhost")
    assert await send_pending(drv.rt, dead) == 2  # the checkout's confirmation and this
    [row] = await drv.notifications("subscription_canceled")
    assert row["status"] == "pending" and row["attempts"] == 1 and row["last_error"]
    # The retry is due later in real time (the billing clock does not schedule emails).
    live = Mailer(sink.url, "billing@bos.localhost")
    assert await send_pending(drv.rt, live) == 0
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert await send_pending(drv.rt, live, now=later) == 2
    assert len(sink.find(to="bob@example.com", kind="subscription_canceled")) == 1


async def test_an_email_written_under_a_clock_moved_ahead_goes_out_after_the_clock_is_reset(
    drv, sink
):
    """A renewal driven by a test clock a month ahead writes its receipt; the clock is then
    put back before the sender ran. The email still goes out at once: delivery follows
    real time, not the billing clock (it used to wait for the real date to catch up)."""
    start = drv.now
    sub = await drv.checkout(price(), email="eve@example.com")
    drv.at(sub["current_period_end"] + timedelta(days=1))
    await drv.run_scheduler()
    [inv] = await drv.invoices_created(sub["id"])
    await drv.pay(inv)
    drv.at(start)
    [row] = await drv.notifications("invoice_paid")
    assert row["next_attempt_at"] <= datetime.now(UTC)
    # The checkout's confirmation and the renewal's receipt.
    assert await send_pending(drv.rt, Mailer(sink.url, "billing@bos.localhost")) == 2
    assert len(sink.find(to="eve@example.com", kind="invoice_paid")) == 1


def test_every_template_renders():
    context = {
        "subscription_id": "sub_1",
        "product_name": "Pro",
        "customer_name": None,
        "amount": 5000,
        "currency": "usd",
        "interval": "month",
        "org_name": "Acme",
        "portal_url": "http://x/portal",
        "amount_display": "$50.00",
        "amount_due": 5000,
        "amount_due_display": "$50.00",
        "amount_paid": 5000,
        "amount_paid_display": "$50.00",
        "days": 7,
        "trial_end": "2026-02-14T15:00:00+00:00",
        "previous_trial_end": "2026-02-07T15:00:00+00:00",
        "current_period_end": "2026-03-14T15:00:00+00:00",
        "next_attempt_at": None,
        "hard_decline": True,
        "failure_message": "Declined",
        "reason": "requested",
        "ends_at": "2026-02-14T15:00:00+00:00",
        "at_period_end": True,
        "number": "A-1",
        "status": "active",
        "is_free": False,
    }
    from subscriptions.notifications import SUBJECTS

    for kind in SUBJECTS:
        subject, text, html = render(kind, context)
        assert "Pro" in subject and "Acme" in text and "<html" in html


def confirmation_text(**context) -> str:
    base = {
        "product_name": "Pro",
        "customer_name": "Ada",
        "amount_display": "$50.00",
        "interval": "month",
        "org_name": "Acme",
        "portal_url": "http://x/portal",
        "trial_end": "2026-02-14T15:00:00+00:00",
        "current_period_end": None,
        "amount_paid": 0,
        "is_free": False,
    }
    return render("checkout_completed", {**base, **context})[1]


def test_the_confirmation_says_what_the_customer_now_has():
    trial = confirmation_text(status="trialing")
    assert "trial of Pro has started" in trial and "February 14, 2026" in trial
    assert "We charged" not in trial
    paid = confirmation_text(
        status="active",
        amount_paid=5000,
        amount_paid_display="$50.00",
        number="ACME-000007",
        current_period_end="2026-03-14T15:00:00+00:00",
    )
    assert "We charged $50.00. Invoice ACME-000007 is attached." in paid
    assert "March 14, 2026" in paid
    assert "free of charge" in confirmation_text(status="active", is_free=True)
    assert "as soon as its first payment" in confirmation_text(status="incomplete")


async def test_a_paid_checkout_is_confirmed_once_with_its_invoice(drv, sink):
    sub = await drv.checkout(price(), email="joe@example.com")
    mailer = Mailer(sink.url, "billing@bos.localhost")
    while await send_pending(drv.rt, mailer):
        pass
    [mail] = sink.find(to="joe@example.com")
    assert mail["X-BOS-Notification"] == "checkout_completed"
    [invoice] = (
        await drv.client.get(f"/v1/subscriptions/{sub['id']}/invoices", headers=drv.api())
    ).json()["data"]
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert invoice["number"] in text and "$50.00" in text
    [pdf] = [p for p in mail.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert pdf.get_filename() == f"invoice-{invoice['number']}.pdf"


async def _three_pending(drv) -> None:
    """Three notifications due for ann@example.com: the confirmation, an extension, a
    cancellation."""
    sub = await drv.checkout(price(trial_days=14), trial_days=14, email="ann@example.com")
    await drv.client.post(
        f"/v1/subscriptions/{sub['id']}/extend-trial", json={"days": 7}, headers=drv.api()
    )
    await drv.client.post(f"/v1/subscriptions/{sub['id']}/cancel", headers=drv.api())


async def test_a_pass_stopped_by_the_database_releases_the_rows_it_did_not_try(
    drv, sink, monkeypatch
):
    """The database fails while the second message is being built: the pass stops, and
    that row and the third are due again at once (not after the lease); the first was
    sent and is not sent again."""
    import sqlalchemy.exc

    await _three_pending(drv)
    real = repository.organization_name
    calls = 0

    async def failing_on_the_second(session, org_id):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise sqlalchemy.exc.OperationalError("select", {}, ConnectionRefusedError())
        return await real(session, org_id)

    monkeypatch.setattr(repository, "organization_name", failing_on_the_second)
    live = Mailer(sink.url, "billing@bos.localhost")
    with pytest.raises(sqlalchemy.exc.OperationalError):
        await send_pending(drv.rt, live)
    assert len(sink.find(to="ann@example.com")) == 1
    monkeypatch.setattr(repository, "organization_name", real)
    assert await send_pending(drv.rt, live) == 2
    assert len(sink.find(to="ann@example.com")) == 3
    assert [r["attempts"] for r in await drv.notifications()] == [1, 1, 1]


async def test_a_pass_out_of_time_releases_the_rest(drv, sink, monkeypatch):
    """Past its sending budget the pass leaves the rest, due again at once."""
    from subscriptions import notifications

    await _three_pending(drv)
    monkeypatch.setattr(notifications, "SEND_BUDGET", timedelta(0))
    live = Mailer(sink.url, "billing@bos.localhost")
    assert await send_pending(drv.rt, live) == 3
    assert sink.find(to="ann@example.com") == []
    monkeypatch.undo()
    assert await send_pending(drv.rt, live) == 3
    assert len(sink.find(to="ann@example.com")) == 3
