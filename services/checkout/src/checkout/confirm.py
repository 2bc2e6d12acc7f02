"""Confirming a checkout: the process that takes the money through Stripe with no double
charge. It owns its transactions: each phase commits on its own, so no database
connection is held while Stripe answers (the route opens none).

No double charge, by construction:
1. the checkout moves `open -> processing` in a conditional UPDATE, so of two concurrent
   confirms exactly one proceeds (the other gets 409), and a payment row with a Stripe
   idempotency key derived from the checkout, the attempt and the card is committed first;
2. the Stripe call carries that key, so a retry replays the same intent;
3. the outcome is recorded through the payment state machine (`checkout.payment_states`),
   with conditional updates; a success that arrives for a checkout another payment
   already fulfilled is refunded, never kept.

A free checkout has no payment: `confirm_free_and_wait` commits its completion, then
waits for the subscription.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import stripe

from bos_common.auth import Identity
from bos_common.ids import new_id
from bos_common.outbox import outbox_row
from bos_common.stripe_api import as_dict, is_provider_outage, provider_unavailable
from bos_common.telemetry import sampled_traceparent
from checkout import (
    connect,
    errors,
    funnel,
    recovery,
    recovery_repository,
    repository,
    service,
    stripe_creates,
)
from checkout.clients import OrganizationBilling
from checkout.money import platform_fee
from checkout.payment_states import (
    SUCCEEDED,
    StripeDecline,
    after_success,
    card_error,
    mark_payment_failed,
    mark_payment_succeeded,
    payment_method_details,
)
from checkout.records import (
    Checkout,
    ConfirmedPayment,
    OrphanedPayment,
    PayingCustomer,
    Payment,
)
from checkout.runtime import CheckoutRuntime
from checkout.schemas import ConfirmOut, NextAction

log = logging.getLogger("checkout.payments")


@dataclass(frozen=True)
class ChargePlan:
    kind: str  # "checkout" (a PaymentIntent) or "setup" (a SetupIntent: nothing charged now)
    amount: int
    currency: str
    platform_fee: int
    destination: str | None  # destination charge to the connected account
    hold_for: str | None  # account not verified yet: take on the platform, transfer later


def plan_charge(
    row: Checkout, billing: OrganizationBilling, charges_enabled: bool | None
) -> ChargePlan:
    # During a trial only the setup fee is due now; the first period is charged at its end.
    amount = (0 if row.trial_days else row.amount_total) + row.setup_fee
    fee = platform_fee(amount, billing.platform_fee_bps)
    account = billing.stripe_account_id
    return ChargePlan(
        kind="checkout" if amount > 0 else "setup",
        amount=amount,
        currency=row.currency,
        platform_fee=fee if amount > 0 else 0,
        destination=account if account and charges_enabled else None,
        hold_for=account if account and not charges_enabled and amount > 0 else None,
    )


# --- confirm ---------------------------------------------------------------------------


async def confirm(
    runtime: CheckoutRuntime,
    identity: Identity,
    checkout_id: str,
    payment_method: str,
    client_secret: str | None,
) -> ConfirmOut:
    begun = await _begin(runtime, identity, checkout_id, payment_method, client_secret)
    if isinstance(begun, ConfirmOut):
        return begun  # the payment a dead confirm left, settled for this retry
    payment, row, customer = begun
    funnel.step("confirmed")
    # Until Stripe's answer is recorded, this request holds the payment's lease: should
    # the process die, the recovery sweep settles the payment once the lease runs out.
    with runtime.payment_leases.hold(payment.id):
        return await _charge(runtime, row, payment, customer)


async def _charge(
    runtime: CheckoutRuntime,
    row: Checkout,
    payment: Payment,
    customer: PayingCustomer,
) -> ConfirmOut:
    try:
        stripe_customer = await stripe_creates.ensure_stripe_customer(runtime, customer)
        intent = await stripe_creates.create_intent(runtime, payment, stripe_customer)
    except (stripe.CardError, stripe.InvalidRequestError) as exc:
        # A decline, or a payment method Stripe does not accept: the customer retries.
        return await record_failure(runtime, payment, exc)
    except Exception as exc:
        await abandon(runtime, row.id, payment.id, payment.attempt)
        if isinstance(exc, stripe.StripeError) and is_provider_outage(exc):
            raise provider_unavailable() from exc
        raise
    if intent["status"] == "succeeded" and await _record_success(
        runtime, row, payment, customer, stripe_customer, intent
    ):
        return ConfirmOut(status="processing", checkout_id=row.id, payment_id=payment.id)
    return await record_intent(runtime, payment.id, intent)


# A checkout read for a confirm that changed before its transition (a coupon applied, a
# concurrent confirm): read and planned again this many times at most.
BEGIN_ATTEMPTS = 3


async def _begin(
    runtime: CheckoutRuntime,
    identity: Identity,
    checkout_id: str,
    payment_method: str,
    client_secret: str | None,
) -> tuple[Payment, Checkout, PayingCustomer] | ConfirmOut:
    """Phase 1, committed before Stripe is called: the guarded transition and the
    payment row that carries the idempotency key (one statement, see
    repository.start_payment). A checkout still `processing` with a payment whose
    confirm died (its lease ran out) has that payment settled first, as the recovery
    sweep would: reopened, the checkout is confirmed anew; otherwise the settled
    payment's answer is this confirm's."""
    for _ in range(BEGIN_ATTEMPTS):
        async with runtime.db.driver_connection() as conn:
            row = await repository.read_checkout(conn, checkout_id)
        row = service.authorize(identity, row, client_secret)
        if row.status == "open" and row.expires_at <= service.utcnow():
            async with runtime.db.transaction() as s:
                row = await service.expire_if_due(s, row)
        if row.status == "processing" and row.completed_at is None:
            settled = await settle_left_payment_of(runtime, row.id)
            if settled is not None and settled[0] in REOPENED:
                continue
            if settled is not None and settled[1] is not None:
                return settled[1]
            if settled is None and (awaiting := await _awaiting_customer(runtime, row)):
                return awaiting
        if row.status != "open":
            raise errors.checkout_not_open(row.status)
        if row.is_free:
            raise errors.is_free()
        if row.coupon is not None:
            async with runtime.db.transaction() as s:
                await service.hold_coupon(runtime, s, row)
        billing = await runtime.organizations.billing(row.org_id)
        enabled = await connect.charges_enabled(runtime, billing.stripe_account_id)
        plan = plan_charge(row, billing, enabled)
        payment_id = new_id("pay")
        connect_mode = "destination" if plan.destination else ("held" if plan.hold_for else None)
        # A traced confirm: Stripe's webhooks about this intent carry its span, which their
        # trace links to (webhooks.service). Stored with the payment, so a replay of its
        # intent create (checkout.recovery) sends the very same metadata.
        traceparent = sampled_traceparent()
        async with runtime.db.driver_connection() as conn:
            started = await repository.start_payment(
                conn,
                checkout_id=row.id,
                seen_updated_at=row.updated_at,
                now=service.utcnow(),
                payment_id=payment_id,
                kind=plan.kind,
                amount=plan.amount,
                currency=plan.currency,
                platform_fee=plan.platform_fee,
                destination_account=plan.destination or plan.hold_for,
                connect_mode=connect_mode,
                payment_method_id=payment_method,
                intent_traceparent=traceparent,
            )
        if started is None:
            continue  # changed since it was read: its state now decides
        payment, customer = started
        processing = replace(row, status="processing", attempt=payment.attempt)
        return payment, processing, customer
    raise errors.checkout_in_progress()


async def abandon(
    runtime: CheckoutRuntime,
    checkout_id: str,
    payment_id: str,
    attempt: int,
    *,
    error_code: str = "payment_provider_unavailable",
    error_message: str = "The payment provider did not answer.",
) -> None:
    """Stripe gave no decision (or never got the request): the payment is closed as
    canceled (a complete record, so a success Stripe reports later is still recognised)
    and the checkout reopens (11.3)."""
    async with runtime.db.transaction() as s:
        await repository.update_payment(
            s,
            payment_id,
            expected=("pending",),
            status="canceled",
            error_code=error_code,
            error_message=error_message,
        )
        await repository.transition(
            s,
            checkout_id,
            expected=("processing",),
            where=(repository.cs.c.attempt == attempt, repository.cs.c.completed_at.is_(None)),
            status="open",
        )


async def record_failure(
    runtime: CheckoutRuntime, payment: ConfirmedPayment, exc: stripe.StripeError
) -> ConfirmOut:
    """Stripe declined the intent's create (402) or refused its payment method (400)."""
    error_obj = as_dict(exc.error)
    decline = error_obj.get("decline_code")
    intent = error_obj.get("payment_intent") or error_obj.get("setup_intent")
    if isinstance(exc, stripe.CardError):
        error = card_error(exc.code, decline)
    else:
        error = card_error("invalid_payment_method", None)
    # Plan 18.4: what was asked and what Stripe answered, with both sides' request ids
    # (ours comes with every line; Stripe's finds the call in its dashboard).
    log.warning(
        "payment declined by Stripe",
        extra={
            "org_id": payment.org_id,
            "checkout_id": payment.checkout_id,
            "payment_id": payment.id,
            "stripe_idempotency_key": payment.stripe_idempotency_key,
            "stripe_request_id": exc.request_id,
            "stripe_http_status": exc.http_status,
            "stripe_error": {
                k: error_obj.get(k)
                for k in ("type", "code", "decline_code", "message", "param", "doc_url")
                if error_obj.get(k)
            },
            "error_code": error.code,
        },
    )
    async with runtime.db.transaction() as s:
        await mark_payment_failed(
            runtime,
            s,
            payment.id,
            error,
            intent_id=intent.get("id") if intent else None,
            decline=StripeDecline(exc.code, decline, error_obj.get("message")),
        )
    return ConfirmOut(
        status="failed", checkout_id=payment.checkout_id, payment_id=payment.id, error=error
    )


