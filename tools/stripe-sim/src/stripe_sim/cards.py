"""Stripe's documented test cards and their outcomes.

See https://docs.stripe.com/testing. Decline cards cannot be attached to a customer (Stripe
validates the card on attach and setup); 4000000000000341 attaches but fails every charge.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from . import errors


class ThreeDS(enum.Enum):
    NONE = "none"
    #: 4000002500003155: required on-session; off-session is fine once the card was set up.
    ON_SESSION = "on_session"
    #: 4000002760003184 and friends: required on every payment, however the card was set up.
    ALWAYS = "always"


@dataclass(frozen=True)
class Decline:
    code: str
    decline_code: str | None
    message: str


GENERIC = Decline("card_declined", "generic_decline", "Your card was declined.")
INSUFFICIENT = Decline("card_declined", "insufficient_funds", "Your card has insufficient funds.")
LOST = Decline("card_declined", "lost_card", "Your card was declined.")
STOLEN = Decline("card_declined", "stolen_card", "Your card was declined.")
EXPIRED = Decline("expired_card", "expired_card", "Your card has expired.")
INCORRECT_CVC = Decline("incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect.")
PROCESSING = Decline(
    "processing_error",
    "processing_error",
    "An error occurred while processing your card. Try again in a little bit.",
)
AUTH_REQUIRED = Decline(
    "authentication_required",
    "authentication_required",
    "Your card was declined. This transaction requires authentication.",
)


@dataclass(frozen=True)
class CardSpec:
    number: str
    brand: str
    funding: str = "credit"
    country: str = "US"
    decline: Decline | None = None
    #: the decline also applies when attaching/setting up (all decline cards but 0341)
    decline_on_attach: bool = False
    three_ds: ThreeDS = ThreeDS.NONE
    tokens: tuple[str, ...] = field(default=())

    @property
    def last4(self) -> str:
        return self.number[-4:]


TEST_CARDS: tuple[CardSpec, ...] = (
    CardSpec("4242424242424242", "visa", tokens=("pm_card_visa", "tok_visa")),
    CardSpec("4000056655665556", "visa", "debit", tokens=("pm_card_visa_debit", "tok_visa_debit")),
    CardSpec("5555555555554444", "mastercard", tokens=("pm_card_mastercard", "tok_mastercard")),
    CardSpec(
        "5200828282828210",
        "mastercard",
        "debit",
        tokens=("pm_card_mastercard_debit", "tok_mastercard_debit"),
    ),
    CardSpec(
        "5105105105105100",
        "mastercard",
        "prepaid",
        tokens=("pm_card_mastercard_prepaid", "tok_mastercard_prepaid"),
    ),
    CardSpec("378282246310005", "amex", tokens=("pm_card_amex", "tok_amex")),
    CardSpec("6011111111111117", "discover", tokens=("pm_card_discover", "tok_discover")),
    CardSpec("3056930009020004", "diners", tokens=("pm_card_diners", "tok_diners")),
    CardSpec("3566002020360505", "jcb", tokens=("pm_card_jcb", "tok_jcb")),
    CardSpec("6200000000000005", "unionpay", tokens=("pm_card_unionpay", "tok_unionpay")),
    CardSpec("4000000000000077", "visa", tokens=("pm_card_bypassPending", "tok_bypassPending")),
    CardSpec(
        "4000000000000002",
        "visa",
        decline=GENERIC,
        decline_on_attach=True,
        tokens=("pm_card_visa_chargeDeclined", "tok_visa_chargeDeclined"),
    ),
    CardSpec(
        "4000000000009995",
        "visa",
        decline=INSUFFICIENT,
        decline_on_attach=True,
        tokens=(
            "pm_card_visa_chargeDeclinedInsufficientFunds",
            "tok_visa_chargeDeclinedInsufficientFunds",
        ),
    ),
    CardSpec(
        "4000000000009987",
        "visa",
        decline=LOST,
        decline_on_attach=True,
        tokens=("pm_card_visa_chargeDeclinedLostCard", "tok_visa_chargeDeclinedLostCard"),
    ),
    CardSpec(
        "4000000000009979",
        "visa",
        decline=STOLEN,
        decline_on_attach=True,
        tokens=("pm_card_visa_chargeDeclinedStolenCard", "tok_visa_chargeDeclinedStolenCard"),
    ),
    CardSpec(
        "4000000000000069",
        "visa",
        decline=EXPIRED,
        decline_on_attach=True,
        tokens=("pm_card_chargeDeclinedExpiredCard", "tok_chargeDeclinedExpiredCard"),
    ),
    CardSpec(
        "4000000000000127",
        "visa",
        decline=INCORRECT_CVC,
        decline_on_attach=True,
        tokens=("pm_card_chargeDeclinedIncorrectCvc", "tok_chargeDeclinedIncorrectCvc"),
    ),
    CardSpec(
        "4000000000000119",
        "visa",
        decline=PROCESSING,
        decline_on_attach=True,
        tokens=("pm_card_chargeDeclinedProcessingError", "tok_chargeDeclinedProcessingError"),
    ),
    CardSpec(
        "4000000000000341",
        "visa",
        decline=GENERIC,
        tokens=("pm_card_chargeCustomerFail", "tok_chargeCustomerFail"),
    ),
    CardSpec(
        "4000002500003155",
        "visa",
        three_ds=ThreeDS.ON_SESSION,
        tokens=("pm_card_authenticationRequiredOnSetup", "tok_authenticationRequiredOnSetup"),
    ),
    CardSpec(
        "4000002760003184",
        "visa",
        three_ds=ThreeDS.ALWAYS,
        tokens=("pm_card_authenticationRequired", "tok_authenticationRequired"),
    ),
    CardSpec(
        "4000000000003220",
        "visa",
        three_ds=ThreeDS.ALWAYS,
        tokens=("pm_card_threeDSecure2Required", "tok_threeDSecure2Required"),
    ),
    CardSpec(
        "4000000000003063",
        "visa",
        three_ds=ThreeDS.ALWAYS,
        tokens=("pm_card_threeDSecureRequired", "tok_threeDSecureRequired"),
    ),
    CardSpec(
        "4000000000003055",
        "visa",
        tokens=("pm_card_threeDSecureOptional", "tok_threeDSecureOptional"),
    ),
)

BY_NUMBER: dict[str, CardSpec] = {card.number: card for card in TEST_CARDS}
BY_TOKEN: dict[str, CardSpec] = {token: card for card in TEST_CARDS for token in card.tokens}

_BRAND_PREFIXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("amex", ("34", "37")),
    ("diners", ("300", "301", "302", "303", "304", "305", "36", "38", "39")),
    ("jcb", ("35",)),
    ("discover", ("6011", "644", "645", "646", "647", "648", "649", "65")),
    ("unionpay", ("62", "81")),
    ("mastercard", ("51", "52", "53", "54", "55", "22", "23", "24", "25", "26", "27")),
    ("visa", ("4",)),
)


def brand_of(number: str) -> str:
    for brand, prefixes in _BRAND_PREFIXES:
        if number.startswith(prefixes):
            return brand
    return "unknown"


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        digit = ord(ch) - 48
        if i % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def card_error(code: str, message: str, param: str) -> errors.StripeError:
    return errors.StripeError(402, "card_error", message, code=code, param=param)


def lookup_number(number: str) -> CardSpec:
    """Validate a raw card number and return its behaviour (unknown valid numbers succeed)."""
    digits = number.replace(" ", "").replace("-", "")
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or not luhn_ok(digits):
        raise card_error("incorrect_number", "Your card number is incorrect.", "card[number]")
    known = BY_NUMBER.get(digits)
    if known is not None:
        return known
    return CardSpec(digits, brand_of(digits))


def validate_expiry(exp_month: int, exp_year: int, today_year: int, today_month: int) -> None:
    if not 1 <= exp_month <= 12:
        raise card_error(
            "invalid_expiry_month", "Your card's expiration month is invalid.", "card[exp_month]"
        )
    if exp_year < 100:
        exp_year += 2000
    if exp_year < today_year or (exp_year == today_year and exp_month < today_month):
        raise card_error(
            "invalid_expiry_year", "Your card's expiration year is invalid.", "card[exp_year]"
        )


def validate_cvc(cvc: str | None) -> None:
    if cvc is None:
        return
    if not cvc.isdigit() or len(cvc) not in (3, 4):
        raise card_error("invalid_cvc", "Your card's security code is invalid.", "card[cvc]")
