"""Checkout's Stripe rules as pure decisions (unit): request parameters valid for the pinned
API version, the page's CSP for Stripe.js, the publishable key in production, the payout
schedule's push and the held transfers' retries."""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import pytest
import stripe
import typing_extensions
from pydantic import ValidationError
from stripe.params import (
    AccountUpdateParams,
    CustomerCreateParams,
    PaymentIntentCreateParams,
    RefundCreateParams,
    SetupIntentCreateParams,
    TransferCreateParams,
)

import checkout
from bos_common.events import PayoutSchedule
from bos_common.stripe_testing import (
    assert_csp_allows_simulated_stripe_js,
    assert_csp_allows_stripe_js,
    recording_client,
)
from checkout import connect, stripe_params
from checkout.connect import payout_push_needed
from checkout.connect_repository import PayoutScheduleRecord
from checkout.page import content_security_policy, wallet_country
from checkout.settings import CheckoutSettings
from checkout.testing import Organizations
from checkout.worker import transfer_retry_delay, transfer_retryable


def unknown_keys(value: Any, typed: Any, path: str = "") -> list[str]:
    """Keys of `value` the SDK's TypedDict (generated for the pinned version) lacks, nested
    ones included (a nested TypedDict is found by name in the params' module)."""
    assert typing_extensions.is_typeddict(typed), typed
    module = vars(sys.modules[typed.__module__])
    found = []
    for key, item in value.items():
        if key not in typed.__annotations__:
            found.append(f"{path}{key}")
            continue
        if isinstance(item, dict):
            names = re.findall(r"\b[A-Z]\w*Params\w*\b", str(typed.__annotations__[key]))
            nested = [module[n] for n in names if n in module]
            if nested:
                found += unknown_keys(item, nested[0], f"{path}{key}.")
    return found


ANY_METADATA = {"org_id": "org_1", "payment_id": "pay_1"}

BUILT: list[tuple[str, Any, Any]] = [
    (
        "customer",
        stripe_params.customer(email="a@b.co", name="Ada", metadata=ANY_METADATA),
        CustomerCreateParams,
    ),
    (
        "checkout intent",
        stripe_params.checkout_payment_intent(
            amount=9900,
            currency="usd",
            customer="cus_1",
            payment_method="pm_1",
            metadata=ANY_METADATA,
            application_fee=495,
            destination="acct_1",
        ),
        PaymentIntentCreateParams,
    ),
    (
        "setup intent",
        stripe_params.setup_intent(customer="cus_1", payment_method="pm_1", metadata=ANY_METADATA),
        SetupIntentCreateParams,
    ),
    (
        "renewal",
        stripe_params.renewal_payment_intent(
            amount=9900,
            currency="usd",
            customer="cus_1",
            payment_method="pm_1",
            metadata=ANY_METADATA,
            description="Pro",
            application_fee=495,
            destination="acct_1",
        ),
        PaymentIntentCreateParams,
    ),
    (
        "refund",
        stripe_params.refund(
            payment_intent="pi_1", connect_mode="destination", reason="duplicate", payment_id="p"
        ),
        RefundCreateParams,
    ),
    (
        "transfer",
        stripe_params.held_transfer(
            amount=9405,
            currency="usd",
            destination="acct_1",
            source_charge="ch_1",
            payment_id="pay_1",
            org_id="org_1",
        ),
        TransferCreateParams,
    ),
    (
        "payout schedule",
        stripe_params.payout_schedule(
            PayoutSchedule(interval="weekly", weekly_anchor="friday", delay_days=3)
        ),
        AccountUpdateParams,
    ),
]


@pytest.mark.parametrize(("name", "params", "typed"), BUILT, ids=[b[0] for b in BUILT])
def test_every_request_uses_only_parameters_of_the_pinned_version(
    name: str, params: Any, typed: Any
) -> None:
    assert unknown_keys(params, typed) == []


def test_unknown_keys_finds_a_nested_unknown_parameter() -> None:
    bogus = {"transfer_data": {"destination": "acct_1", "bogus": 1}, "amount": 1}
    assert unknown_keys(bogus, PaymentIntentCreateParams) == ["transfer_data.bogus"]


