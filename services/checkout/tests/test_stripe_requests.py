"""What checkout's real call sites put on the wire to Stripe (issue 14: as Stripe documents
them), recorded by a fake of Stripe's HTTP under the real SDK: confirm, the trial's
SetupIntent, the portal's card update, renewals, both refunds, held transfers and the
payout schedule. Real Postgres for the state they read and write."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from bos_common.auth import Identity
from bos_common.events import (
    Envelope,
    InvoiceVoidedV1,
    OrganizationUpdatedV1,
    PayoutSchedule,
)
from bos_common.ids import new_id
from bos_common.stripe_api import STRIPE_API_VERSION
from bos_common.stripe_testing import RecordingHTTPClient, recording_client
from checkout import (
    cards,
    confirm,
    connect,
    connect_repository,
    payment_states,
    renewals,
    repository,
    worker,
)
from checkout.models import customers, payout_schedules, transfers
from checkout.runtime import CheckoutRuntime
from checkout.testing import Organizations, a_checkout, invoice_created

pytestmark = pytest.mark.integration

CARDS_ONLY = {
    "automatic_payment_methods[enabled]": "true",
    "automatic_payment_methods[allow_redirects]": "never",
}


@pytest.fixture
async def stripe_http(runtime: CheckoutRuntime) -> AsyncIterator[RecordingHTTPClient]:
    client, recorder = recording_client()
    real_stripe, real_orgs = runtime.stripe, runtime.organizations
    runtime.stripe = client
    runtime.organizations = Organizations()  # type: ignore[assignment]
    yield recorder
    runtime.stripe, runtime.organizations = real_stripe, real_orgs


async def an_account(rt: CheckoutRuntime, *, verified: bool) -> str:
    """A connected account as `account.updated` last reported it: able to take charges and
    receive payouts, or neither."""
    account = f"acct_{uuid.uuid4().hex[:12]}"
    async with rt.db.transaction() as s:
        await connect_repository.record_account(s, account, verified, verified, datetime.now(UTC))
    return account


async def a_verified_account(rt: CheckoutRuntime, organizations: Any) -> str:
    account = await an_account(rt, verified=True)
    organizations.account = account
    return account


def api_key() -> Identity:
    return Identity(principal_type="api_key", principal_id="key_t", org_id="org_t")


# --- rule 1: on-session confirms are cards-only and finish 3DS with Stripe.js -------------


async def test_4_1_confirm_sends_a_cards_only_intent_for_stripe_js(
    runtime: CheckoutRuntime, stripe_http: RecordingHTTPClient
) -> None:
    account = await a_verified_account(runtime, runtime.organizations)
    checkout_id, _ = await a_checkout(runtime)
    out = await confirm.confirm(runtime, api_key(), checkout_id, "pm_card_visa", None)
    assert out.status == "processing"
    sent = stripe_http.last("POST", "/v1/payment_intents")
    assert (
        sent.form.items()
        >= {
            **CARDS_ONLY,
            "use_stripe_sdk": "true",
            "confirm": "true",
            "amount": "9900",
            "payment_method": "pm_card_visa",
            "setup_future_usage": "off_session",
            "application_fee_amount": "495",
            "transfer_data[destination]": account,
        }.items()
    )
    assert "return_url" not in sent.form
    assert sent.stripe_version == STRIPE_API_VERSION
    # 12.4: a customer's payment never touches the account's settings (rule 6).
    assert not stripe_http.calls("POST", "/v1/accounts")


async def test_3_1_a_customer_without_a_name_is_created_without_one(
    runtime: CheckoutRuntime, stripe_http: RecordingHTTPClient
) -> None:
    """Stripe refuses `name=` (an empty string unsets, which create does not allow)."""
    checkout_id, customer = await a_checkout(runtime)
    async with runtime.db.transaction() as s:
        await s.execute(update(customers).where(customers.c.id == customer.id).values(name=None))
    await confirm.confirm(runtime, api_key(), checkout_id, "pm_card_visa", None)
    sent = stripe_http.last("POST", "/v1/customers")
    assert "name" not in sent.form
    assert sent.form["email"] == customer.email


async def test_6_1_trial_setup_intent_is_cards_only_for_stripe_js(
    runtime: CheckoutRuntime, stripe_http: RecordingHTTPClient
) -> None:
    checkout_id, _ = await a_checkout(runtime, trial_days=14)
    out = await confirm.confirm(runtime, api_key(), checkout_id, "pm_card_visa", None)
    assert out.status == "processing"
    sent = stripe_http.last("POST", "/v1/setup_intents")
    assert (
        sent.form.items()
        >= {
            **CARDS_ONLY,
            "use_stripe_sdk": "true",
            "confirm": "true",
            "usage": "off_session",
            "payment_method": "pm_card_visa",
        }.items()
    )
    assert "return_url" not in sent.form
    assert not stripe_http.calls("POST", "/v1/payment_intents")


async def test_3ds_answer_hands_the_client_secret_to_the_page(
    runtime: CheckoutRuntime, stripe_http: RecordingHTTPClient
) -> None:
    """With use_stripe_sdk, Stripe answers `requires_action` with a `use_stripe_sdk` next
    action, which the page finishes with stripe.handleNextAction(client_secret)."""
    checkout_id, _ = await a_checkout(runtime)
    intent = {
        "id": f"pi_{uuid.uuid4().hex[:12]}",
        "object": "payment_intent",
        "status": "requires_action",
        "client_secret": "pi_x_secret_y",
        "next_action": {"type": "use_stripe_sdk", "use_stripe_sdk": {}},
        "payment_method": "pm_card_authenticationRequired",
    }
    stripe_http.answer("POST", "/v1/payment_intents", intent)
    out = await confirm.confirm(
        runtime, api_key(), checkout_id, "pm_card_authenticationRequired", None
    )
    assert out.status == "requires_action"
    assert out.next_action is not None and out.next_action.client_secret == "pi_x_secret_y"


async def test_9_2_portal_card_update_is_cards_only_for_stripe_js(
    runtime: CheckoutRuntime, stripe_http: RecordingHTTPClient
) -> None:
    _, customer = await a_checkout(runtime)
    portal = Identity(principal_type="portal", org_id="org_t", customer_id=customer.id)
    result = await cards.start_card_update(runtime, portal, customer.id, "pm_card_mastercard")
    assert result["status"] == "succeeded"
    sent = stripe_http.last("POST", "/v1/setup_intents")
    assert (
        sent.form.items()
        >= {
            **CARDS_ONLY,
            "use_stripe_sdk": "true",
            "confirm": "true",
            "usage": "off_session",
            "payment_method": "pm_card_mastercard",
        }.items()
    )
    assert "return_url" not in sent.form


# --- renewals: off-session, still cards-only (no return_url on a server-side confirm) ---


def a_saved_card_renewal(customer_id: str) -> Envelope:
    return invoice_created(
        customer_id, stripe_customer_id="cus_saved", payment_method_id="pm_saved"
    )


async def test_7_1_renewal_is_an_off_session_cards_only_charge(
    runtime: CheckoutRuntime, stripe_http: RecordingHTTPClient
) -> None:
    account = await a_verified_account(runtime, runtime.organizations)
    _, customer = await a_checkout(runtime)
    async with runtime.db.transaction() as s:
        await renewals.on_invoice_created(runtime, s, a_saved_card_renewal(customer.id))
    sent = stripe_http.last("POST", "/v1/payment_intents")
    assert (
        sent.form.items()
        >= {
            **CARDS_ONLY,
            "confirm": "true",
            "off_session": "true",
            "customer": "cus_saved",
            "payment_method": "pm_saved",
            "application_fee_amount": "495",
            "transfer_data[destination]": account,
        }.items()
    )
    assert "use_stripe_sdk" not in sent.form  # nobody is there to authenticate
    assert "return_url" not in sent.form


# --- rule 3: refunds of destination charges reverse the merchant's share and the fee ----


def invoice_voided(invoice_id: str, payment: Any) -> Envelope:
    """The invoice that `payment` (a renewal) paid, voided meanwhile."""
    return Envelope.wrap(
        InvoiceVoidedV1(
            invoice_id=invoice_id,
            subscription_id=new_id("sub"),
            customer_id=payment.customer_id,
            voided_at=datetime.now(UTC),
        ),
        producer="subscriptions",
        org_id="org_t",
    )


async def a_succeeded_payment(
    rt: CheckoutRuntime, *, kind: str, connect_mode: str | None, **values: Any
) -> Any:
    _, customer = await a_checkout(rt)
    async with rt.db.transaction() as s:
        return await repository.insert_payment(
            s,
            id=new_id("pay"),
            org_id="org_t",
            kind=kind,
            customer_id=customer.id,
            attempt=1,
            status="succeeded",
            amount=9900,
            currency="usd",
            platform_fee=495,
            net_amount=9405,
            destination_account="acct_x" if connect_mode else None,
            connect_mode=connect_mode,
            stripe_intent_id=f"pi_{uuid.uuid4().hex[:16]}",
            stripe_idempotency_key=new_id("key"),
            **values,
        )


async def test_10_1_a_duplicate_destination_charge_is_refunded_with_its_transfer_and_fee(
    runtime: CheckoutRuntime, stripe_http: RecordingHTTPClient
) -> None:
    payment = await a_succeeded_payment(runtime, kind="checkout", connect_mode="destination")
    async with runtime.db.transaction() as s:
        await payment_states._refund_duplicate(runtime, s, payment)
    sent = stripe_http.last("POST", "/v1/refunds")
    assert (
        sent.form.items()
        >= {
            "payment_intent": payment.stripe_intent_id,
            "reverse_transfer": "true",
            "refund_application_fee": "true",
            "metadata[reason]": "duplicate",
        }.items()
    )
    assert sent.idempotency_key == f"bos-refund-{payment.id}"


async def test_a_duplicate_charge_on_the_platform_has_no_transfer_to_reverse(
    runtime: CheckoutRuntime, stripe_http: RecordingHTTPClient
) -> None:
    payment = await a_succeeded_payment(runtime, kind="checkout", connect_mode="held")
    async with runtime.db.transaction() as s:
        await payment_states._refund_duplicate(runtime, s, payment)
    sent = stripe_http.last("POST", "/v1/refunds")
    assert "reverse_transfer" not in sent.form
    assert "refund_application_fee" not in sent.form


async def test_a_renewal_of_a_voided_invoice_is_refunded_with_its_transfer_and_fee(
    runtime: CheckoutRuntime, stripe_http: RecordingHTTPClient
) -> None:
    invoice_id = new_id("in")
    payment = await a_succeeded_payment(
        runtime, kind="renewal", connect_mode="destination", invoice_id=invoice_id
    )
    async with runtime.db.transaction() as s:
        await renewals.on_invoice_voided(runtime, s, invoice_voided(invoice_id, payment))
    sent = stripe_http.last("POST", "/v1/refunds")
    assert (
        sent.form.items()
        >= {
            "payment_intent": payment.stripe_intent_id,
            "reverse_transfer": "true",
            "refund_application_fee": "true",
            "metadata[reason]": "invoice_voided",
        }.items()
    )


# --- rule 4: held transfers name their charge and wait for pending funds ----------------


async def hold_share(
    rt: CheckoutRuntime, payment: Any, account: str, available_at: datetime
) -> str:
    """The merchant's share of `payment` (taken on the platform) held for `account`; its id."""
    transfer_id = new_id("tr")
    async with rt.db.transaction() as s:
        await connect_repository.hold_transfer(
            s,
            id=transfer_id,
            org_id="org_t",
            payment_id=payment.id,
            destination_account=account,
            amount=9405,
            currency="usd",
            available_at=available_at,
        )
    return transfer_id


