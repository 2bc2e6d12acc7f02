"""Connect: ``/v1/accounts`` (Express/Custom/Standard), account and login links,
``/v1/transfers`` and ``/v1/application_fees``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .. import errors, forms, ids
from ..forms import Params, apply_metadata
from ..sim import Ctx, Sim, snapshot_of
from ..store import Obj
from . import balance, charges
from .common import Route, empty_list, list_object, require_secret_key

ACCOUNT_TYPES = ("express", "custom", "standard")

PLATFORM_ACCOUNT_ID = "acct_1StripeSimPlatform"
MINIMUM_DELAY_DAYS = 2  # US cards
PAYOUT_SCHEDULE_REFUSED = (
    "You cannot update settings[payouts][schedule] on account {account}: its payout "
    "schedule is managed by the account holder. A platform can change it only on accounts "
    "whose dashboard and requirements it controls (Custom accounts, or Express accounts)."
)
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
    """``type``, or what the ``controller`` properties describe (Stripe's mapping: an Express
    dashboard is Express, no dashboard with platform-collected requirements is Custom)."""
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
    if dashboard == "none" or controller.get("requirement_collection") == "application":
        return "custom"
    return "standard"


def _controller(type_: str) -> dict[str, Any]:
    """``controller`` as Stripe shows it for an account the platform created."""
    return {
        "fees": {"payer": "account" if type_ == "standard" else "application"},
        "is_controller": True,
        "losses": {"payments": "stripe" if type_ == "standard" else "application"},
        "requirement_collection": "application" if type_ == "custom" else "stripe",
        "stripe_dashboard": {"type": {"standard": "full", "express": "express"}.get(type_, "none")},
        "type": "application",
    }


def platform_controls_payouts(account: Obj) -> bool:
    """Rule 6: the platform may change payout settings only on accounts whose dashboard and
    requirements it controls: Custom (requirements collected by the platform) or Express
    (the platform's Express dashboard); not Standard accounts (full Stripe dashboard)."""
    controller = account.get("controller") or {}
    if not controller.get("is_controller"):
        return False
    if controller.get("requirement_collection") == "application":
        return True
    return (controller.get("stripe_dashboard") or {}).get("type") in ("express", "none")


def _schedule(value: Any, current: dict[str, Any]) -> dict[str, Any]:
    """``settings[payouts][schedule]`` as the account shows it: ``delay_days`` an integer
    (``minimum`` is the country's minimum), anchors only for their interval."""
    if not isinstance(value, dict):
        raise errors.invalid_request(
            "Invalid settings[payouts][schedule]: must be a hash",
            param="settings[payouts][schedule]",
        )
    schedule = dict(current)
    interval = str(value.get("interval") or schedule.get("interval") or "daily")
    schedule["interval"] = interval
    if "delay_days" in value:
        delay = value["delay_days"]
        schedule["delay_days"] = (
            MINIMUM_DELAY_DAYS
            if delay == "minimum"
            else forms.to_int(delay, "settings[payouts][schedule][delay_days]")
        )
    schedule.pop("weekly_anchor", None)
    schedule.pop("monthly_anchor", None)
    if interval == "weekly":
        schedule["weekly_anchor"] = str(
            value.get("weekly_anchor") or current.get("weekly_anchor") or "monday"
        )
    if interval == "monthly":
        schedule["monthly_anchor"] = forms.to_int(
            value.get("monthly_anchor") or current.get("monthly_anchor") or 1,
            "settings[payouts][schedule][monthly_anchor]",
        )
    return schedule


def _default_settings(account: Obj) -> dict[str, Any]:
    return {
        "branding": {"icon": None, "logo": None, "primary_color": None, "secondary_color": None},
        "card_payments": {
            "decline_on": {"avs_failure": False, "cvc_failure": False},
            "statement_descriptor_prefix": None,
            "statement_descriptor_prefix_kana": None,
            "statement_descriptor_prefix_kanji": None,
        },
        "dashboard": {"display_name": None, "timezone": "Etc/UTC"},
        "payments": {
            "statement_descriptor": None,
            "statement_descriptor_kana": None,
            "statement_descriptor_kanji": None,
            "statement_descriptor_prefix_kana": None,
            "statement_descriptor_prefix_kanji": None,
        },
        "payouts": {
            "debit_negative_balances": account["type"] != "standard",
            "schedule": {"delay_days": MINIMUM_DELAY_DAYS, "interval": "daily"},
            "statement_descriptor": None,
        },
    }


def _apply_settings(account: Obj, value: dict[str, Any], *, by_platform: bool) -> None:
    """Merge ``settings[...]`` into the account; payout schedules only where allowed."""
    settings = account["settings"]
    for section, changes in value.items():
        if not isinstance(changes, dict):
            raise errors.invalid_request(
                f"Invalid settings[{section}]: must be a hash", param=f"settings[{section}]"
            )
        changes = dict(changes)
        if section == "payouts" and "schedule" in changes:
            if by_platform and not platform_controls_payouts(account):
                raise errors.invalid_request(
                    PAYOUT_SCHEDULE_REFUSED.format(account=account["id"]),
                    param="settings[payouts][schedule]",
                )
            current = settings.get("payouts", {}).get("schedule", {})
            changes["schedule"] = _schedule(changes["schedule"], current)
        if section == "payouts" and "debit_negative_balances" in changes:
            changes["debit_negative_balances"] = forms.to_bool(
                changes["debit_negative_balances"], "settings[payouts][debit_negative_balances]"
            )
        settings[section] = {**(settings.get(section) or {}), **changes}


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
        "controller": _controller(type_),
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
        "settings": {},
        "tos_acceptance": {"date": None, "ip": None, "user_agent": None},
        "type": type_,
    }


