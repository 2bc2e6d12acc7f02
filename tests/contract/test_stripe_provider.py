"""Provider contract: the Stripe behaviour BOS relies on, run against whatever
``STRIPE_API_BASE`` / ``STRIPE_SECRET_KEY`` point to, at the pinned API version
(``bos_common.stripe_api.STRIPE_API_VERSION``). The first part holds Stripe to what BOS
assumes; the second (``test_bos_*``) drives BOS's own call sites (checkout's confirm, trial,
card update, renewal, refund, held transfer and payout schedule, through a checkout runtime
on the test Postgres and RabbitMQ) so every request BOS sends is one the provider accepts.

- Neither set, or a base that is a simulator (`make test`'s): the test starts
  ``tools/stripe-sim`` itself.
- ``STRIPE_SECRET_KEY=sk_test_...`` alone: real Stripe test mode (https://api.stripe.com).
- Both, the base not a simulator: that base URL with that key.

Only test-mode keys are accepted. Steps that need a human (completing a 3DS challenge) or a
pre-onboarded connected account use the simulator's ``/_sim`` controls; against real Stripe
they run only as far as the API allows (or use ``STRIPE_CONNECTED_ACCOUNT`` when given).
Only ``pm_card_*`` test PaymentMethods are used, so no raw card numbers reach Stripe.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import select

from bos_common.auth import Identity
from bos_common.events import Envelope, OrganizationUpdatedV1, PayoutSchedule
from bos_common.ids import new_id
from bos_common.stripe_api import STRIPE_API_VERSION
from bos_common.testing import Infra, migrate
from checkout import (
    cards,
    confirm,
    connect,
    connect_repository,
    customer_repository,
    payment_states,
    renewals,
    repository,
    worker,
)
from checkout.app import build_runtime
from checkout.models import payout_schedules
from checkout.runtime import CheckoutRuntime
from checkout.settings import CheckoutSettings
from checkout.testing import Organizations, a_checkout, invoice_created
from stripe_sim.testing import run_simulator

REAL_STRIPE = "https://api.stripe.com"
CARDS_ONLY = {"enabled": True, "allow_redirects": "never"}


@dataclass(frozen=True)
class Provider:
    client: stripe.StripeClient
    base: str
    is_simulator: bool
    key: str

    def sim(self, method: str, path: str, json: dict[str, object] | None = None) -> httpx.Response:
        assert self.is_simulator, "simulator-only control"
        response = httpx.request(method, f"{self.base}{path}", json=json, timeout=10)
        response.raise_for_status()
        return response


def _probe_simulator(base: str) -> bool:
    try:
        return httpx.get(f"{base}/_sim/stats", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    key = os.environ.get("STRIPE_SECRET_KEY")
    base = os.environ.get("STRIPE_API_BASE")
    if key and not key.startswith(("sk_test_", "rk_test_")):
        pytest.skip("the provider contract only runs with a test-mode key")
    if (base is None and key is None) or (base and base != REAL_STRIPE and _probe_simulator(base)):
        # A simulator of its own: some cases send what Stripe refuses on purpose (a reused
        # idempotency key), which must not land in a shared simulator's request log.
        with run_simulator() as url:
            yield _provider("sk_test_contract", url)
        return
    yield _provider(key or "sk_test_contract", base or REAL_STRIPE)


def _provider(key: str, base: str) -> Provider:
    client = stripe.StripeClient(
        key,
        base_addresses={"api": base},
        max_network_retries=2,
        stripe_version=STRIPE_API_VERSION,
    )
    return Provider(client, base, base != REAL_STRIPE and _probe_simulator(base), key)


def _confirmed(provider: Provider, **params: object) -> stripe.PaymentIntent:
    # cards only, as BOS confirms (rule 1): on real Stripe, dashboard-enabled redirect methods
    # would otherwise require a return_url on a server-side confirm
    body: dict[str, object] = {
        "amount": 2000,
        "currency": "usd",
        "confirm": True,
        "automatic_payment_methods": CARDS_ONLY,
    }
    body.update(params)
    return provider.client.v1.payment_intents.create(params=body)


def test_customer_create_retrieve_update_list(provider: Provider) -> None:
    email = f"contract-{uuid.uuid4().hex[:10]}@example.com"
    customer = provider.client.v1.customers.create(
        params={"email": email, "metadata": {"bos_customer_id": "c-1"}}
    )
    assert customer.id.startswith("cus_")
    assert provider.client.v1.customers.retrieve(customer.id).email == email
    updated = provider.client.v1.customers.update(customer.id, params={"name": "Contract"})
    assert updated.name == "Contract"
    assert updated.metadata["bos_customer_id"] == "c-1"
    listed = provider.client.v1.customers.list(params={"email": email})
    assert [c.id for c in listed.data] == [customer.id]


def test_payment_method_attach_and_list(provider: Provider) -> None:
    customer = provider.client.v1.customers.create()
    pm = provider.client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    assert pm.customer == customer.id
    assert (pm.card.brand, pm.card.last4) == ("visa", "4242")
    assert pm.card.fingerprint
    listed = provider.client.v1.payment_methods.list(
        params={"customer": customer.id, "type": "card"}
    )
    assert [p.id for p in listed.data] == [pm.id]


def test_payment_intent_success(provider: Provider) -> None:
    pi = _confirmed(
        provider,
        payment_method="pm_card_visa",
        metadata={"checkout_id": "chk_contract"},
        expand=["latest_charge.balance_transaction"],
    )
    assert pi.status == "succeeded"
    assert pi.amount_received == 2000
    assert pi.metadata["checkout_id"] == "chk_contract"
    charge = pi.latest_charge
    assert charge.paid is True
    if charge.balance_transaction is not None:  # real Stripe may create it asynchronously
        assert charge.balance_transaction.amount == 2000
        assert charge.balance_transaction.fee > 0


@pytest.mark.parametrize(
    ("payment_method", "decline_code"),
    [
        ("pm_card_visa_chargeDeclined", "generic_decline"),
        ("pm_card_visa_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ],
)
def test_payment_intent_declines(
    provider: Provider, payment_method: str, decline_code: str
) -> None:
    with pytest.raises(stripe.CardError) as info:
        _confirmed(provider, payment_method=payment_method)
    assert info.value.http_status == 402
    assert info.value.code == "card_declined"
    assert info.value.error.decline_code == decline_code
    pi = info.value.error.payment_intent
    assert pi.status == "requires_payment_method"
    assert pi.last_payment_error.decline_code == decline_code


def test_payment_intent_3ds_requires_action(provider: Provider) -> None:
    # Without use_stripe_sdk the challenge is a redirect (rule 1); the page uses Stripe.js.
    redirect = _confirmed(provider, payment_method="pm_card_authenticationRequired")
    assert redirect.status == "requires_action"
    assert redirect.next_action.type == "redirect_to_url"
    pi = _confirmed(provider, payment_method="pm_card_authenticationRequired", use_stripe_sdk=True)
    assert pi.status == "requires_action"
    assert pi.next_action.type == "use_stripe_sdk"
    if not provider.is_simulator:
        return  # completing the challenge needs a browser on real Stripe
    provider.sim("POST", f"/_sim/payment_intents/{pi.id}/authenticate", {"outcome": "success"})
    assert provider.client.v1.payment_intents.retrieve(pi.id).status == "succeeded"
    failing = _confirmed(
        provider, payment_method="pm_card_authenticationRequired", use_stripe_sdk=True
    )
    provider.sim("POST", f"/_sim/payment_intents/{failing.id}/authenticate", {"outcome": "failure"})
    failed = provider.client.v1.payment_intents.retrieve(failing.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error.code == "payment_intent_authentication_failure"


def test_off_session_charge_needing_authentication_fails(provider: Provider) -> None:
    customer = provider.client.v1.customers.create()
    pm = provider.client.v1.payment_methods.attach(
        "pm_card_authenticationRequired", params={"customer": customer.id}
    )
    with pytest.raises(stripe.CardError) as info:
        _confirmed(provider, customer=customer.id, payment_method=pm.id, off_session=True)
    assert info.value.code == "authentication_required"


def test_setup_intent_off_session_then_charge(provider: Provider) -> None:
    customer = provider.client.v1.customers.create()
    si = provider.client.v1.setup_intents.create(
        params={
            "customer": customer.id,
            "payment_method": "pm_card_visa",
            "usage": "off_session",
            "confirm": True,
            "automatic_payment_methods": CARDS_ONLY,
        }
    )
    assert si.status == "succeeded"
    pm = provider.client.v1.payment_methods.retrieve(si.payment_method)
    assert pm.customer == customer.id
    renewal = _confirmed(provider, customer=customer.id, payment_method=pm.id, off_session=True)
    assert renewal.status == "succeeded"


def test_idempotent_replay_and_conflict(provider: Provider) -> None:
    key = f"contract-{uuid.uuid4()}"
    params = {
        "amount": 1500,
        "currency": "usd",
        "payment_method": "pm_card_visa",
        "automatic_payment_methods": CARDS_ONLY,
        "confirm": True,
    }
    first = provider.client.v1.payment_intents.create(
        params=params, options={"idempotency_key": key}
    )
    again = provider.client.v1.payment_intents.create(
        params=params, options={"idempotency_key": key}
    )
    assert again.id == first.id
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    with pytest.raises(stripe.IdempotencyError):
        provider.client.v1.payment_intents.create(
            params={**params, "amount": 1600},
            options={"idempotency_key": key},
        )


def test_refund(provider: Provider) -> None:
    pi = _confirmed(provider, payment_method="pm_card_visa")
    refund = provider.client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 500})
    assert refund.amount == 500
    assert refund.status in ("succeeded", "pending")


def _connected_account(provider: Provider) -> str:
    configured = os.environ.get("STRIPE_CONNECTED_ACCOUNT")
    if configured:
        return configured
    if not provider.is_simulator:
        pytest.skip("set STRIPE_CONNECTED_ACCOUNT to an onboarded test account")
    account = provider.client.v1.accounts.create(params={"type": "express", "country": "US"})
    assert account.charges_enabled is False
    provider.sim("POST", f"/_sim/accounts/{account.id}/verify")
    assert provider.client.v1.accounts.retrieve(account.id).charges_enabled is True
    return account.id


def test_application_fee_on_destination_charge(provider: Provider) -> None:
    account = _connected_account(provider)
    pi = _confirmed(
        provider,
        amount=10000,
        payment_method="pm_card_visa",
        application_fee_amount=1200,
        transfer_data={"destination": account},
    )
    assert pi.status == "succeeded"
    assert pi.application_fee_amount == 1200
    charge = provider.client.v1.charges.retrieve(pi.latest_charge)
    assert charge.transfer
    transfer = provider.client.v1.transfers.retrieve(charge.transfer)
    assert transfer.destination == account
    assert transfer.amount == 10000  # the whole amount; the account pays the fee back
    assert charge.application_fee
    fee = provider.client.v1.application_fees.retrieve(charge.application_fee)
    assert fee.amount == 1200
    assert fee.account == account


# --- BOS's own call sites against the provider ------------------------------------------
# A checkout runtime on the test infrastructure, its Stripe client pointed at the provider;
# the organization's billing (tokens) is set by each test.

UNUSED = "http://127.0.0.1:9"  # catalog, tokens and subscriptions are never reached


@pytest.fixture(scope="module")
async def bos(provider: Provider, infra: Infra) -> AsyncIterator[CheckoutRuntime]:
    await migrate(infra.database_url, "checkout")
    rt = build_runtime(
        CheckoutSettings(
            **infra.env(),
            STRIPE_SECRET_KEY=provider.key,
            STRIPE_API_BASE=provider.base,
            CATALOG_URL=UNUSED,
            TOKENS_URL=UNUSED,
            SUBSCRIPTIONS_URL=UNUSED,
            RUN_WORKERS="false",
        )
    )
    rt.organizations = Organizations()  # type: ignore[assignment]
    await rt.start()
    yield rt
    await rt.stop()


def _organizations(rt: CheckoutRuntime, account: str | None) -> Organizations:
    organizations = Organizations(account)
    rt.organizations = organizations  # type: ignore[assignment]
    return organizations


API_KEY = Identity(principal_type="api_key", principal_id="key_contract", org_id="org_t")


async def _payment_of(rt: CheckoutRuntime, checkout_id: str) -> Any:
    async with rt.db.transaction() as s:
        payment = await repository.latest_payment_of_checkout(s, checkout_id)
    assert payment is not None
    return payment


async def _account_state(rt: CheckoutRuntime, account: str, enabled: bool) -> None:
    async with rt.db.transaction() as s:
        await connect_repository.record_account(s, account, enabled, enabled, datetime.now(UTC))


async def _bos_confirm(rt: CheckoutRuntime, payment_method: str, **checkout: Any) -> Any:
    checkout_id, _ = await a_checkout(rt, **checkout)
    out = await confirm.confirm(rt, API_KEY, checkout_id, payment_method, None)
    return out, await _payment_of(rt, checkout_id)


async def _bos_connected_payment(
    provider: Provider, rt: CheckoutRuntime, *, verified: bool
) -> tuple[str, Any]:
    """(account, payment): a checkout of an organization with a connected account, whose
    charges and payouts are enabled or not, paid with a card."""
    account = _connected_account(provider)
    await _account_state(rt, account, verified)
    _organizations(rt, account)
    out, payment = await _bos_confirm(rt, "pm_card_visa")
    assert out.status == "processing", out
    return account, payment


@pytest.mark.integration
async def test_bos_confirm_charges_a_card_cards_only(
    provider: Provider, bos: CheckoutRuntime
) -> None:
    _organizations(bos, None)
    out, payment = await _bos_confirm(bos, "pm_card_visa")
    assert out.status == "processing", out
    pi = provider.client.v1.payment_intents.retrieve(payment.stripe_intent_id)
    assert (pi.status, pi.amount, pi.currency) == ("succeeded", 9900, "usd")
    assert pi.automatic_payment_methods is not None
    assert pi.automatic_payment_methods.enabled is True
    assert pi.automatic_payment_methods.allow_redirects == "never"
    assert pi.setup_future_usage == "off_session"


@pytest.mark.integration
async def test_bos_confirm_hands_3ds_to_stripe_js(provider: Provider, bos: CheckoutRuntime) -> None:
    _organizations(bos, None)
    out, payment = await _bos_confirm(bos, "pm_card_authenticationRequired")
    assert out.status == "requires_action", out
    assert out.next_action is not None and out.next_action.client_secret
    pi = provider.client.v1.payment_intents.retrieve(payment.stripe_intent_id)
    assert pi.status == "requires_action"
    assert pi.next_action.type == "use_stripe_sdk"  # not redirect_to_url: the page's Stripe.js
    if provider.is_simulator:
        provider.sim("POST", f"/_sim/payment_intents/{pi.id}/authenticate", {"outcome": "success"})
        assert provider.client.v1.payment_intents.retrieve(pi.id).status == "succeeded"


@pytest.mark.integration
async def test_bos_trial_saves_the_card_and_a_renewal_charges_it_off_session(
    provider: Provider, bos: CheckoutRuntime
) -> None:
    _organizations(bos, None)
    out, payment = await _bos_confirm(bos, "pm_card_visa", trial_days=14)
    assert out.status == "processing", out
    si = provider.client.v1.setup_intents.retrieve(payment.stripe_intent_id)
    assert (si.status, si.usage) == ("succeeded", "off_session")
    assert si.automatic_payment_methods.allow_redirects == "never"
    async with bos.db.transaction() as s:
        customer = await customer_repository.get_customer(s, "org_t", payment.customer_id)
    assert customer is not None and customer.default_payment_method_id

    invoice_id = new_id("in")
    key = f"bos-contract-{invoice_id}-1"
    invoice = invoice_created(
        customer.id,
        invoice_id=invoice_id,
        number="INV-C-1",
        idempotency_key=key,
        billing_reason="trial_conversion",
    )
    async with bos.db.transaction() as s:
        await renewals.on_invoice_created(bos, s, invoice)
        renewal = await repository.get_payment_by_idempotency_key(s, key)
    assert renewal is not None and renewal.status == "succeeded", renewal
    pi = provider.client.v1.payment_intents.retrieve(renewal.stripe_intent_id)
    assert (pi.status, pi.customer, pi.payment_method) == (
        "succeeded",
        customer.stripe_customer_id,
        customer.default_payment_method_id,
    )


@pytest.mark.integration
async def test_bos_card_update_saves_a_new_card(provider: Provider, bos: CheckoutRuntime) -> None:
    _organizations(bos, None)
    _, customer = await a_checkout(bos)
    portal = Identity(principal_type="portal", org_id="org_t", customer_id=customer.id)
    result = await cards.start_card_update(bos, portal, customer.id, "pm_card_mastercard")
    assert result["status"] == "succeeded", result
    si = provider.client.v1.setup_intents.retrieve(result["setup_intent_id"])
    assert si.status == "succeeded"
    assert si.automatic_payment_methods.allow_redirects == "never"


@pytest.mark.integration
async def test_bos_refund_of_a_duplicate_destination_charge_reverses_transfer_and_fee(
    provider: Provider, bos: CheckoutRuntime
) -> None:
    _, payment = await _bos_connected_payment(provider, bos, verified=True)
    assert payment.connect_mode == "destination"
    async with bos.db.transaction() as s:
        await payment_states._refund_duplicate(bos, s, await repository.get_payment(s, payment.id))
    pi = provider.client.v1.payment_intents.retrieve(payment.stripe_intent_id)
    charge = provider.client.v1.charges.retrieve(pi.latest_charge)
    assert charge.refunded is True
    transfer = provider.client.v1.transfers.retrieve(charge.transfer)
    assert transfer.amount_reversed == transfer.amount  # the merchant's share came back
    fee = provider.client.v1.application_fees.retrieve(charge.application_fee)
    assert fee.amount_refunded == fee.amount == 495


@pytest.mark.integration
async def test_bos_held_transfer_draws_on_its_charge(
    provider: Provider, bos: CheckoutRuntime
) -> None:
    """12.2: taken on the platform while the account is unverified, the merchant's share
    goes out after verification from the charge's (possibly still pending) funds."""
    account, payment = await _bos_connected_payment(provider, bos, verified=False)
    assert payment.connect_mode == "held"
    await _account_state(bos, account, True)
    await worker.release_transfers_once(bos)
    async with bos.db.transaction() as s:
        held = await connect_repository.get_transfer_of_payment(s, payment.id)
    assert held is not None and held.status == "paid", held
    transfer = provider.client.v1.transfers.retrieve(held.stripe_transfer_id)
    pi = provider.client.v1.payment_intents.retrieve(payment.stripe_intent_id)
    assert transfer.source_transaction == pi.latest_charge
    assert (transfer.amount, transfer.destination) == (9900 - 495, account)


