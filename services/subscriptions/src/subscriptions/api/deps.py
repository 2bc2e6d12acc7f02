"""What the routes share: the runtime, credentials' checks, the invoice PDF answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import Response

from bos_common.audit import audit_by
from bos_common.auth import Identity, require, require_org
from bos_common.db import after_commit
from bos_common.errors import InvalidRequest, NotFound, PermissionDenied
from subscriptions import repository, service
from subscriptions.pdf import parse_locale, render_invoice_pdf
from subscriptions.rows import Invoice, Subscription
from subscriptions.runtime import SubscriptionsRuntime


async def _rt(request: Request) -> SubscriptionsRuntime:  # async: no threadpool hop
    runtime: SubscriptionsRuntime = request.app.state.runtime
    return runtime


Rt = Annotated[SubscriptionsRuntime, Depends(_rt)]
Limit = Annotated[int, Query(ge=1, le=100)]


def org_of(identity: Identity) -> str:
    return require_org(identity, "api_key")


def portal_customer(identity: Identity) -> tuple[str, str]:
    require(identity, "portal")
    if not identity.org_id or not identity.customer_id:
        raise PermissionDenied("forbidden", "This portal session has no customer.")
    return identity.org_id, identity.customer_id


async def pdf_response(
    rt: SubscriptionsRuntime, session: Any, inv: Invoice, locale: str | None
) -> Response:
    try:
        loc = parse_locale(locale) if locale else rt.settings.invoice_locale
    except ValueError:
        raise InvalidRequest("invalid_locale", "Unknown locale.", param="locale") from None
    seller = await repository.organization_name(session, inv.org_id) or inv.org_id
    pdf = render_invoice_pdf(inv, seller=seller, locale=loc, font_path=rt.settings.invoice_font)
    return Response(
        content=pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="invoice-{inv.number}.pdf"'},
    )


async def find_invoice(
    session: Any, invoice_id: str, org_id: str, customer_id: str | None = None
) -> Invoice:
    inv = await repository.get_invoice(session, invoice_id, org_id=org_id, customer_id=customer_id)
    if inv is None:
        raise NotFound(*service.INVOICE_NOT_FOUND)
    return inv


def audited(session: Any, identity: Identity, action: str, sub: Subscription, **extra: Any) -> None:
    """The audit line (plan 18.3) of an action on `sub` by the caller (a merchant's API
    key, or the customer in the portal), once the request's transaction committed."""
    after_commit(
        session,
        lambda: audit_by(
            action,
            identity,
            org_id=sub.org_id,
            subscription_id=sub.id,
            customer_id=sub.customer_id,
            status=sub.status,
            cancel_at_period_end=sub.cancel_at_period_end,
            **extra,
        ),
    )
