"""Checkout sessions' rules: access, amounts and trials, coupons, cancel, free
confirmation, fulfilment and the response. Works in the caller's transaction and never
opens one: the request or consumer scope, or the process that owns its transactions
(creation.py, confirm.py), commits."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.auth import Identity
from bos_common.errors import BOSError
from bos_common.events import AppliedCoupon, CheckoutCompletedV1, PriceSnapshot
from checkout import customer_repository, errors, repository
from checkout.clients import CouponOutcome
from checkout.records import BuyingCustomer, Checkout, ExpiredCheckout, Payment
from checkout.runtime import CheckoutRuntime
from checkout.schemas import (
    CheckoutSessionOut,
    CustomerOut,
    PaymentOut,
    ProductOut,
    TrialOut,
)

log = logging.getLogger("checkout")

# A coupon's hold outlives the checkout a little, so it never lapses while a payment
# confirmed at the last minute is still being fulfilled.
COUPON_HOLD_MARGIN_SECONDS = 3600


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- access ------------------------------------------------------------------------


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_client_secret(checkout_id: str) -> str:
    return f"{checkout_id}_secret_{secrets.token_urlsafe(24)}"


async def load_checkout(
    session: AsyncSession, identity: Identity, checkout_id: str, client_secret: str | None
) -> Checkout:
    """The checkout if this caller may act on it (see `authorize`)."""
    row = await repository.get_checkout_by_id(session, checkout_id)
    return authorize(identity, row, client_secret)


def authorize(identity: Identity, row: Checkout | None, client_secret: str | None) -> Checkout:
    """`row` (the checkout read by id, or None) if this caller may act on it.

    API keys and session tokens see their organization's checkouts (another org's is 404);
    a session token only its own external user's (403 otherwise); the hosted page proves
    itself with the checkout's client secret."""
    if identity.principal_type in ("api_key", "session", "admin", "service") and identity.org_id:
        if row is None or row.org_id != identity.org_id:
            raise errors.checkout_not_found()
        if identity.principal_type == "session" and row.external_user_id not in (
            None,
            identity.external_user_id,
        ):
            raise errors.not_your_checkout()
        return row
    if (
        client_secret
        and row is not None
        and hmac.compare_digest(row.client_secret_hash, hash_secret(client_secret))
    ):
        return row
    raise errors.checkout_not_found()


async def expire_if_due(session: AsyncSession, row: Checkout) -> Checkout:
    if row.status == "open" and row.expires_at <= utcnow():
        expired = await repository.transition(session, row.id, expected=("open",), status="expired")
        return expired or row
    return row


# --- creation -------------------------------------------------------------------------


def normalize_email(raw: str | None) -> str:
    if raw is None or not raw.strip():
        raise errors.email_required()
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        raise errors.invalid_email() from None


def amounts(price: PriceSnapshot, discount: int) -> dict[str, Any]:
    total = max(0, price.amount - discount)
    is_free = price.amount == 0 and price.setup_fee == 0
    return {
        "amount_subtotal": price.amount,
        "amount_discount": price.amount - total,
        "amount_total": total,
        "setup_fee": price.setup_fee,
        "is_free": is_free,
    }


def trial_days(price: PriceSnapshot, coupon: AppliedCoupon | None) -> int:
    """A free product needs no trial (5.4); a coupon may extend one (TRIAL30)."""
    if price.amount == 0:
        return 0
    extension = coupon.trial_extension_days if coupon else 0
    return price.trial_days + extension if (price.trial_days or extension) else 0


async def _reserve_coupon(
    runtime: CheckoutRuntime,
    session: AsyncSession,
    org_id: str,
    checkout_id: str,
    customer_id: str,
    code: str,
    price: PriceSnapshot,
) -> CouponOutcome:
    """Catalog decides whether the coupon applies, given the customer's newness."""
    is_new = not await customer_repository.customer_has_paid_before(session, customer_id)
    return await runtime.catalog.evaluate_coupon(org_id, code, price, customer_is_new=is_new)


