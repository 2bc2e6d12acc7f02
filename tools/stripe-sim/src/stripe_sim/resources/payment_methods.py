"""``/v1/payment_methods`` (type card): create, retrieve, update, attach, detach, list."""

from __future__ import annotations

import time
from typing import Any

from .. import cards, errors, ids
from ..forms import Params, apply_metadata
from ..sim import Ctx, Sim
from ..store import Obj
from .common import (
    Route,
    address_from,
    empty_address,
    list_object,
    require_secret_key,
)

DEFAULT_EXP_YEAR_OFFSET = 5


def _billing_details(value: Any) -> dict[str, Any]:
    details: dict[str, Any] = {
        "address": empty_address(),
        "email": None,
        "name": None,
        "phone": None,
        "tax_id": None,
    }
    if isinstance(value, dict):
        if isinstance(value.get("address"), dict):
            details["address"] = address_from(value["address"])
        for key in ("email", "name", "phone"):
            if value.get(key) not in (None, ""):
                details[key] = str(value[key])
    return details


def _card_from_params(card: dict[str, Any]) -> tuple[cards.CardSpec, int, int, str | None]:
    token = card.get("token")
    if token:
        spec = cards.BY_TOKEN.get(str(token))
        if spec is None or not str(token).startswith("tok_"):
            raise errors.no_such("token", str(token), param="card[token]", status=400)
        return spec, 12, time.gmtime().tm_year + DEFAULT_EXP_YEAR_OFFSET, None
    number = card.get("number")
    if not number:
        raise errors.missing_param("card[number]")
    spec = cards.lookup_number(str(number))
    for key in ("exp_month", "exp_year"):
        if card.get(key) in (None, ""):
            raise errors.missing_param(f"card[{key}]")
    try:
        exp_month, exp_year = int(card["exp_month"]), int(card["exp_year"])
    except (TypeError, ValueError):
        raise errors.invalid_integer("card[exp_month]", card.get("exp_month")) from None
    today = time.gmtime()
    cards.validate_expiry(exp_month, exp_year, today.tm_year, today.tm_mon)
    cvc = card.get("cvc")
    cards.validate_cvc(None if cvc in (None, "") else str(cvc))
    return spec, exp_month, exp_year if exp_year >= 100 else exp_year + 2000, cvc


