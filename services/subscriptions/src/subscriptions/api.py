"""Routes of the subscriptions service (thin: parse, call service.py, shape the response).

Public, API key (`require(identity, "api_key")`, organization from the identity; another
organization's object is 404):
- `GET /v1/subscriptions?customer_id=&external_user_id=&status=&limit=&starting_after=`
- `GET /v1/subscriptions/{id}`; `GET /v1/subscriptions/{id}/invoices`
- `POST /v1/subscriptions/{id}/cancel {at_period_end?: false}` (a trial ends at once)
- `POST /v1/subscriptions/{id}/reactivate`; `POST /v1/subscriptions/{id}/extend-trial {days}`;
  `POST /v1/subscriptions/{id}/end-trial`
- `GET /v1/invoices?customer_id=&subscription_id=`, `GET /v1/invoices/{id}`,
  `GET /v1/invoices/{id}/pdf?locale=`
- `GET /v1/entitlements?customer_id=` / `?external_user_id=` (also a session token, for its
  own external user) -> `{object, customer_id, external_user_id, features: [..], data:
  [{feature, product_id, subscription_id, status, expires_at}]}`

Portal (portal token: `principal_type == "portal"`, customer from the identity):
- `GET /v1/portal/subscriptions` (plan, next_billing {date, amount, currency}),
  `GET /v1/portal/subscriptions/{id}`
- `POST /v1/portal/subscriptions/{id}/cancel {at_period_end?: true}`,
  `POST /v1/portal/subscriptions/{id}/reactivate`
- `GET /v1/portal/invoices`, `GET /v1/portal/invoices/{id}`, `GET /v1/portal/invoices/{id}/pdf`
- `GET /v1/portal/payments` (payment history: each charge attempt and its outcome)
- `POST /v1/portal/payment-methods` -> checkout's `POST /internal/customers/{customer_id}/
  payment-method-updates` on behalf of the portal identity (its answer, e.g. a SetupIntent
  client secret, is returned as is)
- `GET /portal` (the portal page)

Internal (service identity; the gateway never routes /internal):
- `GET /internal/live-subscriptions?after=&limit=` -> `{data: [{subscription_id, org_id,
  customer_id, product_id, as_of}], next}`: every live subscription, by id
- `GET /internal/customers/{customer_id}/active-products?org_id=` -> `{customer_id, org_id,
  product_ids: [..], data: [{subscription_id, product_id, status, is_free}]}`: the
  products the customer holds (trialing, active, past_due, incomplete), for checkout's
  409 `already_subscribed` at creation (8.2). `org_id` may come from an on-behalf-of
  identity instead.
- `GET /internal/trial-eligibility?org_id=&product_id=&customer_id=&email=&card_fingerprint=`
  -> `{eligible: bool, reason: null | "customer" | "email" | "card"}` (6.6)
- `POST /internal/clock {now? | advance_seconds? | reset?}` and `POST /internal/scheduler/run`
  exist only with `ALLOW_CLOCK_CONTROL=true` (test stacks).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from bos_common.app import CurrentIdentity, Session
from bos_common.audit import audit_by
from bos_common.auth import Identity, require, require_org
from bos_common.db import after_commit
from bos_common.errors import InvalidRequest, NotFound, PermissionDenied, ServiceUnavailable
from subscriptions import repository, service
from subscriptions.pdf import parse_locale, render_invoice_pdf
from subscriptions.portal_page import portal_response
from subscriptions.runtime import SubscriptionsRuntime
from subscriptions.schemas import (
    CancelRequest,
    ClockRequest,
    Entitlements,
    ExtendTrialRequest,
    Invoice,
    InvoiceList,
    PaymentList,
    PortalCancelRequest,
    PortalCardUpdate,
    PortalSubscription,
    PortalSubscriptionList,
    Subscription,
    SubscriptionList,
    invoice_out,
    payment_out,
    portal_subscription_out,
    subscription_out,
)

router = APIRouter()


async def _rt(request: Request) -> SubscriptionsRuntime:  # async: no threadpool hop
    runtime: SubscriptionsRuntime = request.app.state.runtime
    return runtime


Rt = Annotated[SubscriptionsRuntime, Depends(_rt)]
Limit = Annotated[int, Query(ge=1, le=100)]


def _org(identity: Identity) -> str:
    return require_org(identity, "api_key")


def _portal(identity: Identity) -> tuple[str, str]:
    require(identity, "portal")
    if not identity.org_id or not identity.customer_id:
        raise PermissionDenied("forbidden", "This portal session has no customer.")
    return identity.org_id, identity.customer_id


async def _pdf(
    rt: SubscriptionsRuntime, session: Any, inv: dict[str, Any], locale: str | None
) -> Response:
    try:
        loc = parse_locale(locale) if locale else rt.settings.invoice_locale
    except ValueError:
        raise InvalidRequest("invalid_locale", "Unknown locale.", param="locale") from None
    seller = await repository.organization_name(session, inv["org_id"]) or inv["org_id"]
    pdf = render_invoice_pdf(inv, seller=seller, locale=loc, font_path=rt.settings.invoice_font)
    return Response(
        content=pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="invoice-{inv["number"]}.pdf"'},
    )


# --- API key: subscriptions -----------------------------------------------------------------


@router.get("/v1/subscriptions", response_model=SubscriptionList, summary="List subscriptions")
async def list_subscriptions(
    session: Session,
    identity: CurrentIdentity,
    customer_id: str | None = None,
    external_user_id: str | None = None,
    status: str | None = None,
    limit: Limit = 20,
    starting_after: str | None = None,
) -> SubscriptionList:
    org = _org(identity)
    rows, more = await repository.list_subscriptions(
        session,
        org,
        customer_id=customer_id,
        external_user_id=external_user_id,
        status=status,
        limit=limit,
        starting_after=starting_after,
    )
    return SubscriptionList(data=[subscription_out(r) for r in rows], has_more=more)


@router.get(
    "/v1/subscriptions/{subscription_id}",
    response_model=Subscription,
    summary="Retrieve a subscription",
)
async def get_subscription(
    subscription_id: str, session: Session, identity: CurrentIdentity
) -> Subscription:
    return subscription_out(
        await service.get_subscription(session, _org(identity), subscription_id)
    )


@router.post(
    "/v1/subscriptions/{subscription_id}/cancel",
    response_model=Subscription,
    summary="Cancel a subscription (at once, or at the period end)",
)
async def cancel_subscription(
    subscription_id: str,
    session: Session,
    identity: CurrentIdentity,
    rt: Rt,
    body: Annotated[CancelRequest | None, Body()] = None,
) -> Subscription:
    sub = await service.cancel_subscription(
        rt,
        session,
        _org(identity),
        subscription_id,
        at_period_end=(body or CancelRequest()).at_period_end,
    )
    _audited(session, identity, "subscription.canceled", sub)
    return subscription_out(sub)


@router.post(
    "/v1/subscriptions/{subscription_id}/reactivate",
    response_model=Subscription,
    summary="Undo a cancellation at period end",
)
async def reactivate_subscription(
    subscription_id: str, session: Session, identity: CurrentIdentity, rt: Rt
) -> Subscription:
    sub = await service.reactivate_subscription(rt, session, _org(identity), subscription_id)
    _audited(session, identity, "subscription.reactivated", sub)
    return subscription_out(sub)


@router.post(
    "/v1/subscriptions/{subscription_id}/extend-trial",
    response_model=Subscription,
    summary="Extend a trial by N days",
)
async def extend_trial(
    subscription_id: str,
    body: ExtendTrialRequest,
    session: Session,
    identity: CurrentIdentity,
    rt: Rt,
) -> Subscription:
    sub = await service.extend_trial(rt, session, _org(identity), subscription_id, body.days)
    _audited(session, identity, "subscription.trial_extended", sub, days=body.days)
    return subscription_out(sub)


@router.post(
    "/v1/subscriptions/{subscription_id}/end-trial",
    response_model=Subscription,
    summary="End a trial now and charge the first period",
)
async def end_trial(
    subscription_id: str, session: Session, identity: CurrentIdentity, rt: Rt
) -> Subscription:
    sub = await service.end_trial(rt, session, _org(identity), subscription_id)
    _audited(session, identity, "subscription.trial_ended", sub)
    return subscription_out(sub)


@router.get(
    "/v1/subscriptions/{subscription_id}/invoices",
    response_model=InvoiceList,
    summary="A subscription's invoices",
)
async def subscription_invoices(
    subscription_id: str,
    session: Session,
    identity: CurrentIdentity,
    limit: Limit = 20,
    starting_after: str | None = None,
) -> InvoiceList:
    org = _org(identity)
    await service.get_subscription(session, org, subscription_id)
    rows, more = await repository.list_invoices(
        session,
        org,
        customer_id=None,
        subscription_id=subscription_id,
        limit=limit,
        starting_after=starting_after,
    )
    return InvoiceList(data=[invoice_out(r) for r in rows], has_more=more)


# --- API key: invoices and entitlements -----------------------------------------------------


@router.get("/v1/invoices", response_model=InvoiceList, summary="List invoices")
async def list_invoices(
    session: Session,
    identity: CurrentIdentity,
    customer_id: str | None = None,
    subscription_id: str | None = None,
    limit: Limit = 20,
    starting_after: str | None = None,
) -> InvoiceList:
    rows, more = await repository.list_invoices(
        session,
        _org(identity),
        customer_id=customer_id,
        subscription_id=subscription_id,
        limit=limit,
        starting_after=starting_after,
    )
    return InvoiceList(data=[invoice_out(r) for r in rows], has_more=more)


async def _invoice(
    session: Any, invoice_id: str, org_id: str, customer_id: str | None = None
) -> dict[str, Any]:
    inv = await repository.get_invoice(session, invoice_id, org_id=org_id, customer_id=customer_id)
    if inv is None:
        raise NotFound(*service.INVOICE_NOT_FOUND)
    return inv


@router.get("/v1/invoices/{invoice_id}", response_model=Invoice, summary="Retrieve an invoice")
async def get_invoice(invoice_id: str, session: Session, identity: CurrentIdentity) -> Invoice:
    return invoice_out(await _invoice(session, invoice_id, _org(identity)))


@router.get(
    "/v1/invoices/{invoice_id}/pdf",
    summary="An invoice as PDF",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def get_invoice_pdf(
    invoice_id: str, session: Session, identity: CurrentIdentity, rt: Rt, locale: str | None = None
) -> Response:
    return await _pdf(rt, session, await _invoice(session, invoice_id, _org(identity)), locale)


@router.get("/v1/entitlements", response_model=Entitlements, summary="Features a customer has now")
async def get_entitlements(
    identity: CurrentIdentity,
    rt: Rt,
    customer_id: str | None = None,
    external_user_id: str | None = None,
) -> Response:
    org_id = require_org(identity, "api_key", "session")
    if identity.principal_type == "session":
        # A session token reads its own external user's features only.
        if customer_id or (external_user_id and external_user_id != identity.external_user_id):
            raise PermissionDenied("forbidden", "A session token reads its own entitlements.")
        external_user_id = identity.external_user_id
    # The hottest read (its latency is an objective): one statement on the driver
    # connection (no transaction is begun, so none is ended), and the body serialized once
    # here instead of validated again by FastAPI's response_model handling.
    async with rt.db.driver_connection() as driver:
        body = await service.entitlements(
            rt,
            driver,
            org_id,
            customer_id=customer_id,
            external_user_id=external_user_id,
        )
    return Response(
        content=Entitlements.model_validate(body).model_dump_json(),
        media_type="application/json",
    )


# --- portal ------------------------------------------------------------------------------------


async def _portal_view(session: Any, sub: dict[str, Any]) -> PortalSubscription:
    inv = None
    if sub.get("pending_invoice_id"):
        inv = await repository.get_invoice(session, sub["pending_invoice_id"])
    return portal_subscription_out(sub, service.next_billing(sub, inv))


@router.get(
    "/v1/portal/subscriptions",
    response_model=PortalSubscriptionList,
    summary="The customer's subscriptions",
)
async def portal_subscriptions(
    session: Session,
    identity: CurrentIdentity,
    limit: Limit = 20,
    starting_after: str | None = None,
) -> PortalSubscriptionList:
    org, customer = _portal(identity)
    rows, more = await repository.list_subscriptions(
        session,
        org,
        customer_id=customer,
        external_user_id=None,
        status=None,
        limit=limit,
        starting_after=starting_after,
    )
    return PortalSubscriptionList(
        data=[await _portal_view(session, r) for r in rows], has_more=more
    )


@router.get("/v1/portal/subscriptions/{subscription_id}", response_model=PortalSubscription)
async def portal_subscription(
    subscription_id: str, session: Session, identity: CurrentIdentity
) -> PortalSubscription:
    org, customer = _portal(identity)
    return await _portal_view(
        session, await service.get_subscription(session, org, subscription_id, customer_id=customer)
    )


@router.post(
    "/v1/portal/subscriptions/{subscription_id}/cancel",
    response_model=PortalSubscription,
    summary="Cancel (at period end by default)",
)
async def portal_cancel(
    subscription_id: str,
    session: Session,
    identity: CurrentIdentity,
    rt: Rt,
    body: Annotated[PortalCancelRequest | None, Body()] = None,
) -> PortalSubscription:
    org, customer = _portal(identity)
    sub = await service.cancel_subscription(
        rt,
        session,
        org,
        subscription_id,
        customer_id=customer,
        at_period_end=(body or PortalCancelRequest()).at_period_end,
    )
    _audited(session, identity, "subscription.canceled", sub)
    return await _portal_view(session, sub)


@router.post(
    "/v1/portal/subscriptions/{subscription_id}/reactivate", response_model=PortalSubscription
)
async def portal_reactivate(
    subscription_id: str, session: Session, identity: CurrentIdentity, rt: Rt
) -> PortalSubscription:
    org, customer = _portal(identity)
    sub = await service.reactivate_subscription(
        rt, session, org, subscription_id, customer_id=customer
    )
    _audited(session, identity, "subscription.reactivated", sub)
    return await _portal_view(session, sub)


@router.get("/v1/portal/invoices", response_model=InvoiceList)
async def portal_invoices(
    session: Session,
    identity: CurrentIdentity,
    limit: Limit = 20,
    starting_after: str | None = None,
) -> InvoiceList:
    org, customer = _portal(identity)
    rows, more = await repository.list_invoices(
        session,
        org,
        customer_id=customer,
        subscription_id=None,
        limit=limit,
        starting_after=starting_after,
    )
    return InvoiceList(
        data=[invoice_out(r, pdf_base="/v1/portal/invoices") for r in rows], has_more=more
    )


@router.get("/v1/portal/invoices/{invoice_id}", response_model=Invoice)
async def portal_invoice(invoice_id: str, session: Session, identity: CurrentIdentity) -> Invoice:
    org, customer = _portal(identity)
    return invoice_out(
        await _invoice(session, invoice_id, org, customer), pdf_base="/v1/portal/invoices"
    )


@router.get(
    "/v1/portal/invoices/{invoice_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def portal_invoice_pdf(
    invoice_id: str, session: Session, identity: CurrentIdentity, rt: Rt, locale: str | None = None
) -> Response:
    org, customer = _portal(identity)
    return await _pdf(rt, session, await _invoice(session, invoice_id, org, customer), locale)


@router.get("/v1/portal/payments", response_model=PaymentList, summary="Payment history")
async def portal_payments(
    session: Session,
    identity: CurrentIdentity,
    limit: Limit = 20,
    starting_after: str | None = None,
) -> PaymentList:
    org, customer = _portal(identity)
    rows, more = await repository.list_payments(session, org, customer, limit, starting_after)
    return PaymentList(data=[payment_out(r) for r in rows], has_more=more)


@router.post("/v1/portal/payment-methods", summary="Start a card update")
async def portal_payment_method(
    identity: CurrentIdentity, rt: Rt, body: PortalCardUpdate | None = None
) -> Any:
    _, customer = _portal(identity)
    if rt.checkout is None:
        raise ServiceUnavailable(
            "dependency_unavailable", "Card updates are not available right now."
        )
    status, answer = await rt.checkout.request(
        "POST",
        f"/internal/customers/{customer}/payment-method-updates",
        json=body.model_dump(exclude_none=True) if body else {},
        on_behalf_of=identity,
    )
    return answer


@router.get("/portal", response_class=HTMLResponse, include_in_schema=False)
async def portal_page() -> HTMLResponse:
    return portal_response()


def _audited(
    session: Any, identity: Identity, action: str, sub: dict[str, Any], **extra: Any
) -> None:
    """The audit line (plan 18.3) of an action on `sub` by the caller (a merchant's API
    key, or the customer in the portal), once the request's transaction committed."""
    after_commit(
        session,
        lambda: audit_by(
            action,
            identity,
            org_id=sub["org_id"],
            subscription_id=sub["id"],
            customer_id=sub["customer_id"],
            status=sub["status"],
            cancel_at_period_end=sub["cancel_at_period_end"],
            **extra,
        ),
    )


