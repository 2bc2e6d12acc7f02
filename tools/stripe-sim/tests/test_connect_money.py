"""Connect money as on Stripe: a platform balance whose charge funds are pending before they
are available, transfers that draw on the available balance unless tied to a charge
(``source_transaction``), refunds of destination charges that reverse the transfer and the
application fee only when asked, and payout schedules only on accounts the platform controls.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe

from stripe_sim.testing import confirmed_card_payment, run_simulator

API_KEY = "sk_test_stripe_sim_tests"


@pytest.fixture(scope="module")
def money_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A simulator of its own, so the platform balance holds only this module's money."""
    log = tmp_path_factory.mktemp("money") / "sim.log"
    with run_simulator(log_file=log) as url:
        yield url


@pytest.fixture
def client(money_sim: str) -> stripe.StripeClient:
    return stripe.StripeClient(API_KEY, base_addresses={"api": money_sim}, max_network_retries=0)


@pytest.fixture
def http(money_sim: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=money_sim, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
    ) as c:
        yield c


def _balance(http: httpx.Client, account: str | None = None) -> dict[str, int]:
    """``{"available": n, "pending": n}`` in usd, for the platform or a connected account."""
    headers = {"Stripe-Account": account} if account else {}
    body = http.get("/v1/balance", headers=headers).json()
    assert body["object"] == "balance"
    return {
        kind: sum(item["amount"] for item in body[kind] if item["currency"] == "usd")
        for kind in ("available", "pending")
    }


def _total(balance: dict[str, int]) -> int:
    return balance["available"] + balance["pending"]


def _account(client: stripe.StripeClient, http: httpx.Client, type_: str = "express") -> str:
    account = client.v1.accounts.create(params={"type": type_, "country": "US"})
    assert http.post(f"/_sim/accounts/{account.id}/verify").status_code == 200
    return account.id


def _pay(client: stripe.StripeClient, amount: int, **extra: Any) -> Any:
    params = confirmed_card_payment(amount, extra.pop("payment_method", "pm_card_visa"), **extra)
    pi = client.v1.payment_intents.create(params=params)
    assert pi.status == "succeeded"
    return client.v1.charges.retrieve(pi.latest_charge)


def _destination_charge(
    client: stripe.StripeClient, http: httpx.Client, amount: int, *, fee: int
) -> tuple[str, int, Any]:
    """(a new verified account, the platform's total balance before, the charge): a
    destination charge of ``amount`` to that account carrying an application fee of ``fee``."""
    account = _account(client, http)
    platform_before = _total(_balance(http))
    charge = _pay(
        client, amount, application_fee_amount=fee, transfer_data={"destination": account}
    )
    return account, platform_before, charge