async def _record_success(
    runtime: CheckoutRuntime,
    row: Checkout,
    payment: Payment,
    customer: PayingCustomer,
    stripe_customer: str,
    intent: dict[str, Any],
) -> bool:
    """Phase 3 when Stripe answered `succeeded`, the common case: the payment's success
    and the checkout's fulfilment (what mark_payment_succeeded and service.fulfil write)
    in one statement. False, with nothing written, when the state is not the one phase 1
    left (a webhook or another payment got there first) or the merchant's share must be
    held (12.2): record_intent then takes the general path."""
    if payment.connect_mode == "held":
        return False
    pm_id, fingerprint = payment_method_details(intent.get("payment_method"))
    now = service.utcnow()
    paid = replace(
        payment,
        status="succeeded",
        stripe_intent_id=intent["id"],
        payment_method_id=pm_id,
        card_fingerprint=fingerprint,
    )
    buyer = replace(customer, stripe_customer_id=stripe_customer)
    event = outbox_row(
        service.completed_event(row, buyer, paid, now), producer=runtime.name, org_id=row.org_id
    )
    async with runtime.db.driver_connection() as conn:
        recorded = await repository.record_success(
            conn,
            payment_id=payment.id,
            checkout_id=row.id,
            customer_id=customer.id,
            stripe_intent_id=intent["id"],
            payment_method_id=pm_id,
            card_fingerprint=fingerprint,
            completed_at=now,
            event=event,
        )
    if recorded:
        funnel.payment_succeeded(payment)
    return recorded