def test_server_side_confirms_rule_out_redirects_so_no_return_url_is_needed() -> None:
    for name, params, _ in BUILT[1:4]:
        assert params["confirm"] is True, name
        assert params["automatic_payment_methods"] == {
            "enabled": True,
            "allow_redirects": "never",
        }, name
        assert "return_url" not in params, name


def test_only_on_session_confirms_ask_for_stripe_js_next_actions() -> None:
    checkout, setup, renewal = (b[1] for b in BUILT[1:4])
    assert checkout["use_stripe_sdk"] is True
    assert setup["use_stripe_sdk"] is True
    assert "use_stripe_sdk" not in renewal
    assert renewal["off_session"] is True


def test_a_setup_intent_without_a_card_is_not_confirmed() -> None:
    params = stripe_params.setup_intent(customer="cus_1", payment_method=None, metadata={})
    assert "confirm" not in params and "use_stripe_sdk" not in params


@pytest.mark.parametrize(
    ("mode", "reversed_"), [("destination", True), ("held", False), (None, False)]
)
def test_a_refund_reverses_transfer_and_fee_of_destination_charges_only(
    mode: str | None, reversed_: bool
) -> None:
    params = stripe_params.refund(
        payment_intent="pi_1", connect_mode=mode, reason="duplicate", payment_id="pay_1"
    )
    assert ("reverse_transfer" in params) is reversed_
    assert ("refund_application_fee" in params) is reversed_
    if reversed_:
        assert params["reverse_transfer"] is True and params["refund_application_fee"] is True


# --- CSP (rule 7) ------------------------------------------------------------------------


def test_the_page_allows_what_stripe_documents_for_stripe_js() -> None:
    csp = assert_csp_allows_stripe_js(
        content_security_policy("https://js.stripe.com/v3/", "n0nce", [])
    )
    assert "'nonce-n0nce'" in csp["script-src"]


def test_the_page_allows_the_simulators_stripe_js_and_its_card_iframe() -> None:
    sim = "http://127.0.0.1:12111"
    csp = assert_csp_allows_simulated_stripe_js(
        content_security_policy(f"{sim}/js.stripe.com/v3/", "n", []), sim
    )
    assert not any("stripe.com" in s for d in csp.values() for s in d)


# --- the publishable key in production --------------------------------------------------


def settings(**env: str) -> CheckoutSettings:
    base = {
        "BOS_INTERNAL_SECRET": "x" * 16,
        "DATABASE_URL": "postgresql+asyncpg://x/y",
        "AMQP_URL": "amqp://x/",
        "STRIPE_SECRET_KEY": "sk_test_x",
        "CATALOG_URL": "http://c",
        "TOKENS_URL": "http://t",
        "SUBSCRIPTIONS_URL": "http://s",
    }
    return CheckoutSettings(**{**base, **env})


def test_development_runs_with_the_test_publishable_key() -> None:
    assert settings().stripe_publishable_key == "pk_test_bos"


@pytest.mark.parametrize(
    "env",
    [
        {"BOS_PROFILE": "production"},
        {"BOS_PROFILE": "production", "STRIPE_PUBLISHABLE_KEY": "pk_live_REPLACE_ME"},
        {"STRIPE_SECRET_KEY": "sk_live_x"},
        {"STRIPE_SECRET_KEY": "sk_live_x", "STRIPE_PUBLISHABLE_KEY": "pk_test_real"},
    ],
)
def test_production_refuses_to_start_with_a_test_publishable_key(env: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="STRIPE_PUBLISHABLE_KEY"):
        settings(**env)


def test_production_starts_with_a_live_publishable_key() -> None:
    live = settings(
        BOS_PROFILE="production", STRIPE_SECRET_KEY="sk_live_x", STRIPE_PUBLISHABLE_KEY="pk_live_y"
    )
    assert live.is_production


# --- payout schedule and held transfers ---------------------------------------------------


def test_12_4_a_payout_schedule_is_pushed_when_new_or_changed() -> None:
    weekly = {"interval": "weekly", "weekly_anchor": "friday"}
    assert payout_push_needed(None, 1, weekly)
    row = recorded_schedule("applied", **weekly)
    row = replace(row, org_version=3)
    assert not payout_push_needed(row, 4, weekly)  # something else changed
    assert not payout_push_needed(row, 2, {"interval": "daily"})  # an older event
    assert payout_push_needed(row, 4, {"interval": "daily"})


