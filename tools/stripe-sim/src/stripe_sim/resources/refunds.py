"""``/v1/refunds``: create (full or partial, by payment_intent or charge), retrieve, list."""

from __future__ import annotations

from .. import errors, ids
from ..forms import Params, apply_metadata
from ..sim import Ctx, Sim
from ..store import Obj
from . import balance, charges
from .common import Route, list_object

REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def _charge_to_refund(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    charge_id = p.string("charge")
    pi_id = p.string("payment_intent")
    if charge_id is None and pi_id is None:
        raise errors.invalid_request(
            "One of the following params should be provided for this request: payment_intent "
            "or charge.",
            param="payment_intent",
        )
    if pi_id is not None:
        pi = sim.require(ctx, pi_id, "payment_intent", param="payment_intent")
        if pi["status"] != "succeeded" or not pi["latest_charge"]:
            raise errors.invalid_request(
                f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
                param="payment_intent",
                code="charge_not_refundable" if pi["status"] == "requires_capture" else None,
            )
        charge_id = pi["latest_charge"]
    return sim.require(ctx, charge_id, "charge", param="charge")


def _proportional(part: int, whole: int, value: int) -> int:
    return value if part >= whole else (value * part) // whole


def _reverse_side_effects(sim: Sim, ctx: Ctx, p: Params, charge: Obj, refund: Obj) -> None:
    """Only when asked: the transfer of a destination charge and the application fee are
    reversed in proportion to the refund; otherwise the platform's balance pays it all."""
    amount = refund["amount"]
    if p.flag("reverse_transfer") and charge.get("transfer"):
        transfer = sim.store.get_any(charge["transfer"])
        if transfer is not None:
            share = min(
                _proportional(amount, charge["amount"], transfer["amount"]),
                transfer["amount"] - transfer["amount_reversed"],
            )
            if share > 0:
                reversal = balance.reverse_transfer(
                    sim, ctx, transfer, share, source_refund=refund["id"]
                )
                refund["transfer_reversal"] = reversal["id"]
    if p.flag("refund_application_fee") and charge["application_fee"]:
        fee = sim.store.get_any(charge["application_fee"])
        if fee is not None:
            share = _proportional(amount, charge["amount"], fee["amount"])
            if share > 0 and fee["amount_refunded"] < fee["amount"]:
                balance.refund_fee(sim, ctx, fee, share)


def create(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    charge = _charge_to_refund(sim, ctx, p)
    remaining = charge["amount_captured"] - charge["amount_refunded"]
    if remaining <= 0:
        raise errors.invalid_request(
            f"Charge {charge['id']} has already been refunded.",
            param="charge",
            code="charge_already_refunded",
        )
    amount = p.integer("amount") or remaining
    if amount > remaining:
        raise errors.invalid_request(
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})",
            param="amount",
            code="amount_too_large",
        )
    reason = p.string("reason")
    if reason is not None and reason not in REASONS:
        raise errors.invalid_request(
            f"Invalid reason: must be one of {', '.join(REASONS)}", param="reason"
        )
    refund: Obj = {
        "id": ids.new_id("re"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": None,
        "charge": charge["id"],
        "created": ids.now(),
        "currency": charge["currency"],
        "destination_details": {"card": {"type": "refund"}, "type": "card"},
        "metadata": apply_metadata({}, p.raw("metadata")),
        "payment_intent": charge["payment_intent"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }
    sim.store.add(refund, ctx.account)
    txn = charges.balance_transaction(
        sim,
        account=ctx.account,
        amount=-amount,
        currency=charge["currency"],
        source=refund["id"],
        type_="refund",
        description="REFUND FOR CHARGE",
        due=charges.due_of(sim, charge["balance_transaction"]),
    )
    refund["balance_transaction"] = txn["id"]
    sim.store.seq_index_add("refund.charge", charge["id"], refund["id"])
    sim.store.seq_index_add("refund.payment_intent", charge["payment_intent"], refund["id"])
    previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
    _reverse_side_effects(sim, ctx, p, charge, refund)
    sim.store.touch()
    sim.emit("refund.created", refund, account=ctx.account, ctx=ctx)
    sim.emit("charge.refunded", charge, account=ctx.account, ctx=ctx, previous=previous)
    return refund


def retrieve(sim: Sim, ctx: Ctx, p: Params, refund: str) -> Obj:
    return sim.require(ctx, refund, "refund")


def list_(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    charge = p.string("charge")
    pi = p.string("payment_intent")
    if charge is not None:
        ids_ = sim.store.seq_index_ids("refund.charge", charge)
    elif pi is not None:
        ids_ = sim.store.seq_index_ids("refund.payment_intent", pi)
    else:
        ids_ = sim.store.ids_of_type("refund", ctx.account)
    return list_object(sim, ctx, p, ids_, "/v1/refunds", kind="refund")


ROUTES = [
    Route("POST", "/v1/refunds", create),
    Route("GET", "/v1/refunds", list_),
    Route("GET", "/v1/refunds/{refund}", retrieve),
]