async def record_intent(
    runtime: CheckoutRuntime, payment_id: str, intent: dict[str, Any]
) -> ConfirmOut:
    """Phase 3: what Stripe answered, through the payment's state machine."""
    pm_id, fingerprint = payment_method_details(intent.get("payment_method"))
    ids = {
        "stripe_intent_id": intent["id"],
        "payment_method_id": pm_id,
        "card_fingerprint": fingerprint,
    }
    async with runtime.db.transaction() as s:
        if intent["status"] == "succeeded":
            # The common case in one guarded UPDATE: Stripe's ids and the success
            # together (pending -> succeeded is a transition mark_payment_succeeded
            # allows). Not pending any more (a webhook got there first): as below.
            done = await repository.update_payment(
                s, payment_id, expected=("pending",), **ids, **SUCCEEDED
            )
            if done is not None:
                await after_success(runtime, s, done)
                return ConfirmOut(
                    status="processing", checkout_id=done.checkout_id, payment_id=done.id
                )
        payment = await repository.update_payment(
            s, payment_id, expected=("pending",), **ids
        ) or await repository.get_payment(s, payment_id)
        assert payment is not None
        status = intent["status"]
        if status == "succeeded":
            await mark_payment_succeeded(runtime, s, payment)
            return ConfirmOut(
                status="processing", checkout_id=payment.checkout_id, payment_id=payment.id
            )
        if status in ("requires_action", "requires_confirmation"):
            if await repository.update_payment(
                s, payment.id, expected=("pending",), status="requires_action"
            ):
                funnel.step("requires_action", s)
            return ConfirmOut(
                status="requires_action",
                checkout_id=payment.checkout_id,
                payment_id=payment.id,
                next_action=NextAction(client_secret=intent["client_secret"]),
            )
        if status == "processing":
            return ConfirmOut(
                status="processing", checkout_id=payment.checkout_id, payment_id=payment.id
            )
        last = intent.get("last_payment_error") or intent.get("last_setup_error") or {}
        error = card_error(last.get("code"), last.get("decline_code"))
        await mark_payment_failed(
            runtime,
            s,
            payment.id,
            error,
            intent_id=None,
            decline=StripeDecline(last.get("code"), last.get("decline_code"), last.get("message")),
        )
        return ConfirmOut(
            status="failed", checkout_id=payment.checkout_id, payment_id=payment.id, error=error
        )