def test_transfer_draws_on_available_funds_unless_tied_to_its_charge(
    client: stripe.StripeClient, http: httpx.Client
) -> None:
    http.post("/_sim/balance/settle")
    account = _account(client, http)
    before = _balance(http)
    charge = _pay(client, 10000)
    after_charge = _balance(http)
    assert after_charge["pending"] - before["pending"] == 10000 - 320
    assert after_charge["available"] == before["available"]
    txn = client.v1.balance_transactions.retrieve(charge.balance_transaction)
    assert txn.status == "pending" and txn.available_on > txn.created

    # Rule 4: without source_transaction the pending funds cannot be used.
    amount = before["available"] + 1000
    response = http.post(
        "/v1/transfers", data={"amount": amount, "currency": "usd", "destination": account}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "balance_insufficient"
    assert error["message"].startswith("You have insufficient available funds")
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.transfers.create(
            params={"amount": amount, "currency": "usd", "destination": account}
        )
    assert info.value.code == "balance_insufficient"

    # Tied to the charge, its pending funds are used (up to the charge's amount).
    transfer = client.v1.transfers.create(
        params={
            "amount": 1000,
            "currency": "usd",
            "destination": account,
            "source_transaction": charge.id,
        }
    )
    assert transfer.source_transaction == charge.id
    assert _balance(http)["pending"] == after_charge["pending"] - 1000
    assert _balance(http, account) == {"available": 0, "pending": 1000}
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.transfers.create(
            params={
                "amount": 9001,
                "currency": "usd",
                "destination": account,
                "source_transaction": charge.id,
            }
        )
    assert info.value.param == "amount"

    # Once the funds settle, the available balance pays a plain transfer.
    settled = http.post("/_sim/balance/settle").json()
    assert settled["released"] >= 2
    assert _balance(http)["available"] == before["available"] + 10000 - 320 - 1000
    assert _balance(http, account) == {"available": 1000, "pending": 0}
    assert client.v1.balance_transactions.retrieve(txn.id).status == "available"
    plain = client.v1.transfers.create(
        params={"amount": 500, "currency": "usd", "destination": account}
    )
    assert plain.source_transaction is None
    assert _balance(http, account) == {"available": 1500, "pending": 0}


def test_bypass_pending_card_funds_are_available_at_once(
    client: stripe.StripeClient, http: httpx.Client
) -> None:
    before = _balance(http)
    _pay(client, 2000, payment_method="pm_card_bypassPending")
    after = _balance(http)
    assert after["available"] - before["available"] == 2000 - 88
    assert after["pending"] == before["pending"]


def test_destination_charge_and_refund_without_flags_the_platform_pays(
    client: stripe.StripeClient, http: httpx.Client
) -> None:
    account, platform_before, charge = _destination_charge(client, http, 10000, fee=1500)
    assert _total(_balance(http)) - platform_before == 1500 - 320
    assert _balance(http, account) == {"available": 0, "pending": 8500}

    refund = client.v1.refunds.create(params={"charge": charge.id})
    assert refund.transfer_reversal is None
    transfer = client.v1.transfers.retrieve(charge.transfer)
    assert (transfer.amount_reversed, transfer.reversed) == (0, False)
    fee = client.v1.application_fees.retrieve(charge.application_fee)
    assert (fee.amount_refunded, fee.refunded) == (0, False)
    # The platform's balance paid the whole refund; the connected account keeps its share.
    assert _total(_balance(http)) - platform_before == 1500 - 320 - 10000
    assert _total(_balance(http, account)) == 8500


def test_refunds_with_flags_reverse_transfer_and_fee_in_proportion(
    client: stripe.StripeClient, http: httpx.Client
) -> None:
    account, platform_before, charge = _destination_charge(client, http, 10000, fee=1500)
    flags = {"reverse_transfer": True, "refund_application_fee": True}

    first = client.v1.refunds.create(params={"charge": charge.id, "amount": 4000, **flags})
    assert first.transfer_reversal is not None
    transfer = client.v1.transfers.retrieve(charge.transfer)
    assert (transfer.amount_reversed, transfer.reversed) == (4000, False)
    assert [r.id for r in transfer.reversals.data] == [first.transfer_reversal]
    fee = client.v1.application_fees.retrieve(charge.application_fee)
    assert (fee.amount_refunded, fee.refunded) == (600, False)
    assert _total(_balance(http)) - platform_before == 1500 - 320 - 600
    assert _total(_balance(http, account)) == 8500 - 4000 + 600

    second = client.v1.refunds.create(params={"charge": charge.id, **flags})
    assert second.amount == 6000
    transfer = client.v1.transfers.retrieve(charge.transfer)
    assert (transfer.amount_reversed, transfer.reversed) == (10000, True)
    reversals = http.get(f"/v1/transfers/{transfer.id}/reversals").json()
    assert [r["amount"] for r in reversals["data"]] == [6000, 4000]
    assert {r["source_refund"] for r in reversals["data"]} == {first.id, second.id}
    fee = client.v1.application_fees.retrieve(charge.application_fee)
    assert (fee.amount_refunded, fee.refunded) == (1500, True)
    assert [r["amount"] for r in fee.refunds.data] == [900, 600]
    # Everything back: the platform is out only Stripe's fee, the account has nothing left.
    assert _total(_balance(http)) - platform_before == -320
    assert _total(_balance(http, account)) == 0


def test_transfer_reversal_through_the_api(client: stripe.StripeClient, http: httpx.Client) -> None:
    account = _account(client, http)
    charge = _pay(client, 8000, application_fee_amount=800, transfer_data={"destination": account})
    reversal = client.v1.transfers.reversals.create(
        charge.transfer, params={"amount": 2000, "refund_application_fee": True}
    )
    assert (reversal.object, reversal.amount, reversal.source_refund) == (
        "transfer_reversal",
        2000,
        None,
    )
    assert client.v1.transfers.reversals.retrieve(charge.transfer, reversal.id).id == reversal.id
    fee = client.v1.application_fees.retrieve(charge.application_fee)
    assert fee.amount_refunded == 200
    assert _total(_balance(http, account)) == 8000 - 800 - 2000 + 200
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.transfers.reversals.create(charge.transfer, params={"amount": 6001})


def test_balances_of_platform_and_account_add_up(
    client: stripe.StripeClient, http: httpx.Client
) -> None:
    account, platform_before, charge = _destination_charge(client, http, 5000, fee=250)
    client.v1.refunds.create(params={"charge": charge.id, "amount": 1000, "reverse_transfer": True})
    everyone = http.get("/_sim/balance").json()
    assert set(everyone) >= {"platform", account}
    platform = _total(_balance(http)) - platform_before
    connected = _total(_balance(http, account))
    assert platform + connected == 5000 - stripe_fee(5000) - 1000
    assert connected == 5000 - 250 - 1000


def stripe_fee(amount: int) -> int:
    return (amount * 290 + 5000) // 10000 + 30


def test_funds_become_available_after_the_configured_delay(tmp_path: Any) -> None:
    with run_simulator(
        extra_env={"STRIPE_SIM_BALANCE_PENDING_SECONDS": "1"}, log_file=tmp_path / "sim.log"
    ) as url:
        own = stripe.StripeClient(API_KEY, base_addresses={"api": url}, max_network_retries=0)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}) as h:
            _pay(own, 1000)
            assert _balance(h) == {"available": 0, "pending": 1000 - 59}
            time.sleep(1.3)
            assert _balance(h) == {"available": 1000 - 59, "pending": 0}