# --- internal ---------------------------------------------------------------------------------


def _service(identity: Identity) -> None:
    require(identity, "service")


@router.get("/internal/customers/{customer_id}/active-products", include_in_schema=False)
async def active_products(
    customer_id: str, session: Session, identity: CurrentIdentity, org_id: str | None = None
) -> dict[str, Any]:
    _service(identity)
    org = identity.org_id or org_id
    rows = await repository.active_products(session, org, customer_id)
    return {
        "customer_id": customer_id,
        "org_id": org,
        "product_ids": sorted({r["product_id"] for r in rows}),
        "data": [
            {
                "subscription_id": r["id"],
                "product_id": r["product_id"],
                "status": r["status"],
                "is_free": r["is_free"],
            }
            for r in rows
        ],
    }


@router.get("/internal/live-subscriptions", include_in_schema=False)
async def live_subscriptions(
    session: Session,
    identity: CurrentIdentity,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> dict[str, Any]:
    """Every live subscription, a page at a time (checkout fills its projection of
    subscription.* events from it on a database that predates the projection)."""
    _service(identity)
    rows = await repository.live_subscriptions_page(session, after, limit)
    return {
        "data": [
            {
                "subscription_id": r["id"],
                "org_id": r["org_id"],
                "customer_id": r["customer_id"],
                "product_id": r["product_id"],
                "as_of": r["updated_at"].isoformat(),
            }
            for r in rows
        ],
        "next": rows[-1]["id"] if len(rows) == limit else None,
    }


@router.get("/internal/trial-eligibility", include_in_schema=False)
async def trial_eligibility(
    session: Session,
    identity: CurrentIdentity,
    product_id: str,
    org_id: str | None = None,
    customer_id: str | None = None,
    email: str | None = None,
    card_fingerprint: str | None = None,
) -> dict[str, Any]:
    _service(identity)
    org = identity.org_id or org_id
    if not org:
        raise InvalidRequest("parameter_missing", "org_id is required.", param="org_id")
    reason = await repository.trial_used(
        session,
        org,
        product_id,
        customer_id=customer_id,
        email=email,
        card_fingerprint=card_fingerprint,
    )
    return {"eligible": reason is None, "reason": reason}


def _clock_control(rt: SubscriptionsRuntime, identity: Identity) -> None:
    _service(identity)
    if not rt.settings.allow_clock_control:
        raise NotFound("not_found", "Not found")


@router.post("/internal/clock", include_in_schema=False)
async def set_clock(body: ClockRequest, identity: CurrentIdentity, rt: Rt) -> dict[str, Any]:
    from datetime import timedelta

    _clock_control(rt, identity)
    if body.reset:
        rt.clock.reset()
    if body.now is not None:
        rt.clock.set(body.now)
    if body.advance_seconds:
        rt.clock.advance(timedelta(seconds=body.advance_seconds))
    return {"now": rt.clock.now().isoformat()}


@router.post("/internal/scheduler/run", include_in_schema=False)
async def run_scheduler(identity: CurrentIdentity, rt: Rt) -> dict[str, Any]:
    from subscriptions.scheduler import drain

    _clock_control(rt, identity)
    return {"handled": await drain(rt)}