async def hold_coupon(runtime: CheckoutRuntime, session: AsyncSession, row: Checkout) -> None:
    """Right before money moves: take one of the coupon's redemptions for this checkout
    (409-free: the catalog answers `coupon_exhausted` when the last one is gone)."""
    if row.coupon is None:
        return
    price = PriceSnapshot.model_validate(row.price)
    is_new = not await customer_repository.customer_has_paid_before(session, row.customer_id)
    await runtime.catalog.reserve_coupon(
        row.org_id,
        row.coupon["code"],
        price,
        checkout_id=row.id,
        customer_id=row.customer_id,
        customer_is_new=is_new,
        ttl_seconds=max(60, int((row.expires_at - utcnow()).total_seconds()))
        + COUPON_HOLD_MARGIN_SECONDS,
    )


async def release_coupon(runtime: CheckoutRuntime, row: Checkout | ExpiredCheckout) -> None:
    """Give back a canceled or expired checkout's held redemption. Best effort: the
    hold lapses by itself at the checkout's expiry."""
    if row.coupon is None:
        return
    try:
        await runtime.catalog.release_coupon(row.org_id, row.id)
    except BOSError as exc:
        log.warning("could not release the coupon of %s now: %s", row.id, exc.message)


async def apply_coupon(
    runtime: CheckoutRuntime, session: AsyncSession, row: Checkout, code: str
) -> Checkout:
    row = await expire_if_due(session, row)
    if row.status != "open":
        raise errors.checkout_not_open(row.status)
    if row.coupon is not None:
        raise errors.coupon_already_applied()
    price = PriceSnapshot.model_validate(row.price)
    outcome = await _reserve_coupon(
        runtime, session, row.org_id, row.id, row.customer_id, code, price
    )
    figures = amounts(price, outcome.amount_discount)
    updated = await repository.set_coupon(
        session,
        row.id,
        outcome.coupon.model_dump(mode="json"),
        figures["amount_discount"],
        figures["amount_total"],
    )
    if updated is None:  # a concurrent request applied one first
        raise errors.coupon_already_applied()
    trial = trial_days(price, outcome.coupon)
    if trial != updated.trial_days:
        updated = (
            await repository.transition(session, row.id, expected=("open",), trial_days=trial)
            or updated
        )
    return updated


async def cancel_checkout(session: AsyncSession, row: Checkout) -> Checkout:
    if row.status == "canceled":
        return row
    canceled = await repository.transition(session, row.id, expected=("open",), status="canceled")
    if canceled is None:
        current = await repository.get_checkout_by_id(session, row.id)
        assert current is not None
        if current.status == "canceled":
            return current
        raise errors.checkout_not_open(current.status)
    return canceled


# --- fulfilment -----------------------------------------------------------------------


async def fulfil(
    runtime: CheckoutRuntime,
    session: AsyncSession,
    checkout_id: str,
    *,
    payment: Payment | None,
) -> bool:
    """Publish `checkout.completed.v1` once per checkout; False when already done."""
    now = utcnow()
    row = await repository.transition(
        session,
        checkout_id,
        expected=("processing",),
        where=(repository.cs.c.completed_at.is_(None),),
        completed_at=now,
        payment_id=payment.id if payment is not None else None,
        last_error=None,
    )
    if row is None:
        return False
    customer = None
    if payment is not None and payment.payment_method_id:
        # 4.8: the card that paid is saved and becomes the customer's default.
        customer = await customer_repository.set_default_payment_method(
            session, row.customer_id, payment.payment_method_id, payment.card_fingerprint
        )
    if customer is None:
        customer = await customer_repository.get_customer(session, row.org_id, row.customer_id)
    assert customer is not None
    await runtime.publish(session, completed_event(row, customer, payment, now), org_id=row.org_id)
    return True