def recorded_schedule(
    status: Literal["applied", "refused"], org_id: str = "org_1", **schedule: Any
) -> PayoutScheduleRecord:
    error = ("settings_not_controllable", "Not allowed.") if status == "refused" else (None, None)
    return PayoutScheduleRecord(
        account_id="acct_1",
        org_id=org_id,
        org_version=1,
        schedule=schedule,
        status=status,
        error_code=error[0],
        error_message=error[1],
    )


def test_12_4_the_merchant_sees_stripes_answer_to_its_payout_schedule() -> None:
    weekly = {"interval": "weekly", "weekly_anchor": "friday", "delay_days": 3}
    applied = connect.payout_schedule_state("org_1", weekly, recorded_schedule("applied", **weekly))
    assert (applied.status, applied.error) == ("applied", None)
    refused = connect.payout_schedule_state("org_1", weekly, recorded_schedule("refused", **weekly))
    assert refused.status == "refused"
    assert refused.error is not None and refused.error.code == "settings_not_controllable"
    # Stripe shows delay_days as a number, the organization may hold it as a string.
    as_text = {**weekly, "delay_days": "3"}
    assert (
        connect.payout_schedule_state(
            "org_1", as_text, recorded_schedule("applied", **weekly)
        ).status
        == "applied"
    )


def test_12_4_a_schedule_not_yet_applied_is_pending_not_its_predecessors_answer() -> None:
    weekly = {"interval": "weekly", "weekly_anchor": "friday"}
    before = recorded_schedule("refused", interval="daily")
    assert connect.payout_schedule_state("org_1", weekly, None).status == "pending"
    changed = connect.payout_schedule_state("org_1", weekly, before)
    assert (changed.status, changed.error) == ("pending", None)
    # The account's row written for another organization (the account moved) says nothing.
    other = recorded_schedule("applied", org_id="org_2", **weekly)
    assert connect.payout_schedule_state("org_1", weekly, other).status == "pending"


def stripe_error(cls: type[stripe.StripeError], code: str | None, status: int) -> Any:
    if cls is stripe.InvalidRequestError:
        return cls("x", None, code=code, http_status=status)  # type: ignore[call-arg]
    return cls("x", code=code, http_status=status)


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (stripe_error(stripe.InvalidRequestError, "balance_insufficient", 400), True),
        (stripe_error(stripe.APIError, None, 500), True),
        (stripe_error(stripe.APIConnectionError, None, 0), True),
        (stripe_error(stripe.RateLimitError, "rate_limit", 429), True),
        (stripe_error(stripe.InvalidRequestError, "account_invalid", 400), False),
    ],
)
def test_12_2_what_a_held_transfer_waits_out(error: stripe.StripeError, retryable: bool) -> None:
    assert transfer_retryable(error) is retryable


def test_12_2_held_transfers_back_off_up_to_six_hours() -> None:
    assert transfer_retry_delay(0) == timedelta(minutes=1)
    assert transfer_retry_delay(3) == timedelta(minutes=8)
    assert transfer_retry_delay(50) == timedelta(hours=6)


# --- the wallet's country ---------------------------------------------------------------


async def test_the_wallet_country_is_the_country_of_the_account_taking_the_payment() -> None:
    connect._countries.clear()  # a process-wide cache
    client, recorder = recording_client()
    account = "acct_wallet_de"
    recorder.answer("GET", f"/v1/accounts/{account}", {"id": account, "country": "DE"})
    recorder.answer("GET", "/v1/account", {"id": "acct_platform", "country": "GB"})
    runtime: Any = SimpleNamespace(stripe=client, organizations=Organizations(account))
    assert await wallet_country(runtime, "org_de") == "DE"
    runtime.organizations = Organizations(None)  # no connected account: the platform's
    assert await wallet_country(runtime, "org_platform") == "GB"


def test_the_page_script_takes_the_wallet_country_from_its_config() -> None:
    script = Path(checkout.__file__).parent.joinpath("static/checkout-page.js").read_text()
    assert "country: cfg.country" in script
    assert 'country: "US"' not in script