def build_card_pm(
    spec: cards.CardSpec,
    exp_month: int,
    exp_year: int,
    *,
    cvc_given: bool,
    billing_details: Any = None,
    metadata: Any = None,
    wallet: str | None = None,
) -> Obj:
    wallet_obj = None
    if wallet:
        wallet_obj = {"type": wallet, wallet: {}, "dynamic_last4": spec.last4}
    return {
        "id": ids.new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": _billing_details(billing_details),
        "card": {
            "brand": spec.brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "pass" if cvc_given else None,
            },
            "country": spec.country,
            "display_brand": spec.brand,
            "exp_month": exp_month,
            "exp_year": exp_year,
            "fingerprint": ids.fingerprint(spec.number),
            "funding": spec.funding,
            "generated_from": None,
            "last4": spec.last4,
            "networks": {"available": [spec.brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": wallet_obj,
        },
        "created": ids.now(),
        "customer": None,
        "livemode": False,
        "metadata": apply_metadata({}, metadata),
        "type": "card",
    }


def store_pm(sim: Sim, ctx: Ctx, pm: Obj, spec: cards.CardSpec) -> Obj:
    return sim.store.add(pm, ctx.account, {"card": spec.number})


def from_token(sim: Sim, ctx: Ctx, spec: cards.CardSpec) -> Obj:
    """``pm_card_visa`` and friends: a fresh PaymentMethod for that test card."""
    exp_year = time.gmtime().tm_year + DEFAULT_EXP_YEAR_OFFSET
    pm = build_card_pm(spec, 12, exp_year, cvc_given=True)
    return store_pm(sim, ctx, pm, spec)


def resolve(sim: Sim, ctx: Ctx, ref: str, *, param: str) -> Obj:
    """A stored PaymentMethod, or a new one when ``ref`` is a ``pm_card_*`` test token."""
    spec = cards.BY_TOKEN.get(ref)
    if spec is not None and ref.startswith("pm_"):
        return from_token(sim, ctx, spec)
    pm = sim.store.get(ref, ctx.account)
    if pm is None:
        raise errors.no_such("PaymentMethod", ref, param=param, status=400)
    return pm


def spec_of(sim: Sim, pm: Obj) -> cards.CardSpec:
    number = sim.store.internal(pm["id"]).get("card", "4242424242424242")
    return cards.BY_NUMBER.get(number) or cards.CardSpec(number, cards.brand_of(number))


def from_data(sim: Sim, ctx: Ctx, data: dict[str, Any], *, param: str) -> Obj:
    """``payment_method_data[...]`` on intents."""
    if data.get("type") != "card":
        raise errors.invalid_request(
            "The simulator only supports payment_method_data[type]=card.", param=f"{param}[type]"
        )
    card = data.get("card")
    if not isinstance(card, dict):
        raise errors.missing_param(f"{param}[card]")
    spec, exp_month, exp_year, cvc = _card_from_params(card)
    pm = build_card_pm(
        spec,
        exp_month,
        exp_year,
        cvc_given=cvc is not None,
        billing_details=data.get("billing_details"),
        metadata=data.get("metadata"),
    )
    return store_pm(sim, ctx, pm, spec)


def ensure_usable(sim: Sim, pm: Obj) -> None:
    if sim.store.internal(pm["id"]).get("consumed") and pm["customer"] is None:
        raise errors.invalid_request(
            "This PaymentMethod was previously used without being attached to a Customer or "
            "was detached from a Customer, and may not be used again.",
            param="payment_method",
        )


def decline_error(spec: cards.CardSpec, decline: cards.Decline, **extra: Any) -> errors.StripeError:
    return errors.StripeError(
        402,
        "card_error",
        decline.message,
        code=decline.code,
        decline_code=decline.decline_code,
        extra=extra,
    )


def link_customer(sim: Sim, ctx: Ctx, pm: Obj, customer_id: str) -> Obj:
    """Attach without card validation (used after a successful setup or payment)."""
    if pm["customer"] == customer_id:
        return pm
    pm["customer"] = customer_id
    sim.store.index_add("pm.customer", f"{ctx.account or ''}|{customer_id}", pm["id"])
    sim.store.touch()
    sim.emit("payment_method.attached", pm, account=ctx.account, ctx=ctx)
    return pm


def attach_to(sim: Sim, ctx: Ctx, ref: str, customer_id: str, *, param: str) -> Obj:
    pm = resolve(sim, ctx, ref, param=param)
    sim.require(ctx, customer_id, "customer", param="customer")
    if pm["customer"] == customer_id:
        return pm
    if pm["customer"] is not None:
        raise errors.invalid_request(
            "The payment method you provided has already been attached to a customer.",
            param=param,
        )
    ensure_usable(sim, pm)
    spec = spec_of(sim, pm)
    if spec.decline is not None and spec.decline_on_attach:
        raise decline_error(spec, spec.decline)
    return link_customer(sim, ctx, pm, customer_id)


# -- handlers ------------------------------------------------------------------------------


def _clone_for_connect(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    """Connect: copy a platform customer's PaymentMethod into the connected account."""
    source_id = p.req_string("payment_method")
    source = sim.store.get(source_id, None)
    if source is None:
        raise errors.no_such("PaymentMethod", source_id, param="payment_method", status=400)
    customer = p.string("customer")
    if customer is not None and source["customer"] != customer:
        raise errors.invalid_request(
            f"The payment method {source_id} does not belong to customer {customer}.",
            param="payment_method",
        )
    spec = spec_of(sim, source)
    card = source["card"]
    pm = build_card_pm(
        spec,
        card["exp_month"],
        card["exp_year"],
        cvc_given=True,
        billing_details=source["billing_details"],
        metadata=p.raw("metadata"),
    )
    return store_pm(sim, ctx, pm, spec)


def create(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    if "payment_method" in p:
        require_secret_key(ctx)
        return _clone_for_connect(sim, ctx, p)
    type_ = p.req_string("type")
    if type_ != "card":
        raise errors.invalid_request(
            f"The simulator only supports PaymentMethods of type card (got {type_}).",
            param="type",
        )
    card = p.mapping("card")
    if not card:
        raise errors.missing_param("card")
    spec, exp_month, exp_year, cvc = _card_from_params(card)
    pm = build_card_pm(
        spec,
        exp_month,
        exp_year,
        cvc_given=cvc is not None,
        billing_details=p.raw("billing_details"),
        metadata=p.raw("metadata"),
    )
    if p.string("allow_redisplay"):
        pm["allow_redisplay"] = p.string("allow_redisplay")
    return store_pm(sim, ctx, pm, spec)


def retrieve(sim: Sim, ctx: Ctx, p: Params, payment_method: str) -> Obj:
    spec = cards.BY_TOKEN.get(payment_method)
    if spec is not None and payment_method.startswith("pm_"):
        return from_token(sim, ctx, spec)
    return sim.require(ctx, payment_method, "PaymentMethod")


def update(sim: Sim, ctx: Ctx, p: Params, payment_method: str) -> Obj:
    pm = sim.require(ctx, payment_method, "PaymentMethod")
    previous: dict[str, Any] = {}
    if "metadata" in p:
        previous["metadata"] = pm["metadata"]
        pm["metadata"] = apply_metadata(pm["metadata"], p.raw("metadata"))
    if "billing_details" in p:
        previous["billing_details"] = pm["billing_details"]
        pm["billing_details"] = _billing_details(p.raw("billing_details"))
    card = p.mapping("card")
    if card:
        previous["card"] = dict(pm["card"])
        for key in ("exp_month", "exp_year"):
            if key in card:
                pm["card"][key] = int(card[key])
    if p.string("allow_redisplay"):
        pm["allow_redisplay"] = p.string("allow_redisplay")
    sim.store.touch()
    sim.emit("payment_method.updated", pm, account=ctx.account, ctx=ctx, previous=previous)
    return pm


def attach(sim: Sim, ctx: Ctx, p: Params, payment_method: str) -> Obj:
    customer = p.req_string("customer")
    if not (payment_method.startswith("pm_card_") or sim.store.get(payment_method, ctx.account)):
        raise errors.no_such("PaymentMethod", payment_method)
    return attach_to(sim, ctx, payment_method, customer, param="payment_method")


def detach(sim: Sim, ctx: Ctx, p: Params, payment_method: str) -> Obj:
    pm = sim.require(ctx, payment_method, "PaymentMethod")
    customer = pm["customer"]
    if customer is None:
        raise errors.invalid_request(
            "The payment method you provided is not attached to a customer so detachment is "
            "impossible.",
            param="payment_method",
        )
    sim.store.index_remove("pm.customer", f"{ctx.account or ''}|{customer}", payment_method)
    pm["customer"] = None
    sim.store.internal(payment_method)["consumed"] = True
    sim.store.touch()
    sim.emit(
        "payment_method.detached",
        pm,
        account=ctx.account,
        ctx=ctx,
        previous={"customer": customer},
    )
    return pm


def _list_for_customer(sim: Sim, ctx: Ctx, p: Params, customer: str, url: str) -> Obj:
    type_ = p.string("type")
    ids_ = sim.store.index_ids("pm.customer", f"{ctx.account or ''}|{customer}")
    return list_object(
        sim,
        ctx,
        p,
        ids_,
        url,
        keep=(lambda pm: pm["type"] == type_) if type_ else None,
        sorted_by_seq=False,
        kind="PaymentMethod",
    )


def list_(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    customer = p.string("customer")
    if customer is not None:
        sim.require(ctx, customer, "customer", param="customer")
        return _list_for_customer(sim, ctx, p, customer, "/v1/payment_methods")
    type_ = p.string("type")
    return list_object(
        sim,
        ctx,
        p,
        sim.store.ids_of_type("payment_method", ctx.account),
        "/v1/payment_methods",
        keep=(lambda pm: pm["type"] == type_) if type_ else None,
        kind="PaymentMethod",
    )


def customer_list(sim: Sim, ctx: Ctx, p: Params, customer: str) -> Obj:
    sim.require(ctx, customer, "customer")
    return _list_for_customer(sim, ctx, p, customer, f"/v1/customers/{customer}/payment_methods")


def customer_retrieve(sim: Sim, ctx: Ctx, p: Params, customer: str, payment_method: str) -> Obj:
    sim.require(ctx, customer, "customer")
    pm = sim.require(ctx, payment_method, "PaymentMethod")
    if pm["customer"] != customer:
        raise errors.no_such("PaymentMethod", payment_method)
    return pm


ROUTES = [
    Route("POST", "/v1/payment_methods", create, publishable=True),
    Route("GET", "/v1/payment_methods", list_),
    Route("GET", "/v1/payment_methods/{payment_method}", retrieve),
    Route("POST", "/v1/payment_methods/{payment_method}", update),
    Route("POST", "/v1/payment_methods/{payment_method}/attach", attach),
    Route("POST", "/v1/payment_methods/{payment_method}/detach", detach),
    Route("GET", "/v1/customers/{customer}/payment_methods", customer_list),
    Route("GET", "/v1/customers/{customer}/payment_methods/{payment_method}", customer_retrieve),
]