async def a_held_transfer(rt: CheckoutRuntime) -> tuple[Any, str]:
    payment = await a_succeeded_payment(rt, kind="checkout", connect_mode="held")
    account = await an_account(rt, verified=True)
    transfer_id = await hold_share(rt, payment, account, datetime.now(UTC) - timedelta(seconds=1))
    return payment, transfer_id


async def transfer_row(rt: CheckoutRuntime, transfer_id: str) -> Any:
    async with rt.db.transaction() as s:
        return (await s.execute(select(transfers).where(transfers.c.id == transfer_id))).one()


async def test_12_2_a_held_transfer_draws_on_its_charge(
    runtime: CheckoutRuntime, stripe_http: RecordingHTTPClient
) -> None:
    payment, transfer_id = await a_held_transfer(runtime)
    stripe_http.answer(
        "GET",
        f"/v1/payment_intents/{payment.stripe_intent_id}",
        {"id": payment.stripe_intent_id, "object": "payment_intent", "latest_charge": "ch_paid"},
    )
    assert await worker.release_transfers_once(runtime) >= 1
    sent = [
        r
        for r in stripe_http.calls("POST", "/v1/transfers")
        if r.form["metadata[payment_id]"] == payment.id
    ]
    assert len(sent) == 1
    assert (
        sent[0].form.items()
        >= {
            "source_transaction": "ch_paid",
            "amount": "9405",
            "currency": "usd",
        }.items()
    )
    row = await transfer_row(runtime, transfer_id)
    assert (row.status, row.source_charge_id) == ("paid", "ch_paid")


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "balance_insufficient"), (500, "api_error"), (429, "rate_limit")],
)
async def test_12_2_a_transfer_stripe_cannot_make_yet_is_retried_later(
    runtime: CheckoutRuntime, stripe_http: RecordingHTTPClient, status: int, code: str
) -> None:
    payment, transfer_id = await a_held_transfer(runtime)
    type_ = "api_error" if status == 500 else "invalid_request_error"
    for _ in range(5):  # every due transfer of the sweep meets it
        stripe_http.error("POST", "/v1/transfers", status, code, type_=type_)
    await worker.release_transfers_once(runtime)
    row = await transfer_row(runtime, transfer_id)
    assert row.status == "held"
    assert row.attempts == 1
    assert row.source_charge_id == "ch_rec"
    assert row.available_at > datetime.now(UTC) + timedelta(seconds=30)
    assert code in (row.last_error or "") or status != 400


