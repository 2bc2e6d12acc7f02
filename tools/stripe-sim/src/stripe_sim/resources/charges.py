"""Charges and the money they move: balance transactions with the fee split, application
fees and destination transfers. Also ``/v1/charges`` and ``/v1/balance_transactions`` reads.
"""

from __future__ import annotations

from typing import Any

from .. import cards, ids
from ..forms import Params
from ..sim import Ctx, Sim
from ..store import Obj
from .common import LIST_PARAMS, Route, allowed, list_object

STRIPE_PERCENT_BP = 290  # 2.9 %
STRIPE_FIXED = 30
AVAILABLE_AFTER_SECONDS = 2 * 24 * 3600

CHARGE_LIST = LIST_PARAMS | {"customer", "payment_intent", "transfer_group"}
TXN_LIST = LIST_PARAMS | {"currency", "payout", "source", "type"}


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
        "transfer": None,
        "transfer_data": pi["transfer_data"],
        "transfer_group": pi["transfer_group"],
    }
    sim.store.add(charge, ctx.account)
    sim.store.seq_index_add("charge.payment_intent", pi["id"], charge["id"])
    sim.store.seq_index_add("charge.customer", pi["customer"], charge["id"])
    return charge


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
) -> Obj:
    fee_details = fee_details or []
    fee = sum(item["amount"] for item in fee_details)
    created = ids.now()
    txn: Obj = {
        "id": ids.new_id("txn"),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": created + AVAILABLE_AFTER_SECONDS,
        "created": created,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": fee_details,
        "net": amount - fee,
        "reporting_category": type_,
        "source": source,
        "status": "pending",
        "type": type_,
    }
    sim.store.add(txn, account)
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
) -> Obj:
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
    txn = balance_transaction(
        sim,
        account=None,
        amount=-amount,
        currency=currency,
        source=transfer["id"],
        type_="transfer",
    )
    transfer["balance_transaction"] = txn["id"]
    balance_transaction(
        sim,
        account=destination,
        amount=amount,
        currency=currency,
        source=transfer["destination_payment"],
        type_="payment",
    )
    sim.store.seq_index_add("transfer.destination", destination, transfer["id"])
    sim.store.seq_index_add("transfer.transfer_group", transfer_group, transfer["id"])
    sim.emit("transfer.created", transfer, account=None, ctx=ctx)
    return transfer


def settle(sim: Sim, ctx: Ctx, pi: Obj, charge: Obj, amount: int) -> None:
    """Capture ``amount`` of ``charge``: balance transaction, Stripe fee, application fee and
    (for destination charges) the transfer to the connected account."""
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
    )
    charge.update(captured=True, amount_captured=amount, balance_transaction=txn["id"])
    destination = (pi["transfer_data"] or {}).get("destination")
    if ctx.account is not None and app_fee:
        fee = _application_fee(sim, ctx, charge, app_fee, ctx.account, charge["id"])
        charge["application_fee"] = fee["id"]
    elif destination:
        transfer_amount = (pi["transfer_data"] or {}).get("amount") or amount - app_fee
        transfer = create_transfer(
            sim,
            ctx,
            amount=transfer_amount,
            currency=currency,
            destination=destination,
            source_transaction=charge["id"],
            transfer_group=pi["transfer_group"] or f"group_{pi['id']}",
        )
        charge["transfer"] = transfer["id"]
        if app_fee:
            fee = _application_fee(sim, ctx, charge, app_fee, destination, charge["id"])
            charge["application_fee"] = fee["id"]
    sim.store.touch()


# -- read endpoints --------------------------------------------------------------------------


def retrieve_charge(sim: Sim, ctx: Ctx, p: Params, charge: str) -> Obj:
    p.check_allowed(allowed())
    return sim.require(ctx, charge, "charge")


def list_charges(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    p.check_allowed(CHARGE_LIST)
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
    p.check_allowed(allowed())
    return sim.require(ctx, txn, "balance transaction")


def list_txns(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    p.check_allowed(TXN_LIST)
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
