"""Connect: ``/v1/accounts`` (Express/Custom/Standard), account and login links,
``/v1/transfers`` and ``/v1/application_fees``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .. import errors, ids
from ..forms import Params, apply_metadata
from ..sim import Ctx, Sim
from ..store import Obj
from . import charges
from .common import LIST_PARAMS, Route, allowed, empty_list, list_object, require_secret_key

ACCOUNT_CREATE = allowed(
    "account_token", "business_profile", "business_type", "capabilities", "company",
    "controller", "country", "default_currency", "documents", "email", "external_account",
    "groups", "individual", "metadata", "settings", "tos_acceptance", "type",
)  # fmt: skip
ACCOUNT_UPDATE = ACCOUNT_CREATE - {"type", "controller", "country"}
ACCOUNT_TYPES = ("express", "custom", "standard")
LINK_CREATE = allowed(
    "account", "collect", "collection_options", "refresh_url", "return_url", "type"
)
TRANSFER_CREATE = allowed(
    "amount", "currency", "description", "destination", "metadata", "source_transaction",
    "source_type", "transfer_group",
)  # fmt: skip
TRANSFER_LIST = LIST_PARAMS | {"destination", "transfer_group"}
FEE_LIST = LIST_PARAMS | {"charge"}

PLATFORM_ACCOUNT_ID = "acct_1StripeSimPlatform"
CURRENTLY_DUE = [
    "business_profile.url",
    "external_account",
    "individual.dob.day",
    "individual.first_name",
    "individual.last_name",
    "tos_acceptance.date",
    "tos_acceptance.ip",
]


# -- helpers used by other resources -----------------------------------------------------


def require_account(sim: Sim, account_id: str, *, param: str) -> Obj:
    account = sim.store.get(account_id, None)
    if account is None or account.get("object") != "account":
        raise errors.no_such("account", account_id, param=param, status=400)
    return account


def require_transfers_capability(account: Obj, *, param: str) -> None:
    if account["capabilities"].get("transfers") != "active":
        raise errors.invalid_request(
            "Your destination account needs to have at least one of the following capabilities "
            "enabled: transfers, crypto_transfers, legacy_payments",
            param=param,
            code="insufficient_capabilities_for_transfer",
        )


# -- accounts ------------------------------------------------------------------------------


def _account_type(p: Params) -> str:
    type_ = p.string("type")
    if type_ is not None:
        if type_ not in ACCOUNT_TYPES:
            raise errors.invalid_request(
                f"Invalid type: must be one of {', '.join(ACCOUNT_TYPES)}", param="type"
            )
        return type_
    controller = p.mapping("controller") or {}
    dashboard = (controller.get("stripe_dashboard") or {}).get("type")
    if dashboard == "express":
        return "express"
    if dashboard == "none":
        return "custom"
    return "standard"


def _capabilities(p: Params) -> dict[str, str]:
    requested = p.mapping("capabilities") or {}
    names = [
        name
        for name, value in requested.items()
        if isinstance(value, dict) and str(value.get("requested", "")).lower() == "true"
    ]
    return dict.fromkeys(names or ["card_payments", "transfers"], "inactive")


def _requirements(due: list[str]) -> dict[str, Any]:
    return {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": list(due),
        "disabled_reason": "requirements.past_due" if due else None,
        "errors": [],
        "eventually_due": list(due),
        "past_due": list(due),
        "pending_verification": [],
    }


def _build_account(p: Params) -> Obj:
    type_ = _account_type(p)
    country = (p.string("country") or "US").upper()
    return {
        "id": ids.new_id("acct", 16),
        "object": "account",
        "business_profile": p.mapping("business_profile")
        or {"mcc": None, "name": None, "url": None},
        "business_type": p.string("business_type"),
        "capabilities": _capabilities(p),
        "charges_enabled": False,
        "controller": {
            "is_controller": True,
            "type": "application",
            "stripe_dashboard": {
                "type": {"standard": "full", "express": "express"}.get(type_, "none")
            },
        },
        "country": country,
        "created": ids.now(),
        "default_currency": (p.string("default_currency") or ("usd" if country == "US" else "eur")),
        "details_submitted": False,
        "email": p.string("email"),
        "external_accounts": empty_list("/v1/accounts/external_accounts"),
        "future_requirements": _requirements([]),
        "metadata": apply_metadata({}, p.raw("metadata")),
        "payouts_enabled": False,
        "requirements": _requirements(CURRENTLY_DUE),
        "settings": p.mapping("settings") or {},
        "tos_acceptance": {"date": None, "ip": None, "user_agent": None},
        "type": type_,
    }


def create_account(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    p.check_allowed(ACCOUNT_CREATE)
    require_secret_key(ctx)
    if ctx.account is not None:
        raise errors.invalid_request("Connected accounts cannot create accounts.")
    account = _build_account(p)
    account["external_accounts"]["url"] = f"/v1/accounts/{account['id']}/external_accounts"
    sim.store.add(account, None)
    return account


def retrieve_account(sim: Sim, ctx: Ctx, p: Params, account: str) -> Obj:
    p.check_allowed(allowed())
    if ctx.account is not None and account != ctx.account:
        raise errors.no_such("account", account)
    return connected_account(sim, account)


def connected_account(sim: Sim, account_id: str) -> Obj:
    obj = sim.store.get(account_id, None)
    if obj is None or obj.get("object") != "account":
        raise errors.no_such("account", account_id)
    return obj


def current_account(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    p.check_allowed(allowed())
    if ctx.account is not None:
        return connected_account(sim, ctx.account)
    return {
        "id": PLATFORM_ACCOUNT_ID,
        "object": "account",
        "business_profile": {"name": "Stripe simulator platform"},
        "capabilities": {"card_payments": "active", "transfers": "active"},
        "charges_enabled": True,
        "country": "US",
        "default_currency": "usd",
        "details_submitted": True,
        "payouts_enabled": True,
        "type": "standard",
    }


def _emit_account_updated(
    sim: Sim, ctx: Ctx | None, account: Obj, previous: dict[str, Any]
) -> None:
    sim.store.touch()
    sim.emit("account.updated", account, account=account["id"], ctx=ctx, previous=previous)


def update_account(sim: Sim, ctx: Ctx, p: Params, account: str) -> Obj:
    p.check_allowed(ACCOUNT_UPDATE)
    obj = retrieve_account(sim, ctx, Params({}), account)
    previous: dict[str, Any] = {}
    if "metadata" in p:
        previous["metadata"] = obj["metadata"]
        obj["metadata"] = apply_metadata(obj["metadata"], p.raw("metadata"))
    for key in ("email", "business_type", "default_currency"):
        if key in p:
            previous[key] = obj.get(key)
            obj[key] = p.string(key)
    for key in ("business_profile", "settings"):
        value = p.mapping(key)
        if value is not None:
            previous[key] = obj.get(key)
            obj[key] = {**(obj.get(key) or {}), **value}
    if "capabilities" in p:
        previous["capabilities"] = dict(obj["capabilities"])
        for name in _capabilities(p):
            status = "active" if obj["charges_enabled"] else "inactive"
            obj["capabilities"].setdefault(name, status)
    _emit_account_updated(sim, ctx, obj, previous)
    return obj


def delete_account(sim: Sim, ctx: Ctx, p: Params, account: str) -> Obj:
    require_secret_key(ctx)
    connected_account(sim, account)
    sim.store.mark_deleted(account)
    return {"id": account, "object": "account", "deleted": True}


def list_accounts(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    p.check_allowed(LIST_PARAMS)
    return list_object(
        sim, ctx, p, sim.store.ids_of_type("account", None), "/v1/accounts", kind="account"
    )


def verify(sim: Sim, account_id: str) -> Obj:
    """Mark a connected account fully onboarded; emits ``account.updated``."""
    account = connected_account(sim, account_id)
    previous = {
        "charges_enabled": account["charges_enabled"],
        "payouts_enabled": account["payouts_enabled"],
        "details_submitted": account["details_submitted"],
        "capabilities": dict(account["capabilities"]),
        "requirements": account["requirements"],
    }
    account.update(
        charges_enabled=True,
        payouts_enabled=True,
        details_submitted=True,
        capabilities=dict.fromkeys(account["capabilities"], "active"),
        requirements=_requirements([]),
        tos_acceptance={"date": ids.now(), "ip": "127.0.0.1", "user_agent": "stripe-sim"},
    )
    _emit_account_updated(sim, None, account, previous)
    return account


def create_account_link(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    p.check_allowed(LINK_CREATE)
    require_secret_key(ctx)
    account = connected_account(sim, p.req_string("account"))
    link_type = p.req_string("type")
    if link_type not in ("account_onboarding", "account_update"):
        raise errors.invalid_request(
            "Invalid type: must be one of account_onboarding, account_update", param="type"
        )
    return_url = p.string("return_url") or ""
    refresh_url = p.string("refresh_url") or ""
    created = ids.now()
    return {
        "object": "account_link",
        "created": created,
        "expires_at": created + 300,
        "url": (
            f"{ctx.base_url}/_sim/connect/onboarding/{account['id']}"
            f"?return_url={quote(return_url, safe='')}&refresh_url={quote(refresh_url, safe='')}"
        ),
    }


def create_login_link(sim: Sim, ctx: Ctx, p: Params, account: str) -> Obj:
    p.check_allowed(allowed())
    connected_account(sim, account)
    return {
        "object": "login_link",
        "created": ids.now(),
        "url": f"{ctx.base_url}/_sim/connect/dashboard/{account}",
    }


# -- transfers -----------------------------------------------------------------------------


def create_transfer(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    p.check_allowed(TRANSFER_CREATE)
    require_secret_key(ctx)
    amount = p.req_integer("amount")
    if amount <= 0:
        raise errors.invalid_request("Amount must be positive.", param="amount")
    currency = p.req_string("currency").lower()
    destination = require_account(sim, p.req_string("destination"), param="destination")
    require_transfers_capability(destination, param="destination")
    source = p.string("source_transaction")
    if source is not None:
        charge = sim.store.get(source, ctx.account)
        if charge is None or charge.get("object") != "charge":
            raise errors.no_such("charge", source, param="source_transaction", status=400)
        if not charge["captured"]:
            raise errors.invalid_request(
                "The source_transaction must be a succeeded, captured charge.",
                param="source_transaction",
            )
    return charges.create_transfer(
        sim,
        ctx,
        amount=amount,
        currency=currency,
        destination=destination["id"],
        source_transaction=source,
        transfer_group=p.string("transfer_group"),
        description=p.string("description"),
        metadata=apply_metadata({}, p.raw("metadata")),
    )


def retrieve_transfer(sim: Sim, ctx: Ctx, p: Params, transfer: str) -> Obj:
    p.check_allowed(allowed())
    return sim.require(ctx, transfer, "transfer")


def list_transfers(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    p.check_allowed(TRANSFER_LIST)
    destination = p.string("destination")
    group = p.string("transfer_group")
    if destination is not None:
        ids_ = sim.store.seq_index_ids("transfer.destination", destination)
    elif group is not None:
        ids_ = sim.store.seq_index_ids("transfer.transfer_group", group)
    else:
        ids_ = sim.store.ids_of_type("transfer", ctx.account)
    keep = (lambda t: t["transfer_group"] == group) if destination and group else None
    return list_object(sim, ctx, p, ids_, "/v1/transfers", keep=keep, kind="transfer")


# -- application fees ----------------------------------------------------------------------


def list_fees(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    p.check_allowed(FEE_LIST)
    charge = p.string("charge")
    if charge is not None:
        ids_ = sim.store.seq_index_ids("application_fee.charge", charge)
    else:
        ids_ = sim.store.ids_of_type("application_fee", ctx.account)
    return list_object(sim, ctx, p, ids_, "/v1/application_fees", kind="application fee")


def retrieve_fee(sim: Sim, ctx: Ctx, p: Params, fee: str) -> Obj:
    p.check_allowed(allowed())
    return sim.require(ctx, fee, "application fee")


ROUTES = [
    Route("POST", "/v1/accounts", create_account),
    Route("GET", "/v1/accounts", list_accounts),
    Route("GET", "/v1/account", current_account),
    Route("GET", "/v1/accounts/{account}", retrieve_account),
    Route("POST", "/v1/accounts/{account}", update_account),
    Route("DELETE", "/v1/accounts/{account}", delete_account),
    Route("POST", "/v1/accounts/{account}/login_links", create_login_link),
    Route("POST", "/v1/account_links", create_account_link),
    Route("POST", "/v1/transfers", create_transfer),
    Route("GET", "/v1/transfers", list_transfers),
    Route("GET", "/v1/transfers/{transfer}", retrieve_transfer),
    Route("GET", "/v1/application_fees", list_fees),
    Route("GET", "/v1/application_fees/{fee}", retrieve_fee),
]
