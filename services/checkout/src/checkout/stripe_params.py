"""The parameters of every Stripe request checkout sends, as pure functions: what each call
site puts on the wire is decided (and tested) here, against the pinned API version
(bos_common.stripe_api.STRIPE_API_VERSION) and Stripe's documented rules
(https://docs.stripe.com/api).

- Automatic payment methods are on by default, so a server-side confirm without a
  `return_url` is refused unless redirect-based methods are ruled out: every intent BOS
  confirms is cards-only (`automatic_payment_methods[allow_redirects]=never`).
- An on-session confirm whose 3DS challenge the page finishes with Stripe.js
  (`stripe.handleNextAction`) passes `use_stripe_sdk=true`; off-session ones never do.
- A refund of a destination charge reverses the merchant's transfer and the platform's
  fee only when asked (`reverse_transfer`, `refund_application_fee`).
- A transfer of funds still pending names its charge (`source_transaction`).
"""

from __future__ import annotations

from stripe.params import (
    AccountUpdateParams,
    AccountUpdateParamsSettingsPayoutsSchedule,
    CustomerCreateParams,
    PaymentIntentCreateParams,
    RefundCreateParams,
    SetupIntentCreateParams,
    TransferCreateParams,
    TransferCreateReversalParams,
)

from bos_common.events import PayoutSchedule

# Typed as the SDK's params of the pinned version: mypy refuses a name or a type that
# version does not have. Cards (wallets are cards) only: nothing redirects the customer.


def customer(*, email: str, name: str | None, metadata: dict[str, str]) -> CustomerCreateParams:
    """The Stripe customer of a BOS customer. No `name` when there is none: Stripe reads an
    empty string as unsetting it and refuses that on create (`parameter_invalid_empty`)."""
    params: CustomerCreateParams = {"email": email, "metadata": metadata}
    if name:
        params["name"] = name
    return params


def _card_charge(
    *,
    amount: int,
    currency: str,
    customer: str,
    payment_method: str,
    metadata: dict[str, str],
    application_fee: int | None,
    destination: str | None,
) -> PaymentIntentCreateParams:
    """What every PaymentIntent checkout creates has: a cards-only charge of `customer`'s
    `payment_method`, confirmed at once. With `destination`, a destination charge carrying
    the platform's fee."""
    params: PaymentIntentCreateParams = {
        "amount": amount,
        "currency": currency,
        "customer": customer,
        "payment_method": payment_method,
        "confirm": True,
        "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        "metadata": metadata,
    }
    if destination:
        params["application_fee_amount"] = application_fee or 0
        params["transfer_data"] = {"destination": destination}
    return params


def checkout_payment_intent(
    *,
    amount: int,
    currency: str,
    customer: str,
    payment_method: str,
    metadata: dict[str, str],
    application_fee: int | None = None,
    destination: str | None = None,
) -> PaymentIntentCreateParams:
    """The on-session charge of a checkout, confirmed at once; the card is kept for
    renewals. With `destination`, a destination charge carrying the platform's fee."""
    params = _card_charge(
        amount=amount,
        currency=currency,
        customer=customer,
        payment_method=payment_method,
        metadata=metadata,
        application_fee=application_fee,
        destination=destination,
    )
    params["use_stripe_sdk"] = True
    params["setup_future_usage"] = "off_session"
    params["expand"] = ["payment_method"]
    return params


def setup_intent(
    *, customer: str, payment_method: str | None, metadata: dict[str, str]
) -> SetupIntentCreateParams:
    """A card saved for off-session charges (a trial's card, a card update from the
    portal), confirmed on-session at once when the page gave its payment method."""
    params: SetupIntentCreateParams = {
        "customer": customer,
        "usage": "off_session",
        "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        "metadata": metadata,
    }
    if payment_method:
        params["payment_method"] = payment_method
        params["confirm"] = True
        params["use_stripe_sdk"] = True
        params["expand"] = ["payment_method"]
    return params


def renewal_payment_intent(
    *,
    amount: int,
    currency: str,
    customer: str,
    payment_method: str,
    metadata: dict[str, str],
    description: str | None,
    application_fee: int | None = None,
    destination: str | None = None,
) -> PaymentIntentCreateParams:
    """An off-session charge of a saved card: no customer is there to authenticate, so
    no `use_stripe_sdk` (a card that needs it fails with `authentication_required`)."""
    params = _card_charge(
        amount=amount,
        currency=currency,
        customer=customer,
        payment_method=payment_method,
        metadata=metadata,
        application_fee=application_fee,
        destination=destination,
    )
    params["off_session"] = True
    if description:
        params["description"] = description
    return params


def refund(
    *, payment_intent: str, connect_mode: str | None, reason: str, payment_id: str
) -> RefundCreateParams:
    """A whole refund of a payment the customer should never have made (a second charge
    for a fulfilled checkout, a renewal of an invoice voided meanwhile): nobody keeps any
    of it. On a destination charge the merchant's transfer and the platform's fee are
    reversed with it, so the platform's balance does not pay the merchant's share. A
    held payment ("held") or one without Connect has no transfer to reverse."""
    params: RefundCreateParams = {
        "payment_intent": payment_intent,
        "metadata": {"reason": reason, "payment_id": payment_id},
    }
    if connect_mode == "destination":
        params["reverse_transfer"] = True
        params["refund_application_fee"] = True
    return params


def held_transfer(
    *,
    amount: int,
    currency: str,
    destination: str,
    source_charge: str | None,
    payment_id: str,
    org_id: str,
) -> TransferCreateParams:
    """The merchant's share of a payment taken on the platform (12.2). Tied to its charge,
    so Stripe draws on that charge's funds even while they are pending (without it the
    platform's available balance must cover it: `balance_insufficient`)."""
    params: TransferCreateParams = {
        "amount": amount,
        "currency": currency,
        "destination": destination,
        "metadata": {"payment_id": payment_id, "org_id": org_id},
    }
    if source_charge:
        params["source_transaction"] = source_charge
    return params


def transfer_reversal(*, payment_id: str) -> TransferCreateReversalParams:
    """The whole merchant share of a refunded payment taken back from its account."""
    return {"metadata": {"reason": "refunded", "payment_id": payment_id}}


def payout_schedule(schedule: PayoutSchedule) -> AccountUpdateParams:
    """The organization's payout schedule on its connected account (12.4)."""
    wanted: AccountUpdateParamsSettingsPayoutsSchedule = {"interval": schedule.interval}
    if schedule.delay_days is not None:
        wanted["delay_days"] = schedule.delay_days
    if schedule.weekly_anchor is not None:
        wanted["weekly_anchor"] = schedule.weekly_anchor
    if schedule.monthly_anchor is not None:
        wanted["monthly_anchor"] = schedule.monthly_anchor
    return {"settings": {"payouts": {"schedule": wanted}}}