# --- a payment whose confirm died (checkout.recovery) -----------------------------------

# Settled so that the checkout is open again: a retried confirm charges anew.
REOPENED = (recovery.Resolution.NOT_CHARGED, recovery.Resolution.DECLINED)


async def settle_left_payment_of(
    runtime: CheckoutRuntime, checkout_id: str
) -> tuple[recovery.Resolution, ConfirmOut | None] | None:
    """The pending payment of `checkout_id` whose confirm died, taken over (its lease ran
    out) and settled; None when there is none (its confirm is alive, or another process
    is settling it)."""
    leases = runtime.payment_leases
    async with runtime.db.transaction() as s:
        taken = await recovery_repository.take_over_orphaned_payments(
            s, leases.lease, checkout_id=checkout_id
        )
    if not taken:
        return None
    try:
        with leases.hold(taken[0].id):
            return await settle_left_payment(runtime, taken[0])
    except Exception as exc:
        # Given up at once: the next sweep, or the next retry, takes it again.
        async with runtime.db.transaction() as s:
            await recovery_repository.expire_payment_lease(s, taken[0].id, leases.lease)
        if isinstance(exc, stripe.StripeError) and is_provider_outage(exc):
            raise provider_unavailable() from exc
        raise


async def settle_left_payment(
    runtime: CheckoutRuntime, payment: OrphanedPayment
) -> tuple[recovery.Resolution, ConfirmOut | None]:
    """A payment taken over from a confirm that died (recovery_repository), settled the way
    that confirm would have: from the intent Stripe has for it, or by sending its intent's
    create again (the same key, the same parameters: Stripe's replay, or the create
    performed now). Raises when Stripe could not be asked: the payment stays pending."""
    age = datetime.now(UTC) - payment.created_at
    outcome = recovery.decide(
        await _intent_of(runtime, payment),
        customer_at_stripe=payment.stripe_customer_id is not None,
        age=age,
    )
    answer: ConfirmOut | None = None
    if outcome.resolution is recovery.Resolution.REPLAY_CREATE:
        assert payment.stripe_customer_id is not None  # decided only with one at Stripe
        try:
            intent = await stripe_creates.create_intent(
                runtime, payment, payment.stripe_customer_id
            )
        except stripe.StripeError as exc:
            error = as_dict(exc.error)
            refused = recovery.decide_replay_refusal(
                exc.http_status, error.get("type"), error.get("code")
            )
            if refused is None:
                raise
            _log_settling(payment, refused, "replayed create refused")
            if refused is recovery.Resolution.DECLINED:
                answer = await record_failure(runtime, payment, exc)
            return refused, answer
        outcome = recovery.decide(intent, customer_at_stripe=True, age=age)
        _log_settling(payment, outcome.resolution, "replayed create")
    else:
        _log_settling(payment, outcome.resolution, "intent at Stripe")
    if outcome.resolution is recovery.Resolution.NOT_CHARGED:
        await abandon(
            runtime,
            payment.checkout_id,
            payment.id,
            payment.attempt,
            error_code="payment_interrupted",
            error_message="The payment was interrupted before reaching the card network.",
        )
    elif outcome.resolution is not recovery.Resolution.WAIT:
        assert outcome.intent is not None
        answer = await record_intent(runtime, payment.id, outcome.intent)
    return outcome.resolution, answer