# -- rule 6: payout schedules -----------------------------------------------------------------

SCHEDULE = {"interval": "weekly", "weekly_anchor": "friday", "delay_days": "7"}


@pytest.mark.parametrize(
    "params",
    [
        {"type": "express"},
        {"type": "custom"},
        {"controller": {"stripe_dashboard": {"type": "express"}}},
        {
            "controller": {
                "requirement_collection": "application",
                "stripe_dashboard": {"type": "none"},
            }
        },
    ],
)
def test_platform_sets_payout_schedule_of_accounts_it_controls(
    client: stripe.StripeClient, params: dict[str, Any]
) -> None:
    account = client.v1.accounts.create(params=params)
    schedule = account.settings.payouts.schedule
    assert (schedule.interval, schedule.delay_days) == ("daily", 2)
    updated = client.v1.accounts.update(
        account.id, params={"settings": {"payouts": {"schedule": SCHEDULE}}}
    )
    schedule = updated.settings.payouts.schedule
    assert schedule.delay_days == 7 and isinstance(schedule.delay_days, int)
    assert (schedule.interval, schedule.weekly_anchor) == ("weekly", "friday")
    minimum = client.v1.accounts.update(
        account.id, params={"settings": {"payouts": {"schedule": {"delay_days": "minimum"}}}}
    )
    assert minimum.settings.payouts.schedule.delay_days == 2


@pytest.mark.parametrize(
    "params", [{"type": "standard"}, {"controller": {"stripe_dashboard": {"type": "full"}}}]
)
def test_accounts_the_platform_does_not_control_refuse_payout_schedule(
    client: stripe.StripeClient, http: httpx.Client, params: dict[str, Any]
) -> None:
    account = client.v1.accounts.create(params=params)
    assert account.controller.stripe_dashboard.type == "full"
    response = http.post(
        f"/v1/accounts/{account.id}",
        data={"settings[payouts][schedule][interval]": "weekly"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "settings[payouts][schedule]"
    assert client.v1.accounts.retrieve(account.id).settings.payouts.schedule.interval == "daily"
    # other settings stay the platform's to change
    branded = client.v1.accounts.update(
        account.id, params={"settings": {"payments": {"statement_descriptor": "SHOP"}}}
    )
    assert branded.settings.payments.statement_descriptor == "SHOP"


def test_pending_funds_survive_a_restart_from_the_state_file(tmp_path: Any) -> None:
    state = tmp_path / "state.json"
    env = {"STRIPE_SIM_SNAPSHOT_INTERVAL": "0"}
    with run_simulator(state_file=state, extra_env=env) as url:
        own = stripe.StripeClient(API_KEY, base_addresses={"api": url}, max_network_retries=0)
        _pay(own, 3000)
    with run_simulator(state_file=state, extra_env=env) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}) as h:
            assert _balance(h) == {"available": 0, "pending": 3000 - 117}
            h.post("/_sim/balance/settle", json={"account": "platform"})
            assert _balance(h) == {"available": 3000 - 117, "pending": 0}
