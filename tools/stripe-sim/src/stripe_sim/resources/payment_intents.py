"""``/v1/payment_intents``: create (optionally confirming), confirm, retrieve, update, cancel,
capture, list; plus the 3DS completion used by ``/_sim`` and the fake Stripe.js."""

from __future__ import annotations

from typing import Any, NoReturn

from .. import cards, errors, ids
from ..forms import Params, apply_metadata, nullable_str
from ..sim import Ctx, Sim
from ..store import Obj
from . import charges, connect, payment_methods, threeds
from .common import Route, check_publishable_secret, list_object

CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
CANCELABLE = (
    "requires_payment_method", "requires_capture", "requires_confirmation", "requires_action",
    "processing",
)  # fmt: skip
CAPTURE_METHODS = ("automatic", "automatic_async", "manual")
SETUP_USAGES = ("on_session", "off_session")
AUTH_FAILURE_MESSAGE = (
    "The provided PaymentMethod has failed authentication. You can provide payment_method_data "
    "or a new PaymentMethod to attempt to fulfill this PaymentIntent again."
)


# -- validation helpers --------------------------------------------------------------------


def _amount(p: Params, currency: str, key: str = "amount") -> int:
    amount = p.req_integer(key)
    minimum = 50 if currency in ("usd", "eur", "gbp", "cad", "aud", "chf") else 1
    if amount < minimum:
        raise errors.invalid_request(
            f"Amount must be at least {minimum} cents", param=key, code="amount_too_small"
        )
    if amount > 99_999_999:
        raise errors.invalid_request(
            "Amount must be no more than $999,999.99", param=key, code="amount_too_large"
        )
    return amount


def _currency(p: Params) -> str:
    currency = p.req_string("currency").lower()
    if len(currency) != 3 or not currency.isalpha():
        raise errors.invalid_request(f"Invalid currency: {currency}.", param="currency")
    return currency


def _choice(p: Params, key: str, choices: tuple[str, ...], default: str | None) -> str | None:
    value = p.string(key)
    if value is None:
        return default
    if value not in choices:
        raise errors.invalid_request(
            f"Invalid {key}: must be one of {', '.join(choices)}", param=key
        )
    return value


def _off_session(p: Params) -> bool:
    """``off_session``: ``true``, ``one_off`` or ``recurring`` (customer not present)."""
    value = p.raw("off_session")
    return value in ("one_off", "recurring") or p.flag("off_session")


def _transfer_data(sim: Sim, p: Params, amount: int) -> dict[str, Any] | None:
    data = p.mapping("transfer_data")
    if not data:
        return None
    destination = data.get("destination")
    if not destination:
        raise errors.missing_param("transfer_data[destination]")
    account = connect.require_account(sim, str(destination), param="transfer_data[destination]")
    connect.require_transfers_capability(account, param="transfer_data[destination]")
    out: dict[str, Any] = {"destination": account["id"]}
    if data.get("amount") not in (None, ""):
        transfer_amount = int(data["amount"])
        if transfer_amount > amount:
            raise errors.invalid_request(
                "transfer_data[amount] cannot be greater than the amount.",
                param="transfer_data[amount]",
            )
        out["amount"] = transfer_amount
    return out


def _application_fee(ctx: Ctx, p: Params, amount: int, transfer_data: Any) -> int | None:
    fee = p.integer("application_fee_amount")
    if fee is None:
        return None
    if ctx.account is None and not transfer_data:
        raise errors.invalid_request(
            "Can only apply an application_fee_amount when the PaymentIntent is attempting a "
            "direct payment (using an OAuth key or Stripe-Account header) or destination payment "
            "(using `transfer_data[destination]`).",
            param="application_fee_amount",
        )
    if fee < 0 or fee > amount:
        raise errors.invalid_request(
            "application_fee_amount must be between 0 and the amount.",
            param="application_fee_amount",
        )
    return fee


def _customer(sim: Sim, ctx: Ctx, p: Params) -> str | None:
    customer = p.string("customer")
    if customer is not None:
        sim.require(ctx, customer, "customer", param="customer")
    return customer