def create_account(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    require_secret_key(ctx)
    if ctx.account is not None:
        raise errors.invalid_request("Connected accounts cannot create accounts.")
    account = _build_account(p)
    account["settings"] = _default_settings(account)
    # at creation the platform sets up the account it creates (any type)
    _apply_settings(account, p.mapping("settings") or {}, by_platform=False)
    account["external_accounts"]["url"] = f"/v1/accounts/{account['id']}/external_accounts"
    sim.store.add(account, None)
    return account


def retrieve_account(sim: Sim, ctx: Ctx, p: Params, account: str) -> Obj:
    if ctx.account is not None and account != ctx.account:
        raise errors.no_such("account", account)
    return connected_account(sim, account)


def connected_account(sim: Sim, account_id: str) -> Obj:
    obj = sim.store.get(account_id, None)
    if obj is None or obj.get("object") != "account":
        raise errors.no_such("account", account_id)
    return obj


def current_account(sim: Sim, ctx: Ctx, p: Params) -> Obj:
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
    obj = retrieve_account(sim, ctx, Params({}), account)
    previous: dict[str, Any] = {}
    if "metadata" in p:
        previous["metadata"] = obj["metadata"]
        obj["metadata"] = apply_metadata(obj["metadata"], p.raw("metadata"))
    for key in ("email", "business_type", "default_currency"):
        if key in p:
            previous[key] = obj.get(key)
            obj[key] = p.string(key)
    value = p.mapping("business_profile")
    if value is not None:
        previous["business_profile"] = obj.get("business_profile")
        obj["business_profile"] = {**(obj.get("business_profile") or {}), **value}
    settings = p.mapping("settings")
    if settings is not None:
        before = snapshot_of(obj["settings"])
        _apply_settings(obj, settings, by_platform=ctx.account is None)
        previous["settings"] = before
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
    connected_account(sim, account)
    return {
        "object": "login_link",
        "created": ids.now(),
        "url": f"{ctx.base_url}/_sim/connect/dashboard/{account}",
    }


# -- transfers -----------------------------------------------------------------------------


def create_transfer(sim: Sim, ctx: Ctx, p: Params) -> Obj:
    require_secret_key(ctx)
    amount = p.req_integer("amount")
    if amount <= 0:
        raise errors.invalid_request("Amount must be positive.", param="amount")
    currency = p.req_string("currency").lower()
    destination = require_account(sim, p.req_string("destination"), param="destination")
    require_transfers_capability(destination, param="destination")
    source = p.string("source_transaction")
    if source is not None:
        _check_source_transaction(sim, ctx, source, amount, currency)
    else:
        balance.require_available(sim, ctx.account, currency, amount)
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


def _check_source_transaction(sim: Sim, ctx: Ctx, source: str, amount: int, currency: str) -> None:
    """A transfer tied to a charge may use its funds while they are pending, up to what the
    charge has left (its amount less refunds and earlier transfers from it)."""
    charge = sim.store.get(source, ctx.account)
    if charge is None or charge.get("object") != "charge":
        raise errors.no_such("charge", source, param="source_transaction", status=400)
    if not charge["captured"]:
        raise errors.invalid_request(
            "The source_transaction must be a succeeded, captured charge.",
            param="source_transaction",
        )
    if charge["currency"] != currency:
        raise errors.invalid_request(
            f"The currency of source_transaction's balance transaction ({charge['currency']}) "
            f"must be the same as the transfer currency ({currency})",
            param="currency",
        )
    transferred = sum(
        sim.store.objects[t]["amount"] - sim.store.objects[t]["amount_reversed"]
        for t in sim.store.seq_index_ids("transfer.source_transaction", source)
    )
    left = charge["amount_captured"] - charge["amount_refunded"] - transferred
    if amount > left:
        raise errors.invalid_request(
            f"Insufficient funds in the source transaction {source}: {left} {currency} left "
            f"to transfer, {amount} requested.",
            param="amount",
            code="balance_insufficient",
        )


def retrieve_transfer(sim: Sim, ctx: Ctx, p: Params, transfer: str) -> Obj:
    return sim.require(ctx, transfer, "transfer")


def list_transfers(sim: Sim, ctx: Ctx, p: Params) -> Obj:
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
    charge = p.string("charge")
    if charge is not None:
        ids_ = sim.store.seq_index_ids("application_fee.charge", charge)
    else:
        ids_ = sim.store.ids_of_type("application_fee", ctx.account)
    return list_object(sim, ctx, p, ids_, "/v1/application_fees", kind="application fee")


def retrieve_fee(sim: Sim, ctx: Ctx, p: Params, fee: str) -> Obj:
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