async def test_12_2_a_transfer_stripe_refuses_is_failed(
    runtime: CheckoutRuntime, stripe_http: RecordingHTTPClient
) -> None:
    _, transfer_id = await a_held_transfer(runtime)
    for _ in range(5):
        stripe_http.error("POST", "/v1/transfers", 400, "account_invalid")
    await worker.release_transfers_once(runtime)
    row = await transfer_row(runtime, transfer_id)
    assert row.status == "failed"
    assert "account_invalid" in (row.last_error or "")


# --- rule 6: the payout schedule goes to Stripe when the organization changes it --------


def organization_updated(account: str, version: int, **schedule: Any) -> Envelope:
    return Envelope.wrap(
        OrganizationUpdatedV1(
            org_id="org_t",
            version=version,
            name="T",
            platform_fee_bps=500,
            stripe_account_id=account,
            payout_schedule=PayoutSchedule(**schedule),
            updated_at=datetime.now(UTC),
        ),
        producer="tokens",
        org_id="org_t",
    )


async def schedule_row(rt: CheckoutRuntime, account: str) -> Any:
    async with rt.db.transaction() as s:
        q = select(payout_schedules).where(payout_schedules.c.account_id == account)
        return (await s.execute(q)).one()


async def test_12_4_the_payout_schedule_is_pushed_when_it_changes_only(
    runtime: CheckoutRuntime, stripe_http: RecordingHTTPClient
) -> None:
    account = f"acct_{uuid.uuid4().hex[:12]}"
    weekly = {"interval": "weekly", "weekly_anchor": "friday", "delay_days": 3}
    daily = {"settings": {"payouts": {"schedule": {"interval": "daily", "delay_days": 2}}}}
    stripe_http.answer("GET", f"/v1/accounts/{account}", {"id": account, **daily})
    for version in (1, 2):  # the second changes something else: nothing to push
        async with runtime.db.transaction() as s:
            await connect.on_organization_updated(
                runtime, s, organization_updated(account, version, **weekly)
            )
    pushed = stripe_http.calls("POST", f"/v1/accounts/{account}")
    assert len(pushed) == 1
    assert pushed[0].form == {
        "settings[payouts][schedule][interval]": "weekly",
        "settings[payouts][schedule][weekly_anchor]": "friday",
        "settings[payouts][schedule][delay_days]": "3",
    }
    assert (await schedule_row(runtime, account)).status == "applied"
    async with runtime.db.transaction() as s:
        await connect.on_organization_updated(
            runtime, s, organization_updated(account, 3, interval="daily")
        )
        # an older event arriving late changes nothing
        await connect.on_organization_updated(
            runtime, s, organization_updated(account, 2, **weekly)
        )
    pushed = stripe_http.calls("POST", f"/v1/accounts/{account}")
    assert len(pushed) == 2
    assert pushed[1].form == {"settings[payouts][schedule][interval]": "daily"}
    row = await schedule_row(runtime, account)
    assert (row.org_version, row.schedule) == (3, {"interval": "daily"})


