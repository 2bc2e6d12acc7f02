"""Checkout's pure rules (unit): money, charge planning, email, trials, card errors."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bos_common.errors import BOSError
from bos_common.events import AppliedCoupon, PriceSnapshot
from checkout.clients import OrganizationBilling
from checkout.confirm import plan_charge
from checkout.money import platform_fee
from checkout.payment_states import card_error
from checkout.service import amounts, normalize_email, trial_days
from checkout.testing import price_snapshot


def price(amount: int = 9900, trial: int = 0, setup_fee: int = 0) -> PriceSnapshot:
    return price_snapshot(amount=amount, trial_days=trial, setup_fee=setup_fee)


def billing(bps: int = 500, account: str | None = "acct_1") -> OrganizationBilling:
    return OrganizationBilling("org_1", bps, account, {})


def row(total: int, trial: int = 0, setup_fee: int = 0) -> SimpleNamespace:
    return SimpleNamespace(
        amount_total=total, trial_days=trial, setup_fee=setup_fee, currency="usd"
    )


def test_12_1_platform_fee_is_five_percent_of_100_dollars() -> None:
    assert platform_fee(10_000, 500) == 500
    plan = plan_charge(row(10_000), billing(), charges_enabled=True)
    assert (plan.amount, plan.platform_fee, plan.destination) == (10_000, 500, "acct_1")
    assert plan.amount - plan.platform_fee == 9_500


@pytest.mark.parametrize(
    ("amount", "bps", "fee"),
    [(2900, 500, 145), (1, 500, 0), (10, 500, 1), (9999, 250, 250), (0, 500, 0)],
)
def test_platform_fee_rounds_half_up(amount: int, bps: int, fee: int) -> None:
    assert platform_fee(amount, bps) == fee


def test_12_2_unverified_account_holds_the_merchant_share() -> None:
    plan = plan_charge(row(5000), billing(), charges_enabled=False)
    assert plan.destination is None and plan.hold_for == "acct_1"


def test_no_connected_account_charges_on_the_platform() -> None:
    plan = plan_charge(row(5000), billing(account=None), charges_enabled=None)
    assert plan.destination is None and plan.hold_for is None


def test_6_1_trial_without_setup_fee_saves_the_card_and_charges_nothing() -> None:
    plan = plan_charge(row(9900, trial=14), billing(), charges_enabled=True)
    assert (plan.kind, plan.amount, plan.platform_fee) == ("setup", 0, 0)


def test_6_2_trial_with_setup_fee_charges_only_the_setup_fee_now() -> None:
    plan = plan_charge(row(9900, trial=14, setup_fee=1500), billing(), charges_enabled=True)
    assert (plan.kind, plan.amount, plan.platform_fee) == ("checkout", 1500, 75)


def test_setup_fee_is_added_to_the_first_charge() -> None:
    assert plan_charge(row(2900, setup_fee=1000), billing(), True).amount == 3900


def test_3_6_missing_email_is_email_required() -> None:
    for raw in (None, "", "   "):
        with pytest.raises(BOSError) as err:
            normalize_email(raw)
        assert (err.value.code, err.value.message, err.value.status_code) == (
            "email_required",
            "Email required",
            422,
        )


@pytest.mark.parametrize(
    "raw", ["not-an-email", "a@", "@b.com", "a b@c.com", "x@y", "'; DROP TABLE--"]
)
def test_3_5_malformed_email_is_invalid_email(raw: str) -> None:
    with pytest.raises(BOSError) as err:
        normalize_email(raw)
    assert (err.value.code, err.value.message) == ("invalid_email", "Invalid email")


def test_email_is_normalized() -> None:
    assert normalize_email("  Jane@Example.COM ") == "Jane@example.com"


def test_2_2_free_price_is_free_and_5_4_ignores_its_trial() -> None:
    free = price(amount=0, trial=14)
    assert amounts(free, 0)["is_free"] is True
    assert trial_days(free, None) == 0


def test_trial_extension_coupon_adds_days() -> None:
    coupon = AppliedCoupon(
        coupon_id="coupon_1", code="TRIAL30", duration="once", trial_extension_days=30
    )
    assert trial_days(price(trial=14), coupon) == 44
    assert trial_days(price(trial=0), coupon) == 30


def test_discount_never_takes_the_total_below_zero() -> None:
    figures = amounts(price(amount=500), 1000)
    assert (figures["amount_total"], figures["amount_discount"]) == (0, 500)


@pytest.mark.parametrize(
    ("code", "decline", "expected", "message"),
    [
        (
            "card_declined",
            "generic_decline",
            "card_declined",
            "Your card was declined. Try another card.",
        ),
        ("card_declined", "insufficient_funds", "insufficient_funds", "Insufficient funds"),
        (
            "payment_intent_authentication_failure",
            None,
            "authentication_failed",
            "Card authentication failed. Try again or use another card.",
        ),
        ("something_new", None, "card_declined", "Your card was declined. Try another card."),
    ],
)
def test_4_2_4_3_4_5_stripe_errors_map_to_the_contract(
    code: str, decline: str | None, expected: str, message: str
) -> None:
    error = card_error(code, decline)
    assert (error.code, error.message) == (expected, message)
