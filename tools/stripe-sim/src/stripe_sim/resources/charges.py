"""Charges and the money they move: balance transactions with the fee split, application
fees and destination transfers. Also ``/v1/charges`` and ``/v1/balance_transactions`` reads.
"""

from __future__ import annotations

import time
from typing import Any

from .. import cards, ids, ledger
from ..forms import Params
from ..sim import Ctx, Sim
from ..store import Obj
from .common import Route, list_object

STRIPE_PERCENT_BP = 290  # 2.9 %
STRIPE_FIXED = 30
#: balance transaction type -> reporting_category, as Stripe reports them
REPORTING_CATEGORY = {
    "payment": "charge",
    "payment_refund": "refund",
    "transfer_refund": "transfer_reversal",
    "application_fee_refund": "fee",
    "application_fee": "fee",
}


def stripe_fee(amount: int) -> int:
    return (amount * STRIPE_PERCENT_BP + 5000) // 10000 + STRIPE_FIXED


def _outcome(decline: cards.Decline | None) -> dict[str, Any]:
    if decline is None:
        return {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "risk_score": 20,
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
    return {
        "advice_code": "try_again_later" if decline.code == "processing_error" else None,
        "network_advice_code": None,
        "network_decline_code": None,
        "network_status": "declined_by_network",
        "reason": decline.decline_code,
        "risk_level": "normal",
        "risk_score": 20,
        "seller_message": "The bank did not return any further details with this decline.",
        "type": "issuer_declined",
    }


def create_charge(
    sim: Sim,
    ctx: Ctx,
    pi: Obj,
    pm: Obj,
    *,
    decline: cards.Decline | None,
    three_d_secure: bool,
) -> Obj:
    """A charge attempt for ``pi`` with ``pm``: succeeded (not yet captured) or failed."""
    card = pm["card"]
    charge: Obj = {
        "id": ids.new_id("ch"),
        "object": "charge",
        "amount": pi["amount"],
        "amount_captured": 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": pi["application_fee_amount"],
        "balance_transaction": None,
        "billing_details": pm["billing_details"],
        "calculated_statement_descriptor": "STRIPE-SIM",
        "captured": False,
        "created": ids.now(),
        "currency": pi["currency"],
        "customer": pi["customer"],
        "description": pi["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": decline.code if decline else None,
        "failure_message": decline.message if decline else None,
        "fraud_details": {},
        "livemode": False,
        "metadata": dict(pi["metadata"]),
        "on_behalf_of": pi["on_behalf_of"],
        "outcome": _outcome(decline),
        "paid": decline is None,
        "payment_intent": pi["id"],
        "payment_method": pm["id"],
        "payment_method_details": {
            "card": {
                "amount_authorized": pi["amount"] if decline is None else None,
                "brand": card["brand"],
                "checks": card["checks"],
                "country": card["country"],
                "exp_month": card["exp_month"],
                "exp_year": card["exp_year"],
                "fingerprint": card["fingerprint"],
                "funding": card["funding"],
                "last4": card["last4"],
                "network": card["brand"],
                "three_d_secure": (
                    {
                        "authentication_flow": "challenge",
                        "result": "authenticated",
                        "version": "2.2.0",
                    }
                    if three_d_secure
                    else None
                ),
                "wallet": card["wallet"],
            },
            "type": "card",
        },
        "receipt_email": pi.get("receipt_email"),
        "receipt_url": f"{ctx.base_url}/_sim/receipts/{pi['id']}",
        "refunded": False,
        "review": None,
        "shipping": pi.get("shipping"),
        "source_transfer": None,
        "statement_descriptor": pi.get("statement_descriptor"),
        "statement_descriptor_suffix": pi.get("statement_descriptor_suffix"),
        "status": "failed" if decline else "succeeded",
        "transfer_data": pi["transfer_data"],
        "transfer_group": pi["transfer_group"],
    }
    sim.store.add(charge, ctx.account)
    sim.store.seq_index_add("charge.payment_intent", pi["id"], charge["id"])
    sim.store.seq_index_add("charge.customer", pi["customer"], charge["id"])
    return charge


BYPASS_PENDING_CARD = "4000000000000077"


def due_of(sim: Sim, txn_id: str | None) -> float | None:
    """The due time of a still pending balance transaction, else None."""
    if txn_id is None or txn_id not in sim.store.meta:
        return None
    txn = sim.store.objects[txn_id]
    if txn["status"] != "pending":
        return None
    due: float = sim.store.internal(txn_id).get(ledger.DUE_KEY, 0.0)
    return due if due > time.time() else None


def balance_transaction(
    sim: Sim,
    *,
    account: str | None,
    amount: int,
    currency: str,
    source: str,
    type_: str,
    fee_details: list[dict[str, Any]] | None = None,
    description: str | None = None,
    due: float | None = None,
    pending_credit: bool = False,
) -> Obj:
    """A balance transaction of ``account``: pending until ``due`` when given (money tied to
    a charge whose funds are pending), pending for the configured delay when
    ``pending_credit`` (a charge's own funds), else available at once."""
    fee_details = fee_details or []
    fee = sum(item["amount"] for item in fee_details)
    now = time.time()
    if due is None and pending_credit:
        due = now + sim.config.balance_pending_seconds
    pending = due is not None and due > now
    created = int(now)
    txn: Obj = {
        "id": ids.new_id("txn"),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": int(due) if pending and due is not None else created,
        "created": created,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": fee_details,
        "net": amount - fee,
        "reporting_category": REPORTING_CATEGORY.get(type_, type_),
        "source": source,
        "status": "pending" if pending else "available",
        "type": type_,
    }
    sim.store.add(txn, account, {ledger.DUE_KEY: due if pending else now})
    sim.store.seq_index_add("balance_transaction.source", source, txn["id"])
    return txn


def _fee_item(amount: int, currency: str, type_: str, description: str) -> dict[str, Any]:
    return {
        "amount": amount,
        "application": None,
        "currency": currency,
        "description": description,
        "type": type_,
    }


def _application_fee(
    sim: Sim, ctx: Ctx, charge: Obj, amount: int, connected: str, originating: str
) -> Obj:
    """The platform's fee on ``charge``, credited to the platform with the charge's funds."""
    fee: Obj = {
        "id": ids.new_id("fee"),
        "object": "application_fee",
        "account": connected,
        "amount": amount,
        "amount_refunded": 0,
        "application": "ca_stripesim",
        "balance_transaction": None,
        "charge": charge["id"],
        "created": ids.now(),
        "currency": charge["currency"],
        "fee_source": {"charge": charge["id"], "type": "charge"},
        "livemode": False,
        "originating_transaction": originating,
        "refunded": False,
        "refunds": {
            "object": "list",
            "data": [],
            "has_more": False,
            "total_count": 0,
            "url": "",
        },
    }
    fee["refunds"]["url"] = f"/v1/application_fees/{fee['id']}/refunds"
    sim.store.add(fee, None)
    txn = balance_transaction(
        sim,
        account=None,
        amount=amount,
        currency=charge["currency"],
        source=fee["id"],
        type_="application_fee",
        description="Application fee",
        due=due_of(sim, charge["balance_transaction"]),
    )
    fee["balance_transaction"] = txn["id"]
    sim.store.seq_index_add("application_fee.charge", charge["id"], fee["id"])
    sim.emit("application_fee.created", fee, account=None, ctx=ctx)
    return fee


def create_transfer(
    sim: Sim,
    ctx: Ctx,
    *,
    amount: int,
    currency: str,
    destination: str,
    source_transaction: str | None = None,
    transfer_group: str | None = None,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
    application_fee_amount: int = 0,
) -> Obj:
    """A transfer from the platform to ``destination``. Tied to a source charge, both sides
    stay pending as long as the charge's funds do; otherwise it moves available funds.
    ``application_fee_amount`` (destination charges) is collected from the destination's
    payment, as Stripe shows it: the payment's fee."""
    transfer: Obj = {
        "id": ids.new_id("tr"),
        "object": "transfer",
        "amount": amount,
        "amount_reversed": 0,
        "balance_transaction": None,
        "created": ids.now(),
        "currency": currency,
        "description": description,
        "destination": destination,
        "destination_payment": ids.new_id("py"),
        "livemode": False,
        "metadata": metadata or {},
        "reversals": {"object": "list", "data": [], "has_more": False, "total_count": 0, "url": ""},
        "reversed": False,
        "source_transaction": source_transaction,
        "source_type": "card",
        "transfer_group": transfer_group,
    }
    transfer["reversals"]["url"] = f"/v1/transfers/{transfer['id']}/reversals"
    sim.store.add(transfer, None)
    source = sim.store.get_any(source_transaction) if source_transaction else None
    due = due_of(sim, source["balance_transaction"]) if source else None
    txn = balance_transaction(
        sim,
        account=None,
        amount=-amount,
        currency=currency,
        source=transfer["id"],
        type_="transfer",
        due=due,
    )
    transfer["balance_transaction"] = txn["id"]
    fees = (
        [_fee_item(application_fee_amount, currency, "application_fee", "Application fee")]
        if application_fee_amount
        else None
    )
    balance_transaction(
        sim,
        account=destination,
        amount=amount,
        currency=currency,
        source=transfer["destination_payment"],
        type_="payment",
        fee_details=fees,
        due=due,
    )
    sim.store.seq_index_add("transfer.destination", destination, transfer["id"])
    sim.store.seq_index_add("transfer.transfer_group", transfer_group, transfer["id"])
    if source_transaction is not None:
        sim.store.seq_index_add("transfer.source_transaction", source_transaction, transfer["id"])
    sim.emit("transfer.created", transfer, account=None, ctx=ctx)
    return transfer


def _bypasses_pending(charge: Obj) -> bool:
    """Stripe's test card 4000 0000 0000 0077 puts the funds in the available balance."""
    card = charge["payment_method_details"]["card"]
    return bool(card["fingerprint"] == ids.fingerprint(BYPASS_PENDING_CARD))


def settle(sim: Sim, ctx: Ctx, pi: Obj, charge: Obj, amount: int) -> None:
    """Capture ``amount`` of ``charge``: balance transaction (pending), Stripe fee,
    application fee and, for destination charges, the transfer to the connected account:
    the whole amount (or ``transfer_data[amount]``), from which the connected account pays
    the application fee back to the platform."""
    currency = charge["currency"]
    app_fee = pi["application_fee_amount"] or 0
    fees = [_fee_item(stripe_fee(amount), currency, "stripe_fee", "Stripe processing fees")]
    if ctx.account is not None and app_fee:
        fees.append(_fee_item(app_fee, currency, "application_fee", "Application fee"))
    txn = balance_transaction(
        sim,
        account=ctx.account,
        amount=amount,
        currency=currency,
        source=charge["id"],
        type_="charge",
        fee_details=fees,
        pending_credit=not _bypasses_pending(charge),
    )
    charge.update(captured=True, amount_captured=amount, balance_transaction=txn["id"])
    destination = (pi["transfer_data"] or {}).get("destination")
    if ctx.account is not None and app_fee:
        fee = _application_fee(sim, ctx, charge, app_fee, ctx.account, charge["id"])
        charge["application_fee"] = fee["id"]
    elif destination:
        fixed_amount = (pi["transfer_data"] or {}).get("amount")
        transfer = create_transfer(
            sim,
            ctx,
            amount=fixed_amount or amount,
            currency=currency,
            destination=destination,
            source_transaction=charge["id"],
            transfer_group=pi["transfer_group"] or f"group_{pi['id']}",
            application_fee_amount=0 if fixed_amount else app_fee,
        )
        charge["transfer"] = transfer["id"]
        if app_fee:
            fee = _application_fee(sim, ctx, charge, app_fee, destination, charge["id"])
            charge["application_fee"] = fee["id"]
    sim.store.touch()


# -- read endpoints --------------------------------------------------------------------------


def retrieve_charge(sim: Sim, ctx: Ctx, p: Params, charge: str) -> Obj:
    return sim.require(ctx, charge, "charge")


def list_charges(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    pi = p.string("payment_intent")
    customer = p.string("customer")
    if pi is not None:
        ids_ = sim.store.seq_index_ids("charge.payment_intent", pi)
    elif customer is not None:
        ids_ = sim.store.seq_index_ids("charge.customer", customer)
    else:
        ids_ = sim.store.ids_of_type("charge", ctx.account)
    return list_object(sim, ctx, p, ids_, "/v1/charges", kind="charge")


def retrieve_txn(sim: Sim, ctx: Ctx, p: Params, txn: str) -> Obj:
    sim.ledger.refresh(ctx.account)  # a pending transaction may have become available
    return sim.require(ctx, txn, "balance transaction")


def list_txns(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    sim.ledger.refresh(ctx.account)
    source = p.string("source")
    type_ = p.string("type")
    if source is not None:
        ids_ = sim.store.seq_index_ids("balance_transaction.source", source)
    else:
        ids_ = sim.store.ids_of_type("balance_transaction", ctx.account)
    return list_object(
        sim,
        ctx,
        p,
        ids_,
        "/v1/balance_transactions",
        keep=(lambda t: t["type"] == type_) if type_ else None,
        kind="balance transaction",
    )


ROUTES = [
    Route("GET", "/v1/charges", list_charges),
    Route("GET", "/v1/charges/{charge}", retrieve_charge),
    Route("GET", "/v1/balance_transactions", list_txns),
    Route("GET", "/v1/balance_transactions/{txn}", retrieve_txn),
]