async def test_12_4_an_account_already_on_the_schedule_is_left_alone(
    runtime: CheckoutRuntime, stripe_http: RecordingHTTPClient
) -> None:
    account = f"acct_{uuid.uuid4().hex[:12]}"
    on_it = {"interval": "weekly", "weekly_anchor": "friday", "delay_days": 3}
    stripe_http.answer(
        "GET",
        f"/v1/accounts/{account}",
        {"id": account, "settings": {"payouts": {"schedule": on_it}}},
    )
    async with runtime.db.transaction() as s:
        await connect.on_organization_updated(runtime, s, organization_updated(account, 1, **on_it))
    assert not stripe_http.calls("POST", f"/v1/accounts/{account}")
    assert (await schedule_row(runtime, account)).status == "applied"


async def test_12_4_a_refused_payout_schedule_is_recorded_for_the_merchant(
    runtime: CheckoutRuntime, stripe_http: RecordingHTTPClient
) -> None:
    account = f"acct_{uuid.uuid4().hex[:12]}"
    stripe_http.error("POST", f"/v1/accounts/{account}", 400, "settings_not_controllable")
    async with runtime.db.transaction() as s:
        await connect.on_organization_updated(
            runtime, s, organization_updated(account, 1, interval="monthly", monthly_anchor=1)
        )
    row = await schedule_row(runtime, account)
    assert (row.status, row.error_code) == ("refused", "settings_not_controllable")
    # ...and a customer's payment goes on regardless (test_4_1_confirm_... sends nothing
    # to /v1/accounts).


