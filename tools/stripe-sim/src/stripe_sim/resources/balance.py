"""``/v1/balance`` (per ``Stripe-Account``), transfer reversals and application fee refunds
(what a destination charge's refund moves when asked), and the ``/_sim/balance/settle``
control that makes pending funds available."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from .. import errors, ids
from ..forms import Params, apply_metadata
from ..sim import Ctx, Sim
from ..store import Obj
from . import charges
from .common import Route, list_object, require_secret_key

INSUFFICIENT_BALANCE_MESSAGE = (
    "You have insufficient available funds in your Stripe account. Try adding funds directly "
    "to your available balance by creating Charges using the 4000000000000077 test card. "
    "See: https://stripe.com/docs/testing#available-balance"
)


def balance_insufficient() -> errors.StripeError:
    return errors.invalid_request(INSUFFICIENT_BALANCE_MESSAGE, code="balance_insufficient")


def require_available(sim: Sim, account: str | None, currency: str, amount: int) -> None:
    """A transfer without ``source_transaction`` draws on the available balance only."""
    if sim.ledger.totals(account, currency).available < amount:
        raise balance_insufficient()


# -- GET /v1/balance -------------------------------------------------------------------------


def _amounts(values: dict[str, int]) -> list[dict[str, Any]]:
    return [
        {"amount": amount, "currency": currency, "source_types": {"card": amount}}
        for currency, amount in sorted(values.items())
    ]


def balance_of(sim: Sim, account: str | None) -> Obj:
    ledger = sim.ledger.refresh(account)
    available = {c: t.available for c, t in ledger.totals.items()} or {"usd": 0}
    pending = {c: t.pending for c, t in ledger.totals.items()} or {"usd": 0}
    balance: Obj = {
        "object": "balance",
        "available": _amounts(available),
        "livemode": False,
        "pending": _amounts(pending),
    }
    if account is None:
        balance["connect_reserved"] = [{"amount": 0, "currency": c} for c in sorted(available)]
    return balance


def retrieve_balance(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    require_secret_key(ctx)
    return balance_of(sim, ctx.account)


# -- transfer reversals ----------------------------------------------------------------------


def _move_to_platform(
    sim: Sim,
    amount: int,
    *,
    account: str,
    currency: str,
    due: float | None,
    platform_side: tuple[str, str],
    account_side: tuple[str, str],
) -> str:
    """Book ``amount`` (negative: the other way) from ``account`` to the platform, one
    balance transaction on each side (``(source, type)``), pending until ``due`` when given;
    the id of the platform's."""
    source, type_ = platform_side
    txn = charges.balance_transaction(
        sim, account=None, amount=amount, currency=currency, source=source, type_=type_, due=due
    )
    source, type_ = account_side
    charges.balance_transaction(
        sim, account=account, amount=-amount, currency=currency, source=source, type_=type_, due=due
    )
    return str(txn["id"])


def _add_to_parent(
    sim: Sim,
    ctx: Ctx | None,
    parent: Obj,
    child: Obj,
    *,
    counters: tuple[str, str],
    list_key: str,
    index: str,
    event: str,
) -> None:
    """Count ``child`` (a reversal, a refund) on ``parent``: its running total and whether
    that is all of it (``counters``), its list, its index; then ``event`` with what changed."""
    total, whole = counters
    previous = {total: parent[total], whole: parent[whole]}
    parent[total] += child["amount"]
    parent[whole] = parent[total] == parent["amount"]
    children = parent[list_key]
    children["data"].insert(0, child)
    children["total_count"] = len(children["data"])
    sim.store.seq_index_add(index, parent["id"], child["id"])
    sim.store.touch()
    sim.emit(event, parent, account=None, ctx=ctx, previous=previous)


def reverse_transfer(
    sim: Sim, ctx: Ctx | None, transfer: Obj, amount: int, *, source_refund: str | None
) -> Obj:
    """Take ``amount`` of ``transfer`` back from the connected account to the platform."""
    remaining = transfer["amount"] - transfer["amount_reversed"]
    if amount <= 0 or amount > remaining:
        raise errors.invalid_request(
            f"The transfer {transfer['id']} has {remaining} left to reverse; cannot reverse "
            f"{amount}.",
            param="amount",
        )
    source = sim.store.get_any(transfer["source_transaction"] or "")
    due = charges.due_of(sim, source["balance_transaction"]) if source else None
    reversal: Obj = {
        "id": ids.new_id("trr"),
        "object": "transfer_reversal",
        "amount": amount,
        "balance_transaction": None,
        "created": ids.now(),
        "currency": transfer["currency"],
        "destination_payment_refund": ids.new_id("pyr"),
        "metadata": {},
        "source_refund": source_refund,
        "transfer": transfer["id"],
    }
    sim.store.add(reversal, None)
    reversal["balance_transaction"] = _move_to_platform(
        sim,
        amount,
        account=transfer["destination"],
        currency=transfer["currency"],
        due=due,
        platform_side=(reversal["id"], "transfer_refund"),
        account_side=(reversal["destination_payment_refund"], "payment_refund"),
    )
    _add_to_parent(
        sim,
        ctx,
        transfer,
        reversal,
        counters=("amount_reversed", "reversed"),
        list_key="reversals",
        index="transfer_reversal.transfer",
        event="transfer.reversed",
    )
    return reversal


