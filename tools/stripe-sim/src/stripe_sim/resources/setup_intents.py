"""``/v1/setup_intents``: create (optionally confirming), confirm, retrieve, update, cancel, list.
A successful setup attaches the PaymentMethod to the customer and, with ``usage=off_session``,
marks the card as set up for later off-session payments."""

from __future__ import annotations

from typing import Any, NoReturn

from .. import errors, ids
from ..forms import Params, apply_metadata, nullable_str
from ..sim import Ctx, Sim
from ..store import Obj
from . import connect, payment_methods, threeds
from .common import Route, check_publishable_secret, list_object

CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
CANCELABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
AUTH_FAILURE_MESSAGE = (
    "The latest attempt to set up the payment method has failed because authentication failed."
)


def _new_intent(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    customer = p.string("customer")
    if customer is not None:
        sim.require(ctx, customer, "customer", param="customer")
    on_behalf_of = p.string("on_behalf_of")
    if on_behalf_of is not None:
        connect.require_account(sim, on_behalf_of, param="on_behalf_of")
    usage = p.string("usage") or "off_session"
    if usage not in ("on_session", "off_session"):
        raise errors.invalid_request(
            "Invalid usage: must be one of on_session, off_session", param="usage"
        )
    seti_id = ids.new_id("seti")
    return {
        "id": seti_id,
        "object": "setup_intent",
        "application": None,
        "automatic_payment_methods": threeds.automatic_payment_methods(sim, ctx, p),
        "cancellation_reason": None,
        "client_secret": ids.client_secret(seti_id),
        "created": ids.now(),
        "customer": customer,
        "description": p.string("description"),
        "flow_directions": None,
        "last_setup_error": None,
        "latest_attempt": None,
        "livemode": False,
        "mandate": None,
        "metadata": apply_metadata({}, p.raw("metadata")),
        "next_action": None,
        "on_behalf_of": on_behalf_of,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": [str(t) for t in p.array("allowed_payment_method_types")]
        or ["card"],
        "single_use_mandate": None,
        "status": "requires_payment_method",
        "usage": usage,
    }


def _set_payment_method(sim: Sim, ctx: Ctx, si: Obj, p: Params) -> Obj | None:
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
    if pm["customer"] is not None and pm["customer"] != si["customer"]:
        raise errors.invalid_request(
            "The provided PaymentMethod is already attached to another Customer.",
            param="payment_method",
        )
    payment_methods.ensure_usable(sim, pm)
    si.update(payment_method=pm["id"], status="requires_confirmation")
    return pm


def _succeed(sim: Sim, ctx: Ctx, si: Obj, pm: Obj) -> Obj:
    if si["customer"]:
        payment_methods.link_customer(sim, ctx, pm, si["customer"])
    if si["usage"] == "off_session":
        sim.store.internal(pm["id"])["setup_off_session"] = True
    si.update(status="succeeded", next_action=None, last_setup_error=None, payment_method=pm["id"])
    sim.store.touch()
    sim.emit("setup_intent.succeeded", si, account=ctx.account, ctx=ctx)
    return si


def _fail_setup(sim: Sim, ctx: Ctx, si: Obj, pm: Obj, error: dict[str, Any]) -> None:
    si.update(
        status="requires_payment_method",
        next_action=None,
        payment_method=None,
        last_setup_error={**error, "payment_method": pm},
    )
    sim.store.touch()
    sim.emit("setup_intent.setup_failed", si, account=ctx.account, ctx=ctx)


def _decline(sim: Sim, ctx: Ctx, si: Obj, pm: Obj) -> NoReturn:
    spec = payment_methods.spec_of(sim, pm)
    assert spec.decline is not None
    decline = spec.decline
    _fail_setup(
        sim,
        ctx,
        si,
        pm,
        {
            "code": decline.code,
            "decline_code": decline.decline_code,
            "doc_url": errors.DOC_BASE + decline.code.replace("_", "-"),
            "message": decline.message,
            "type": "card_error",
        },
    )
    raise payment_methods.decline_error(spec, decline, setup_intent=si, payment_method=pm)


def _confirm(sim: Sim, ctx: Ctx, si: Obj, p: Params) -> Obj:
    if si["status"] not in CONFIRMABLE:
        raise errors.StripeError(
            400,
            "invalid_request_error",
            f"You cannot confirm this SetupIntent because it has a status of {si['status']}.",
            code="setup_intent_unexpected_state",
            extra={"setup_intent": si},
        )
    threeds.check_return_url(si, p, ctx, off_session=False)
    pm = _set_payment_method(sim, ctx, si, p)
    if pm is None:
        if si["payment_method"] is None:
            raise errors.invalid_request(
                "You cannot confirm this SetupIntent because it's missing a payment method.",
                param="payment_method",
                code="setup_intent_unexpected_state",
            )
        pm = sim.require(ctx, si["payment_method"], "PaymentMethod", param="payment_method")
    spec = payment_methods.spec_of(sim, pm)
    if spec.decline is not None and spec.decline_on_attach:
        _decline(sim, ctx, si, pm)
    if threeds.for_setup(spec) is threeds.Auth.CHALLENGE:
        use_sdk = ctx.publishable or p.flag("use_stripe_sdk")
        si.update(
            status="requires_action",
            next_action=threeds.next_action(ctx, si["id"], p.string("return_url"), use_sdk),
            last_setup_error=None,
        )
        sim.store.touch()
        sim.emit("setup_intent.requires_action", si, account=ctx.account, ctx=ctx)
        return si
    return _succeed(sim, ctx, si, pm)


def authenticate(sim: Sim, ctx: Ctx, intent_id: str, success: bool) -> Obj:
    si = sim.require(ctx, intent_id, "setup_intent")
    if si["status"] != "requires_action":
        raise errors.invalid_request(
            f"SetupIntent {intent_id} is not awaiting authentication (status {si['status']}).",
            code="setup_intent_unexpected_state",
        )
    pm = sim.require(ctx, si["payment_method"], "PaymentMethod")
    if success:
        return _succeed(sim, ctx, si, pm)
    _fail_setup(
        sim,
        ctx,
        si,
        pm,
        {
            "code": "setup_intent_authentication_failure",
            "doc_url": errors.DOC_BASE + "setup-intent-authentication-failure",
            "message": AUTH_FAILURE_MESSAGE,
            "type": "invalid_request_error",
        },
    )
    return si


# -- handlers ------------------------------------------------------------------------------


def create(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    si = _new_intent(sim, ctx, p)
    sim.store.add(si, ctx.account)
    sim.store.index_add("si.customer", si["customer"], si["id"])
    sim.emit("setup_intent.created", si, account=ctx.account, ctx=ctx)
    if p.flag("confirm"):
        return _confirm(sim, ctx, si, p)
    _set_payment_method(sim, ctx, si, p)
    return si


def confirm(sim: Sim, ctx: Ctx, p: Params, intent: str) -> Obj:
    si = sim.require(ctx, intent, "setup_intent")
    check_publishable_secret(ctx, p, si, "setup_intent")
    return _confirm(sim, ctx, si, p)


def retrieve(sim: Sim, ctx: Ctx, p: Params, intent: str) -> Obj:
    si = sim.require(ctx, intent, "setup_intent")
    check_publishable_secret(ctx, p, si, "setup_intent")
    return si


def update(sim: Sim, ctx: Ctx, p: Params, intent: str) -> Obj:
    si = sim.require(ctx, intent, "setup_intent")
    if si["status"] not in CONFIRMABLE:
        raise errors.StripeError(
            400,
            "invalid_request_error",
            f"You cannot update this SetupIntent because it has a status of {si['status']}.",
            code="setup_intent_unexpected_state",
        )
    if "customer" in p:
        customer = p.string("customer")
        if customer is not None:
            sim.require(ctx, customer, "customer", param="customer")
        sim.store.index_remove("si.customer", si["customer"], si["id"])
        si["customer"] = customer
        sim.store.index_add("si.customer", customer, si["id"])
    if "metadata" in p:
        si["metadata"] = apply_metadata(si["metadata"], p.raw("metadata"))
    if "description" in p:
        si["description"] = nullable_str(p.raw("description"))
    if "payment_method" in p or "payment_method_data" in p:
        _set_payment_method(sim, ctx, si, p)
    sim.store.touch()
    return si


def cancel(sim: Sim, ctx: Ctx, p: Params, intent: str) -> Obj:
    si = sim.require(ctx, intent, "setup_intent")
    if si["status"] not in CANCELABLE:
        raise errors.StripeError(
            400,
            "invalid_request_error",
            f"You cannot cancel this SetupIntent because it has a status of {si['status']}.",
            code="setup_intent_unexpected_state",
            extra={"setup_intent": si},
        )
    si.update(
        status="canceled",
        cancellation_reason=p.string("cancellation_reason") or "requested_by_customer",
        next_action=None,
    )
    sim.store.touch()
    sim.emit("setup_intent.canceled", si, account=ctx.account, ctx=ctx)
    return si


def list_(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    customer = p.string("customer")
    if customer is not None:
        ids_ = sim.store.index_ids("si.customer", customer)
        return list_object(
            sim, ctx, p, ids_, "/v1/setup_intents", sorted_by_seq=False, kind="setup_intent"
        )
    ids_ = sim.store.ids_of_type("setup_intent", ctx.account)
    return list_object(sim, ctx, p, ids_, "/v1/setup_intents", kind="setup_intent")


ROUTES = [
    Route("POST", "/v1/setup_intents", create),
    Route("GET", "/v1/setup_intents", list_),
    Route("GET", "/v1/setup_intents/{intent}", retrieve, publishable=True),
    Route("POST", "/v1/setup_intents/{intent}", update),
    Route("POST", "/v1/setup_intents/{intent}/confirm", confirm, publishable=True),
    Route("POST", "/v1/setup_intents/{intent}/cancel", cancel),
]