async def test_12_2_a_renewal_taken_on_the_platform_holds_the_merchants_share(
    runtime: CheckoutRuntime, stripe_http: RecordingHTTPClient
) -> None:
    account = await an_account(runtime, verified=False)
    runtime.organizations.account = account  # type: ignore[attr-defined]
    _, customer = await a_checkout(runtime)
    invoice = a_saved_card_renewal(customer.id)
    async with runtime.db.transaction() as s:
        await renewals.on_invoice_created(runtime, s, invoice)
    sent = stripe_http.last("POST", "/v1/payment_intents")
    assert "transfer_data[destination]" not in sent.form  # taken on the platform
    async with runtime.db.transaction() as s:
        payment = await repository.get_payment_by_idempotency_key(
            s,
            invoice.payload().idempotency_key,  # type: ignore[attr-defined]
        )
        assert payment is not None and payment.connect_mode == "held"
        held = await connect_repository.get_transfer_of_payment(s, payment.id)
    assert held is not None
    assert (held.status, held.amount, held.destination_account) == ("held", 9405, account)


@pytest.mark.parametrize("made", [False, True])
async def test_12_2_a_refunded_held_payment_takes_its_share_back(
    runtime: CheckoutRuntime, stripe_http: RecordingHTTPClient, made: bool
) -> None:
    """A voided invoice's renewal refunded: a share still held is canceled, one already
    transferred is reversed."""
    invoice_id = new_id("in")
    payment = await a_succeeded_payment(
        runtime, kind="renewal", connect_mode="held", invoice_id=invoice_id
    )
    transfer_id = await hold_share(runtime, payment, "acct_x", datetime.now(UTC))
    if made:
        async with runtime.db.transaction() as s:
            await connect_repository.mark_transfer(s, transfer_id, "paid", "tr_made")
    async with runtime.db.transaction() as s:
        await renewals.on_invoice_voided(runtime, s, invoice_voided(invoice_id, payment))
    refund = stripe_http.last("POST", "/v1/refunds")
    assert "reverse_transfer" not in refund.form  # not a destination charge
    row = await transfer_row(runtime, transfer_id)
    if made:
        assert row.status == "reversed"
        reversal = stripe_http.last("POST", "/v1/transfers/tr_made/reversals")
        assert reversal.form["metadata[payment_id]"] == payment.id
    else:
        assert row.status == "canceled"
        assert not stripe_http.calls("POST", "/v1/transfers/tr_made/reversals")