# -- object --------------------------------------------------------------------------------


def _new_intent(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    currency = _currency(p)
    amount = _amount(p, currency)
    transfer_data = _transfer_data(sim, p, amount)
    on_behalf_of = p.string("on_behalf_of")
    if on_behalf_of is not None:
        connect.require_account(sim, on_behalf_of, param="on_behalf_of")
    apm = threeds.automatic_payment_methods(sim, ctx, p)
    if apm and apm["enabled"] and p.array("allowed_payment_method_types"):
        raise errors.invalid_request(
            "You may only specify one of these parameters: automatic_payment_methods, "
            "allowed_payment_method_types.",
            param="automatic_payment_methods",
        )
    pi_id = ids.new_id("pi")
    return {
        "id": pi_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": _application_fee(ctx, p, amount, transfer_data),
        "automatic_payment_methods": apm,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": _choice(p, "capture_method", CAPTURE_METHODS, "automatic_async"),
        "client_secret": ids.client_secret(pi_id),
        "confirmation_method": _choice(
            p, "confirmation_method", ("automatic", "manual"), "automatic"
        ),
        "created": ids.now(),
        "currency": currency,
        "customer": _customer(sim, ctx, p),
        "description": p.string("description"),
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": apply_metadata({}, p.raw("metadata")),
        "next_action": None,
        "on_behalf_of": on_behalf_of,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": [str(t) for t in p.array("allowed_payment_method_types")]
        or ["card"],
        "processing": None,
        "receipt_email": p.string("receipt_email"),
        "review": None,
        "setup_future_usage": _choice(p, "setup_future_usage", SETUP_USAGES, None),
        "shipping": p.mapping("shipping"),
        "source": None,
        "statement_descriptor": p.string("statement_descriptor"),
        "statement_descriptor_suffix": p.string("statement_descriptor_suffix"),
        "status": "requires_payment_method",
        "transfer_data": transfer_data,
        "transfer_group": p.string("transfer_group"),
    }


def _attach_payment_method(sim: Sim, ctx: Ctx, pi: Obj, p: Params) -> Obj | None:
    """Set ``pi.payment_method`` from ``payment_method`` / ``payment_method_data``."""
    pm: Obj | None = None
    ref = p.string("payment_method")
    if ref is not None:
        pm = payment_methods.resolve(sim, ctx, ref, param="payment_method")
    elif p.mapping("payment_method_data"):
        pm = payment_methods.from_data(
            sim, ctx, p.mapping("payment_method_data") or {}, param="payment_method_data"
        )
    if pm is None:
        return None
    if pm["customer"] is not None and pi["customer"] is None:
        raise errors.invalid_request(
            "The provided PaymentMethod is attached to a Customer; you must also provide that "
            "Customer's ID as `customer`.",
            param="payment_method",
        )
    if pm["customer"] is not None and pm["customer"] != pi["customer"]:
        raise errors.invalid_request(
            f"The provided PaymentMethod belongs to a different Customer than {pi['customer']}.",
            param="payment_method",
        )
    payment_methods.ensure_usable(sim, pm)
    pi["payment_method"] = pm["id"]
    pi["status"] = "requires_confirmation"
    return pm


def _unexpected(pi: Obj, action: str) -> errors.StripeError:
    return errors.unexpected_state(
        f"You cannot {action} this PaymentIntent because it has a status of {pi['status']}.",
        extra={"payment_intent": pi},
    )


# -- confirmation --------------------------------------------------------------------------


def _fail(
    sim: Sim, ctx: Ctx, pi: Obj, pm: Obj, decline: cards.Decline, charge: Obj | None
) -> NoReturn:
    """A declined attempt: PI back to ``requires_payment_method`` and a 402 with the PI."""
    error: dict[str, Any] = {
        "code": decline.code,
        "decline_code": decline.decline_code,
        "doc_url": errors.DOC_BASE + decline.code.replace("_", "-"),
        "message": decline.message,
        "payment_method": pm,
        "type": "card_error",
    }
    if charge is not None:
        error["charge"] = charge["id"]
    pi.update(
        status="requires_payment_method",
        last_payment_error=error,
        payment_method=None,
        next_action=None,
    )
    sim.store.touch()
    if charge is not None:
        sim.emit("charge.failed", charge, account=ctx.account, ctx=ctx)
    sim.emit("payment_intent.payment_failed", pi, account=ctx.account, ctx=ctx)
    extra: dict[str, Any] = {"payment_intent": pi, "payment_method": pm}
    if charge is not None:
        extra["charge"] = charge["id"]
    raise payment_methods.decline_error(payment_methods.spec_of(sim, pm), decline, **extra)


def _save_payment_method(sim: Sim, ctx: Ctx, pi: Obj, pm: Obj) -> None:
    usage = pi["setup_future_usage"]
    if usage and pi["customer"]:
        payment_methods.link_customer(sim, ctx, pm, pi["customer"])
    if usage == "off_session":
        sim.store.internal(pm["id"])["setup_off_session"] = True
    if pm["customer"] is None:
        sim.store.internal(pm["id"])["consumed"] = True


def _charge(sim: Sim, ctx: Ctx, pi: Obj, pm: Obj, *, authenticated: bool) -> Obj:
    spec = payment_methods.spec_of(sim, pm)
    charge = charges.create_charge(
        sim, ctx, pi, pm, decline=spec.decline, three_d_secure=authenticated
    )
    pi["latest_charge"] = charge["id"]
    if spec.decline is not None:
        _fail(sim, ctx, pi, pm, spec.decline, charge)
    pi.update(last_payment_error=None, next_action=None)
    _save_payment_method(sim, ctx, pi, pm)
    if pi["capture_method"] == "manual":
        pi.update(status="requires_capture", amount_capturable=pi["amount"])
        sim.emit("charge.succeeded", charge, account=ctx.account, ctx=ctx)
        sim.emit("payment_intent.amount_capturable_updated", pi, account=ctx.account, ctx=ctx)
        return pi
    charges.settle(sim, ctx, pi, charge, pi["amount"])
    pi.update(status="succeeded", amount_received=pi["amount"])
    sim.emit("charge.succeeded", charge, account=ctx.account, ctx=ctx)
    sim.emit("payment_intent.succeeded", pi, account=ctx.account, ctx=ctx)
    return pi


def _confirm(sim: Sim, ctx: Ctx, pi: Obj, p: Params) -> Obj:
    if pi["status"] not in CONFIRMABLE:
        raise _unexpected(pi, "confirm")
    off_session = _off_session(p)
    threeds.check_return_url(pi, p, ctx, off_session=off_session)
    if "setup_future_usage" in p:
        pi["setup_future_usage"] = _choice(p, "setup_future_usage", SETUP_USAGES, None)
    if "capture_method" in p:
        pi["capture_method"] = _choice(p, "capture_method", CAPTURE_METHODS, "automatic_async")
    if p.string("receipt_email"):
        pi["receipt_email"] = p.string("receipt_email")
    pm = _attach_payment_method(sim, ctx, pi, p)
    if pm is None:
        if pi["payment_method"] is None:
            raise errors.invalid_request(
                "You cannot confirm this PaymentIntent because it's missing a payment method. "
                "To confirm the PaymentIntent with cus_xxx, specify a payment method attached to "
                "this customer along with the customer ID.",
                param="payment_method",
                code="payment_intent_unexpected_state",
            )
        pm = sim.require(ctx, pi["payment_method"], "PaymentMethod", param="payment_method")
    if off_session and pi["setup_future_usage"] == "on_session":
        raise errors.invalid_request(
            "You cannot set off_session=true with setup_future_usage=on_session.",
            param="off_session",
        )
    spec = payment_methods.spec_of(sim, pm)
    set_up = bool(sim.store.internal(pm["id"]).get("setup_off_session"))
    auth = threeds.for_payment(spec, off_session=off_session, set_up=set_up)
    if auth is threeds.Auth.CHALLENGE and p.flag("error_on_requires_action"):
        auth = threeds.Auth.DECLINE
    if auth is threeds.Auth.DECLINE:
        charge = charges.create_charge(
            sim, ctx, pi, pm, decline=cards.AUTH_REQUIRED, three_d_secure=False
        )
        pi["latest_charge"] = charge["id"]
        _fail(sim, ctx, pi, pm, cards.AUTH_REQUIRED, charge)
    if auth is threeds.Auth.CHALLENGE:
        use_sdk = ctx.publishable or p.flag("use_stripe_sdk")
        pi.update(
            status="requires_action",
            next_action=threeds.next_action(ctx, pi["id"], p.string("return_url"), use_sdk),
            last_payment_error=None,
        )
        sim.store.internal(pi["id"])["return_url"] = p.string("return_url")
        sim.store.touch()
        sim.emit("payment_intent.requires_action", pi, account=ctx.account, ctx=ctx)
        return pi
    return _charge(sim, ctx, pi, pm, authenticated=False)


def authenticate(sim: Sim, ctx: Ctx, intent_id: str, success: bool) -> Obj:
    """Finish a pending 3DS challenge (fake Stripe.js modal or ``/_sim`` control)."""
    pi = sim.require(ctx, intent_id, "payment_intent")
    if pi["status"] != "requires_action":
        raise errors.invalid_request(
            f"PaymentIntent {intent_id} is not awaiting authentication (status {pi['status']}).",
            code="payment_intent_unexpected_state",
        )
    pm = sim.require(ctx, pi["payment_method"], "PaymentMethod")
    if success:
        return _charge(sim, ctx, pi, pm, authenticated=True)
    pi.update(
        status="requires_payment_method",
        next_action=None,
        payment_method=None,
        last_payment_error={
            "code": "payment_intent_authentication_failure",
            "doc_url": errors.DOC_BASE + "payment-intent-authentication-failure",
            "message": AUTH_FAILURE_MESSAGE,
            "payment_method": pm,
            "type": "invalid_request_error",
        },
    )
    sim.store.touch()
    sim.emit("payment_intent.payment_failed", pi, account=ctx.account, ctx=ctx)
    return pi


# -- handlers ------------------------------------------------------------------------------


def create(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    if not p.flag("confirm"):
        for key in ("off_session", "error_on_requires_action"):
            if key in p:
                raise errors.invalid_request(
                    f"You can only set `{key}` when `confirm=true`.", param=key
                )
    pi = _new_intent(sim, ctx, p)
    sim.store.add(pi, ctx.account, {})
    sim.store.index_add("pi.customer", pi["customer"], pi["id"])
    sim.emit("payment_intent.created", pi, account=ctx.account, ctx=ctx)
    if p.flag("confirm"):
        return _confirm(sim, ctx, pi, p)
    _attach_payment_method(sim, ctx, pi, p)
    return pi


def confirm(sim: Sim, ctx: Ctx, p: Params, intent: str) -> Obj:
    pi = sim.require(ctx, intent, "payment_intent")
    check_publishable_secret(ctx, p, pi, "payment_intent")
    return _confirm(sim, ctx, pi, p)


def retrieve(sim: Sim, ctx: Ctx, p: Params, intent: str) -> Obj:
    pi = sim.require(ctx, intent, "payment_intent")
    check_publishable_secret(ctx, p, pi, "payment_intent")
    return pi


def update(sim: Sim, ctx: Ctx, p: Params, intent: str) -> Obj:
    pi = sim.require(ctx, intent, "payment_intent")
    if pi["status"] not in CONFIRMABLE:
        raise _unexpected(pi, "update")
    if "amount" in p:
        pi["amount"] = _amount(p, pi["currency"])
    if "customer" in p:
        sim.store.index_remove("pi.customer", pi["customer"], pi["id"])
        pi["customer"] = _customer(sim, ctx, p)
        sim.store.index_add("pi.customer", pi["customer"], pi["id"])
    if "metadata" in p:
        pi["metadata"] = apply_metadata(pi["metadata"], p.raw("metadata"))
    for key in ("description", "receipt_email", "statement_descriptor", "transfer_group"):
        if key in p:
            pi[key] = nullable_str(p.raw(key))
    if "setup_future_usage" in p:
        pi["setup_future_usage"] = _choice(p, "setup_future_usage", SETUP_USAGES, None)
    if "transfer_data" in p:
        pi["transfer_data"] = _transfer_data(sim, p, pi["amount"])
    if "application_fee_amount" in p:
        pi["application_fee_amount"] = _application_fee(ctx, p, pi["amount"], pi["transfer_data"])
    if "payment_method" in p or "payment_method_data" in p:
        _attach_payment_method(sim, ctx, pi, p)
    sim.store.touch()
    return pi


def cancel(sim: Sim, ctx: Ctx, p: Params, intent: str) -> Obj:
    pi = sim.require(ctx, intent, "payment_intent")
    if pi["status"] not in CANCELABLE:
        raise errors.unexpected_state(
            f"You cannot cancel this PaymentIntent because it has a status of {pi['status']}. "
            f"Only a PaymentIntent with one of the following statuses may be canceled: "
            f"{', '.join(CANCELABLE)}.",
            extra={"payment_intent": pi},
        )
    if pi["status"] == "requires_capture" and pi["latest_charge"]:
        charge = sim.store.get_any(pi["latest_charge"])
        if charge is not None:
            charge.update(refunded=True, amount_refunded=charge["amount"])
    pi.update(
        status="canceled",
        canceled_at=ids.now(),
        cancellation_reason=p.string("cancellation_reason") or "requested_by_customer",
        next_action=None,
        amount_capturable=0,
    )
    sim.store.touch()
    sim.emit("payment_intent.canceled", pi, account=ctx.account, ctx=ctx)
    return pi


def capture(sim: Sim, ctx: Ctx, p: Params, intent: str) -> Obj:
    pi = sim.require(ctx, intent, "payment_intent")
    if pi["status"] != "requires_capture":
        raise errors.unexpected_state(
            "This PaymentIntent could not be captured because it has a status of "
            f"{pi['status']}. Only a PaymentIntent with one of the following statuses may be "
            "captured: requires_capture.",
            extra={"payment_intent": pi},
        )
    amount = p.integer("amount_to_capture") or pi["amount_capturable"]
    if amount > pi["amount_capturable"]:
        raise errors.invalid_request(
            "The amount to capture cannot be greater than the amount capturable.",
            param="amount_to_capture",
            code="amount_too_large",
        )
    if "application_fee_amount" in p:
        pi["application_fee_amount"] = _application_fee(ctx, p, amount, pi["transfer_data"])
    if "metadata" in p:
        pi["metadata"] = apply_metadata(pi["metadata"], p.raw("metadata"))
    charge = sim.require(ctx, pi["latest_charge"], "charge")
    charges.settle(sim, ctx, pi, charge, amount)
    pi.update(status="succeeded", amount_received=amount, amount_capturable=0)
    sim.emit("charge.captured", charge, account=ctx.account, ctx=ctx)
    sim.emit("payment_intent.succeeded", pi, account=ctx.account, ctx=ctx)
    return pi


def list_(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    customer = p.string("customer")
    if customer is not None:
        ids_ = sim.store.index_ids("pi.customer", customer)
        return list_object(
            sim, ctx, p, ids_, "/v1/payment_intents", sorted_by_seq=False, kind="payment_intent"
        )
    ids_ = sim.store.ids_of_type("payment_intent", ctx.account)
    return list_object(sim, ctx, p, ids_, "/v1/payment_intents", kind="payment_intent")


ROUTES = [
    Route("POST", "/v1/payment_intents", create),
    Route("GET", "/v1/payment_intents", list_),
    Route("GET", "/v1/payment_intents/{intent}", retrieve, publishable=True),
    Route("POST", "/v1/payment_intents/{intent}", update),
    Route("POST", "/v1/payment_intents/{intent}/confirm", confirm, publishable=True),
    Route("POST", "/v1/payment_intents/{intent}/cancel", cancel),
    Route("POST", "/v1/payment_intents/{intent}/capture", capture),
]