def refund_fee(sim: Sim, ctx: Ctx | None, fee: Obj, amount: int) -> Obj:
    """Give ``amount`` of the application fee back to the connected account."""
    amount = min(amount, fee["amount"] - fee["amount_refunded"])
    charge = sim.store.get_any(fee["charge"])
    due = charges.due_of(sim, charge["balance_transaction"]) if charge else None
    refund: Obj = {
        "id": ids.new_id("fr"),
        "object": "fee_refund",
        "amount": amount,
        "balance_transaction": None,
        "created": ids.now(),
        "currency": fee["currency"],
        "fee": fee["id"],
        "metadata": {},
    }
    sim.store.add(refund, None)
    refund["balance_transaction"] = _move_to_platform(
        sim,
        -amount,
        account=fee["account"],
        currency=fee["currency"],
        due=due,
        platform_side=(refund["id"], "application_fee_refund"),
        account_side=(refund["id"], "application_fee_refund"),
    )
    _add_to_parent(
        sim,
        ctx,
        fee,
        refund,
        counters=("amount_refunded", "refunded"),
        list_key="refunds",
        index="fee_refund.fee",
        event="application_fee.refunded",
    )
    return refund


def create_reversal(sim: Sim, ctx: Ctx, p: Params, transfer: str) -> Obj:
    require_secret_key(ctx)
    found = sim.require(ctx, transfer, "transfer")
    amount = p.integer("amount")
    reversal = reverse_transfer(
        sim,
        ctx,
        found,
        amount if amount is not None else found["amount"] - found["amount_reversed"],
        source_refund=None,
    )
    reversal["metadata"] = apply_metadata({}, p.raw("metadata"))
    charge = sim.store.get_any(found["source_transaction"] or "")
    fee = sim.store.get_any(charge["application_fee"] or "") if charge else None
    if p.flag("refund_application_fee") and fee is not None:
        share = fee["amount"] * reversal["amount"] // found["amount"]
        if share > 0 and fee["amount_refunded"] < fee["amount"]:
            refund_fee(sim, ctx, fee, share)
    return reversal


def list_reversals(sim: Sim, ctx: Ctx, p: Params, transfer: str) -> Obj:
    sim.require(ctx, transfer, "transfer")
    ids_ = sim.store.seq_index_ids("transfer_reversal.transfer", transfer)
    url = f"/v1/transfers/{transfer}/reversals"
    return list_object(sim, ctx, p, ids_, url, kind="transfer_reversal")


def retrieve_reversal(sim: Sim, ctx: Ctx, p: Params, transfer: str, reversal: str) -> Obj:
    found = sim.require(ctx, reversal, "transfer_reversal")
    if found["transfer"] != transfer:
        raise errors.no_such("transfer_reversal", reversal)
    return found


def list_fee_refunds(sim: Sim, ctx: Ctx, p: Params, fee: str) -> Obj:
    sim.require(ctx, fee, "application fee")
    ids_ = sim.store.seq_index_ids("fee_refund.fee", fee)
    url = f"/v1/application_fees/{fee}/refunds"
    return list_object(sim, ctx, p, ids_, url, kind="fee_refund")


# -- test control ----------------------------------------------------------------------------


def settle_control(sim: Sim, request: Request, body: dict[str, Any]) -> Obj:
    """``POST /_sim/balance/settle`` ``{"account"?}``: pending funds become available now
    (of one account, ``"platform"`` for the platform's own, default every account)."""
    account = body.get("account")
    if account is not None and not isinstance(account, str):
        raise errors.invalid_request("account must be a string", param="account")
    if account:
        released = sim.ledger.settle([None if account == "platform" else account])
    else:
        released = sim.ledger.settle()
    return {"object": "balance_settlement", "released": released}


def balances_control(sim: Sim, request: Request, body: dict[str, Any]) -> Obj:
    """``GET /_sim/balance``: every account's balance (the platform's under ``platform``)."""
    owners = {owner for (type_, owner) in sim.store.by_type if type_ == "balance_transaction"} | {
        None
    }
    return {owner or "platform": balance_of(sim, owner) for owner in owners}


ROUTES = [
    Route("GET", "/v1/balance", retrieve_balance),
    Route("POST", "/v1/transfers/{transfer}/reversals", create_reversal),
    Route("GET", "/v1/transfers/{transfer}/reversals", list_reversals),
    Route("GET", "/v1/transfers/{transfer}/reversals/{reversal}", retrieve_reversal),
    Route("GET", "/v1/application_fees/{fee}/refunds", list_fee_refunds),
]
