"""``/v1/customers``: create, retrieve, update, list (by email), delete."""

from __future__ import annotations

from typing import Any

from .. import errors, ids
from ..forms import Params, apply_metadata, nullable_str
from ..sim import Ctx, Sim
from ..store import Obj
from . import payment_methods
from .common import Route, address_from, list_object

_SIMPLE_FIELDS = ("description", "email", "name", "phone", "business_name", "individual_name")


def _invoice_settings(current: dict[str, Any] | None, update: Any) -> dict[str, Any]:
    settings = dict(
        current
        or {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        }
    )
    if isinstance(update, dict):
        for key in ("default_payment_method", "footer"):
            if key in update:
                settings[key] = nullable_str(update[key])
    return settings


def _check_default_pm(sim: Sim, ctx: Ctx, customer_id: str, settings: dict[str, Any]) -> None:
    pm_id = settings.get("default_payment_method")
    if pm_id is None:
        return
    pm = sim.store.get(pm_id, ctx.account)
    if pm is None or pm.get("customer") != customer_id:
        raise errors.invalid_request(
            f"The customer does not have a payment method with the ID {pm_id}. The payment "
            "method must be attached to the customer.",
            param="invoice_settings[default_payment_method]",
            code="resource_missing",
        )


def create(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    customer: Obj = {
        "id": ids.new_id("cus", 14),
        "object": "customer",
        "address": address_from(p.raw("address")),
        "balance": p.integer("balance") or 0,
        "created": ids.now(),
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": None,
        "invoice_prefix": p.string("invoice_prefix") or ids.new_id("x", 8)[2:].upper(),
        "invoice_settings": _invoice_settings(None, None),
        "livemode": False,
        "metadata": apply_metadata({}, p.raw("metadata")),
        "name": None,
        "next_invoice_sequence": p.integer("next_invoice_sequence") or 1,
        "phone": None,
        "preferred_locales": [str(x) for x in p.array("preferred_locales")],
        "shipping": p.mapping("shipping"),
        "tax_exempt": p.string("tax_exempt") or "none",
        "test_clock": None,
    }
    for key in _SIMPLE_FIELDS:
        customer[key] = p.string(key)
    sim.store.add(customer, ctx.account)
    sim.store.index_add("customer.email", _email_key(ctx, customer["email"]), customer["id"])
    sim.emit("customer.created", customer, account=ctx.account, ctx=ctx)
    pm_id = p.string("payment_method")
    if pm_id:
        payment_methods.attach_to(sim, ctx, pm_id, customer["id"], param="payment_method")
    return customer


def _email_key(ctx: Ctx, email: str | None) -> str | None:
    return None if email is None else f"{ctx.account or ''}|{email}"


def retrieve(sim: Sim, ctx: Ctx, p: Params, customer: str) -> Obj:
    meta = sim.store.meta.get(customer)
    if meta is not None and meta.account == ctx.account and meta.internal.get("deleted"):
        return {"id": customer, "object": "customer", "deleted": True}
    return sim.require(ctx, customer, "customer")


def update(sim: Sim, ctx: Ctx, p: Params, customer: str) -> Obj:
    obj = sim.require(ctx, customer, "customer")
    before = dict(obj)
    changes: dict[str, Any] = {}
    for key in _SIMPLE_FIELDS:
        if key in p:
            changes[key] = nullable_str(p.raw(key))
    if "metadata" in p:
        changes["metadata"] = apply_metadata(obj["metadata"], p.raw("metadata"))
    if "address" in p:
        changes["address"] = address_from(p.raw("address"))
    if "shipping" in p:
        changes["shipping"] = p.mapping("shipping") or None
    if "balance" in p:
        changes["balance"] = p.integer("balance") or 0
    if "invoice_settings" in p:
        settings = _invoice_settings(obj["invoice_settings"], p.raw("invoice_settings"))
        _check_default_pm(sim, ctx, customer, settings)
        changes["invoice_settings"] = settings
    if "preferred_locales" in p:
        changes["preferred_locales"] = [str(x) for x in p.array("preferred_locales")]
    if "tax_exempt" in p:
        changes["tax_exempt"] = p.string("tax_exempt") or "none"
    previous = {k: before[k] for k, v in changes.items() if before.get(k) != v}
    if "email" in previous:
        sim.store.index_remove("customer.email", _email_key(ctx, before["email"]), customer)
        sim.store.index_add("customer.email", _email_key(ctx, changes["email"]), customer)
    obj.update(changes)
    sim.store.touch()
    if previous:
        sim.emit("customer.updated", obj, account=ctx.account, ctx=ctx, previous=previous)
    return obj


def delete(sim: Sim, ctx: Ctx, p: Params, customer: str) -> Obj:
    obj = sim.require(ctx, customer, "customer")
    sim.store.mark_deleted(customer)
    sim.store.index_remove("customer.email", _email_key(ctx, obj["email"]), customer)
    sim.emit("customer.deleted", obj, account=ctx.account, ctx=ctx)
    return {"id": customer, "object": "customer", "deleted": True}


def list_(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    email = p.string("email")
    if email is not None:
        ids_ = sim.store.index_ids("customer.email", f"{ctx.account or ''}|{email}")
        return list_object(sim, ctx, p, ids_, "/v1/customers", sorted_by_seq=False, kind="customer")
    ids_ = sim.store.ids_of_type("customer", ctx.account)
    return list_object(sim, ctx, p, ids_, "/v1/customers", kind="customer")


ROUTES = [
    Route("POST", "/v1/customers", create),
    Route("GET", "/v1/customers", list_),
    Route("GET", "/v1/customers/{customer}", retrieve),
    Route("POST", "/v1/customers/{customer}", update),
    Route("DELETE", "/v1/customers/{customer}", delete),
]
