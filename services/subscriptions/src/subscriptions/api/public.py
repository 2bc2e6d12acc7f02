"""Routes of API keys: subscriptions, invoices, entitlements."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from fastapi.responses import Response

from bos_common.app import CurrentIdentity, Session
from bos_common.auth import require_org
from bos_common.errors import PermissionDenied
from subscriptions import repository, service
from subscriptions.api.deps import Limit, Rt, audited, find_invoice, org_of, pdf_response
from subscriptions.schemas import (
    CancelRequest,
    Entitlements,
    ExtendTrialRequest,
    Invoice,
    InvoiceList,
    Subscription,
    SubscriptionList,
    invoice_out,
    subscription_out,
)

router = APIRouter()


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
    org = org_of(identity)
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
        await service.get_subscription(session, org_of(identity), subscription_id)
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
        org_of(identity),
        subscription_id,
        at_period_end=(body or CancelRequest()).at_period_end,
    )
    audited(session, identity, "subscription.canceled", sub)
    return subscription_out(sub)


@router.post(
    "/v1/subscriptions/{subscription_id}/reactivate",
    response_model=Subscription,
    summary="Undo a cancellation at period end",
)
async def reactivate_subscription(
    subscription_id: str, session: Session, identity: CurrentIdentity, rt: Rt
) -> Subscription:
    sub = await service.reactivate_subscription(rt, session, org_of(identity), subscription_id)
    audited(session, identity, "subscription.reactivated", sub)
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
    sub = await service.extend_trial(rt, session, org_of(identity), subscription_id, body.days)
    audited(session, identity, "subscription.trial_extended", sub, days=body.days)
    return subscription_out(sub)


@router.post(
    "/v1/subscriptions/{subscription_id}/end-trial",
    response_model=Subscription,
    summary="End a trial now and charge the first period",
)
async def end_trial(
    subscription_id: str, session: Session, identity: CurrentIdentity, rt: Rt
) -> Subscription:
    sub = await service.end_trial(rt, session, org_of(identity), subscription_id)
    audited(session, identity, "subscription.trial_ended", sub)
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
    org = org_of(identity)
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
        org_of(identity),
        customer_id=customer_id,
        subscription_id=subscription_id,
        limit=limit,
        starting_after=starting_after,
    )
    return InvoiceList(data=[invoice_out(r) for r in rows], has_more=more)


@router.get("/v1/invoices/{invoice_id}", response_model=Invoice, summary="Retrieve an invoice")
async def get_invoice(invoice_id: str, session: Session, identity: CurrentIdentity) -> Invoice:
    return invoice_out(await find_invoice(session, invoice_id, org_of(identity)))


@router.get(
    "/v1/invoices/{invoice_id}/pdf",
    summary="An invoice as PDF",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def get_invoice_pdf(
    invoice_id: str, session: Session, identity: CurrentIdentity, rt: Rt, locale: str | None = None
) -> Response:
    return await pdf_response(
        rt, session, await find_invoice(session, invoice_id, org_of(identity)), locale
    )


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