def completed_event(
    row: Checkout, customer: BuyingCustomer, payment: Payment | None, completed_at: datetime
) -> CheckoutCompletedV1:
    """`checkout.completed.v1` of `row` paid by `payment` (None: free), `customer` as it
    is after fulfilment (its Stripe customer and external user)."""
    return CheckoutCompletedV1(
        checkout_id=row.id,
        customer_id=customer.id,
        customer_email=row.customer_email,
        customer_name=row.customer_name,
        external_user_id=row.external_user_id or customer.external_user_id,
        price=PriceSnapshot.model_validate(row.price),
        coupon=AppliedCoupon.model_validate(row.coupon) if row.coupon else None,
        amount_subtotal=row.amount_subtotal,
        amount_discount=row.amount_discount,
        amount_total=row.amount_total,
        is_free=row.is_free,
        trial_days=row.trial_days,
        payment_id=payment.id if payment is not None else None,
        payment_intent_id=_intent(payment, "pi_"),
        setup_intent_id=_intent(payment, "seti_"),
        stripe_customer_id=customer.stripe_customer_id,
        payment_method_id=payment.payment_method_id if payment is not None else None,
        card_fingerprint=payment.card_fingerprint if payment is not None else None,
        metadata=row.metadata or {},
        completed_at=completed_at,
    )


def _intent(payment: Payment | None, prefix: str) -> str | None:
    if payment is None or not payment.stripe_intent_id:
        return None
    return str(payment.stripe_intent_id) if payment.stripe_intent_id.startswith(prefix) else None


async def confirm_free(runtime: CheckoutRuntime, session: AsyncSession, row: Checkout) -> Checkout:
    """No Stripe call: the checkout completes as soon as the subscription exists (2.2, 5.1)."""
    row = await expire_if_due(session, row)
    if not row.is_free:
        raise errors.not_free()
    if row.status in ("processing", "complete"):
        return row
    await hold_coupon(runtime, session, row)
    started = await repository.transition(session, row.id, expected=("open",), status="processing")
    if started is None:
        current = await repository.get_checkout_by_id(session, row.id)
        assert current is not None
        if current.status in ("processing", "complete"):
            return current
        raise errors.checkout_not_open(current.status)
    await fulfil(runtime, session, row.id, payment=None)
    return started


# --- responses ---------------------------------------------------------------------------


def checkout_out(
    runtime: CheckoutRuntime,
    row: Checkout,
    payment: Payment | None = None,
    client_secret: str | None = None,
    price: PriceSnapshot | None = None,
) -> CheckoutSessionOut:
    """`price`: the snapshot `row.price` was written from, when the caller has it (no
    validation of the row's JSON again)."""
    if price is None:
        price = PriceSnapshot.model_validate(row.price)
    trial = None
    if row.trial_days and not row.is_free:
        start = row.completed_at or utcnow()
        trial = TrialOut(days=row.trial_days, ends_at=start + timedelta(days=row.trial_days))
    url = f"{runtime.settings.public_base_url.rstrip('/')}/checkout/{row.id}"
    return CheckoutSessionOut(
        id=row.id,
        status=row.status,
        price_id=row.price_id,
        product=ProductOut(id=price.product_id, name=price.product_name, features=price.features),
        currency=row.currency,
        interval=price.interval,
        amount_subtotal=row.amount_subtotal,
        amount_discount=row.amount_discount,
        amount_total=row.amount_total,
        setup_fee=row.setup_fee,
        is_free=row.is_free,
        trial=trial,
        coupon=row.coupon,
        customer=CustomerOut(id=row.customer_id, email=row.customer_email, name=row.customer_name),
        metadata=row.metadata or {},
        # The secret rides in the fragment: browsers never send it to a server log.
        url=f"{url}#{client_secret}" if client_secret else url,
        success_url=row.success_url,
        expires_at=row.expires_at,
        subscription_id=row.subscription_id,
        payment=payment_out(payment) if payment is not None else None,
        client_secret=client_secret,
    )


def payment_out(payment: Payment) -> PaymentOut:
    error = None
    if payment.error_code:
        error = {"code": payment.error_code, "message": payment.error_message or ""}
    return PaymentOut(
        id=payment.id,
        status=payment.status,
        amount=payment.amount,
        currency=payment.currency,
        platform_fee=payment.platform_fee,
        net_amount=payment.net_amount,
        error=error,
    )
