"""3D Secure decisions and ``next_action`` payloads shared by PaymentIntents and SetupIntents."""

from __future__ import annotations

import enum
from typing import Any
from urllib.parse import quote

from .. import cards, errors, ids, versions
from ..forms import Params
from ..sim import Ctx, Sim


class Auth(enum.Enum):
    NONE = "none"
    CHALLENGE = "challenge"
    #: off-session and the card needs the customer: fail with ``authentication_required``
    DECLINE = "decline"


def for_payment(spec: cards.CardSpec, *, off_session: bool, set_up: bool) -> Auth:
    if spec.three_ds is cards.ThreeDS.NONE:
        return Auth.NONE
    if spec.three_ds is cards.ThreeDS.ALWAYS:
        return Auth.DECLINE if off_session else Auth.CHALLENGE
    if off_session:
        return Auth.NONE if set_up else Auth.DECLINE
    return Auth.CHALLENGE


def for_setup(spec: cards.CardSpec) -> Auth:
    return Auth.NONE if spec.three_ds is cards.ThreeDS.NONE else Auth.CHALLENGE


def next_action(ctx: Ctx, intent_id: str, return_url: str | None, use_stripe_sdk: bool) -> Any:
    """``use_stripe_sdk`` when Stripe.js finishes the challenge in the page (publishable key or
    ``use_stripe_sdk=true``), else ``redirect_to_url`` to the hosted challenge page."""
    url = f"{ctx.base_url}/_sim/3ds/{intent_id}"
    if use_stripe_sdk:
        return {
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {
                "type": "three_d_secure_redirect",
                "stripe_js": url,
                "source": ids.new_id("src"),
            },
        }
    return {
        "type": "redirect_to_url",
        "redirect_to_url": {
            "return_url": return_url,
            "url": f"{url}?return_url={quote(return_url, safe='')}" if return_url else url,
        },
    }


def check_return_url(intent: dict[str, Any], p: Params, ctx: Ctx, *, off_session: bool) -> None:
    """Stripe refuses a server-side confirm of an intent whose automatic payment methods allow
    redirects unless a ``return_url`` is given; off-session confirms need none (the customer is
    not there to be redirected)."""
    apm = intent.get("automatic_payment_methods")
    if ctx.publishable or off_session or not apm or not apm.get("enabled"):
        return
    if apm.get("allow_redirects") == "never" or p.string("return_url"):
        return
    kind = "Payment Intent" if intent["object"] == "payment_intent" else "Setup Intent"
    raise errors.rule_error(
        f"A `return_url` must be specified because this {kind} is configured to automatically "
        "accept the payment methods enabled in the Dashboard, some of which may require a full "
        "page redirect to succeed. If you do not want to accept redirect-based payment methods, "
        "set `automatic_payment_methods[enabled]` to `true` and "
        "`automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and "
        "Payment Intents.",
        param="return_url",
    )


def automatic_payment_methods(sim: Sim, ctx: Ctx, p: Params) -> dict[str, Any] | None:
    """The intent's ``automatic_payment_methods``: as sent, else on by default (redirects
    allowed) from API 2023-08-16 unless ``allowed_payment_method_types`` restricts the intent."""
    value = p.raw("automatic_payment_methods")
    if isinstance(value, dict):
        enabled = str(value.get("enabled", "")).lower() == "true"
        return {"allow_redirects": value.get("allow_redirects") or "always", "enabled": enabled}
    if p.array("allowed_payment_method_types"):
        return None
    version = ctx.api_version or sim.config.api_version
    if versions.automatic_payment_methods_by_default(version):
        return {"allow_redirects": "always", "enabled": True}
    return None