def _log_settling(payment: OrphanedPayment, resolution: recovery.Resolution, source: str) -> None:
    log.warning(
        "settling payment %s of checkout %s left by a dead confirm (%s): %s",
        payment.id,
        payment.checkout_id,
        source,
        resolution.value,
        extra={"org_id": payment.org_id, "checkout_id": payment.checkout_id},
    )


# Newest first: the intent of a payment confirmed seconds ago is on the first page.
INTENT_PAGES = 3


async def _awaiting_customer(runtime: CheckoutRuntime, checkout: Checkout) -> ConfirmOut | None:
    """A confirm while the checkout's payment awaits the customer's 3-D Secure (typically
    the same confirm again, its answer lost to a dropped connection or a process killed
    after it recorded the intent): that payment's answer, from its intent as Stripe has it
    now (the next action again, or the outcome the authentication has had since), not a
    409 the customer cannot get past. None in any other state."""
    async with runtime.db.transaction() as s:
        payment = await repository.latest_payment_of_checkout(s, checkout.id)
    if (
        payment is None
        or payment.status != "requires_action"
        or payment.attempt != checkout.attempt
        or not payment.stripe_intent_id
    ):
        return None
    try:
        intent = await _retrieve_intent(runtime, payment.kind, payment.stripe_intent_id)
    except stripe.StripeError as exc:
        if is_provider_outage(exc):
            raise provider_unavailable() from exc
        raise
    return await record_intent(runtime, payment.id, intent)


async def _retrieve_intent(runtime: CheckoutRuntime, kind: str, intent_id: str) -> dict[str, Any]:
    intents: Any = (
        runtime.stripe.v1.setup_intents if kind == "setup" else runtime.stripe.v1.payment_intents
    )
    return as_dict(await intents.retrieve_async(intent_id))


async def _intent_of(runtime: CheckoutRuntime, payment: OrphanedPayment) -> dict[str, Any] | None:
    """The intent Stripe has for `payment` (created with its metadata), or None. No
    Stripe customer recorded means confirm died before it could create one."""
    if payment.stripe_intent_id:
        return await _retrieve_intent(runtime, payment.kind, payment.stripe_intent_id)
    intents: Any = (
        runtime.stripe.v1.setup_intents
        if payment.kind == "setup"
        else runtime.stripe.v1.payment_intents
    )
    if not payment.stripe_customer_id:
        return None
    params: dict[str, Any] = {"customer": payment.stripe_customer_id, "limit": 100}
    for _ in range(INTENT_PAGES):
        page = await intents.list_async(params)
        found = recovery.intent_of_payment([as_dict(i) for i in page.data], payment.id)
        if found is not None or not page.has_more:
            return found
        params["starting_after"] = page.data[-1].id
    return None


async def confirm_free_and_wait(
    runtime: CheckoutRuntime, identity: Identity, checkout_id: str, client_secret: str | None
) -> tuple[Checkout, str]:
    """service.confirm_free, committed, then `complete` once the subscription exists
    (5.1), or `processing` after `free_confirm_wait_seconds`."""
    async with runtime.completions.watching(checkout_id) as completed:
        async with runtime.db.transaction() as session:
            row = await service.load_checkout(session, identity, checkout_id, client_secret)
            row = await service.confirm_free(runtime, session, row)

        async def status() -> str | None:
            async with runtime.db.transaction() as session:
                return await repository.checkout_status(session, checkout_id)

        current = row.status
        if current != "complete":
            timeout = runtime.settings.free_confirm_wait_seconds
            current = await runtime.completions.wait(completed, status, timeout) or current
    return row, "complete" if current == "complete" else "processing"