@pytest.mark.integration
async def test_bos_payout_schedule_applied_or_refused_by_account(
    provider: Provider, bos: CheckoutRuntime
) -> None:
    if not provider.is_simulator:
        pytest.skip("needs accounts of each kind; Stripe's answer is the simulator's rule 6")
    controlled = provider.client.v1.accounts.create(params={"type": "express", "country": "US"})
    standard = provider.client.v1.accounts.create(params={"type": "standard", "country": "US"})
    for version, account in enumerate((controlled.id, standard.id), start=1):
        event = OrganizationUpdatedV1(
            org_id="org_t",
            version=version,
            name="Contract",
            platform_fee_bps=500,
            stripe_account_id=account,
            payout_schedule=PayoutSchedule(interval="weekly", weekly_anchor="friday"),
            updated_at=datetime.now(UTC),
        )
        async with bos.db.transaction() as s:
            await connect.on_organization_updated(
                bos, s, Envelope.wrap(event, producer="tokens", org_id="org_t")
            )
    applied = provider.client.v1.accounts.retrieve(controlled.id)
    assert applied.settings.payouts.schedule.interval == "weekly"
    async with bos.db.transaction() as s:
        rows = {
            r.account_id: r
            for r in (
                await s.execute(
                    select(payout_schedules).where(
                        payout_schedules.c.account_id.in_([controlled.id, standard.id])
                    )
                )
            ).all()
        }
    assert rows[controlled.id].status == "applied"
    assert rows[standard.id].status == "refused"
