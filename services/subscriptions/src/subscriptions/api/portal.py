"""Routes of the customer portal (portal sessions) and its page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import HTMLResponse, Response

from bos_common.app import CurrentIdentity, Session
from bos_common.errors import ServiceUnavailable
from subscriptions import repository, service
from subscriptions.api.deps import Limit, Rt, audited, find_invoice, pdf_response, portal_customer
from subscriptions.portal_page import portal_response
from subscriptions.rows import Subscription
from subscriptions.schemas import (
    Invoice,
    InvoiceList,
    PaymentList,
    PortalCancelRequest,
    PortalCardUpdate,
    PortalSubscription,
    PortalSubscriptionList,
    invoice_out,
    payment_out,
    portal_subscription_out,
)

router = APIRouter()


# --- portal ------------------------------------------------------------------------------------


async def _portal_view(session: Any, sub: Subscription) -> PortalSubscription:
    inv = None
    if sub.pending_invoice_id:
        inv = await repository.get_invoice(session, sub.pending_invoice_id)
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
    org, customer = portal_customer(identity)
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
    org, customer = portal_customer(identity)
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
    org, customer = portal_customer(identity)
    sub = await service.cancel_subscription(
        rt,
        session,
        org,
        subscription_id,
        customer_id=customer,
        at_period_end=(body or PortalCancelRequest()).at_period_end,
    )
    audited(session, identity, "subscription.canceled", sub)
    return await _portal_view(session, sub)


@router.post(
    "/v1/portal/subscriptions/{subscription_id}/reactivate", response_model=PortalSubscription
)
async def portal_reactivate(
    subscription_id: str, session: Session, identity: CurrentIdentity, rt: Rt
) -> PortalSubscription:
    org, customer = portal_customer(identity)
    sub = await service.reactivate_subscription(
        rt, session, org, subscription_id, customer_id=customer
    )
    audited(session, identity, "subscription.reactivated", sub)
    return await _portal_view(session, sub)


@router.get("/v1/portal/invoices", response_model=InvoiceList)
async def portal_invoices(
    session: Session,
    identity: CurrentIdentity,
    limit: Limit = 20,
    starting_after: str | None = None,
) -> InvoiceList:
    org, customer = portal_customer(identity)
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
    org, customer = portal_customer(identity)
    return invoice_out(
        await find_invoice(session, invoice_id, org, customer), pdf_base="/v1/portal/invoices"
    )


@router.get(
    "/v1/portal/invoices/{invoice_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def portal_invoice_pdf(
    invoice_id: str, session: Session, identity: CurrentIdentity, rt: Rt, locale: str | None = None
) -> Response:
    org, customer = portal_customer(identity)
    return await pdf_response(
        rt, session, await find_invoice(session, invoice_id, org, customer), locale
    )


@router.get("/v1/portal/payments", response_model=PaymentList, summary="Payment history")
async def portal_payments(
    session: Session,
    identity: CurrentIdentity,
    limit: Limit = 20,
    starting_after: str | None = None,
) -> PaymentList:
    org, customer = portal_customer(identity)
    rows, more = await repository.list_payments(session, org, customer, limit, starting_after)
    return PaymentList(data=[payment_out(r) for r in rows], has_more=more)


@router.post("/v1/portal/payment-methods", summary="Start a card update")
async def portal_payment_method(
    identity: CurrentIdentity, rt: Rt, body: PortalCardUpdate | None = None
) -> Any:
    _, customer = portal_customer(identity)
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
