"""Checkout routes (docs/api.md "Checkout" and "Customers"): thin, the rules live in
service.py, confirm.py and payment_states.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from bos_common.app import CurrentIdentity, Session
from bos_common.audit import audit_by
from bos_common.auth import require
from bos_common.db import after_commit
from bos_common.errors import NotFound
from bos_common.openapi import error_responses
from checkout import cards, confirm, connect, creation, customer_repository, repository, service
from checkout.runtime import Runtime
from checkout.schemas import (
    STRIPE_ID_PATTERN,
    ApplyCoupon,
    CheckoutSessionOut,
    Confirm,
    ConfirmOut,
    ConnectedAccountOut,
    CreateCheckoutSession,
    CustomerList,
    CustomerRecord,
)

router = APIRouter()
# The hosted page authenticates with the checkout's client secret in this header.
ClientSecret = Annotated[str | None, Header(alias="x-checkout-secret", include_in_schema=False)]


@router.post(
    "/v1/checkout-sessions", status_code=201, responses={201: {"model": CheckoutSessionOut}}
)
async def create_checkout_session(
    body: CreateCheckoutSession, identity: CurrentIdentity, runtime: Runtime
) -> Response:
    # No request-scoped session: creation writes in one statement on a connection of its
    # own (checkout.creation), and the response is serialized once, by pydantic, instead of
    # FastAPI's validate-then-encode of a response_model.
    require(identity, "api_key", "session")
    row, client_secret, price = await creation.create_checkout(runtime, identity, body)
    out = service.checkout_out(runtime, row, client_secret=client_secret, price=price)
    return Response(out.model_dump_json(), status_code=201, media_type="application/json")


@router.get("/v1/checkout-sessions/{checkout_id}", response_model=CheckoutSessionOut)
async def get_checkout_session(
    checkout_id: str,
    session: Session,
    identity: CurrentIdentity,
    runtime: Runtime,
    client_secret: ClientSecret = None,
) -> CheckoutSessionOut:
    row = await service.load_checkout(session, identity, checkout_id, client_secret)
    row = await service.expire_if_due(session, row)
    payment = await repository.get_payment(session, row.payment_id) if row.payment_id else None
    if payment is None and row.status in ("open", "processing"):
        payment = await repository.latest_payment_of_checkout(session, row.id)
    return service.checkout_out(runtime, row, payment)


@router.post("/v1/checkout-sessions/{checkout_id}/coupon", response_model=CheckoutSessionOut)
async def apply_coupon(
    checkout_id: str,
    body: ApplyCoupon,
    session: Session,
    identity: CurrentIdentity,
    runtime: Runtime,
    client_secret: ClientSecret = None,
) -> CheckoutSessionOut:
    row = await service.load_checkout(session, identity, checkout_id, client_secret)
    updated = await service.apply_coupon(runtime, session, row, body.code)
    after_commit(
        session,
        lambda: audit_by(
            "checkout.coupon_applied",
            identity,
            org_id=updated.org_id,
            checkout_id=updated.id,
            coupon=body.code,
            amount_total=updated.amount_total,
        ),
    )
    return service.checkout_out(runtime, updated)


@router.post("/v1/checkout-sessions/{checkout_id}/confirm", response_model=ConfirmOut)
async def confirm_checkout(
    checkout_id: str,
    body: Confirm,
    identity: CurrentIdentity,
    runtime: Runtime,
    client_secret: ClientSecret = None,
) -> ConfirmOut:
    # No request-scoped transaction: confirm commits its phases itself around the
    # Stripe call, so no database connection is held while Stripe answers.
    out = await confirm.confirm(runtime, identity, checkout_id, body.payment_method, client_secret)
    audit_by(
        "checkout.confirmed",
        identity,
        checkout_id=checkout_id,
        payment_id=out.payment_id,
        outcome=out.status,
        code=out.error.code if out.error else None,
    )
    return out


@router.post(
    "/v1/checkout-sessions/{checkout_id}/confirm-free",
    response_model=ConfirmOut,
    description=(
        "Completes a free checkout (no payment). Answers `complete` once the subscription "
        "exists, normally within milliseconds; if that takes longer than "
        "`FREE_CONFIRM_WAIT_SECONDS` (5 s by default), `processing`: the checkout then "
        "completes on its own (poll `GET /v1/checkout-sessions/{id}`)."
    ),
)
async def confirm_free_checkout(
    checkout_id: str,
    identity: CurrentIdentity,
    runtime: Runtime,
    client_secret: ClientSecret = None,
) -> ConfirmOut:
    # No request-scoped transaction: the confirm commits, then waits for the fulfilment.
    row, status = await confirm.confirm_free_and_wait(runtime, identity, checkout_id, client_secret)
    audit_by("checkout.confirmed", identity, org_id=row.org_id, checkout_id=row.id, outcome=status)
    return ConfirmOut(status=status, checkout_id=row.id)


@router.post("/v1/checkout-sessions/{checkout_id}/cancel", response_model=CheckoutSessionOut)
async def cancel_checkout_session(
    checkout_id: str,
    session: Session,
    identity: CurrentIdentity,
    runtime: Runtime,
    client_secret: ClientSecret = None,
) -> CheckoutSessionOut:
    row = await service.load_checkout(session, identity, checkout_id, client_secret)
    canceled = await service.cancel_checkout(session, row)
    await service.release_coupon(runtime, canceled)
    after_commit(
        session,
        lambda: audit_by(
            "checkout.canceled", identity, org_id=canceled.org_id, checkout_id=canceled.id
        ),
    )
    return service.checkout_out(runtime, canceled)


@router.get("/v1/customers", response_model=CustomerList)
async def list_customers(
    session: Session,
    identity: CurrentIdentity,
    email: str | None = None,
    external_user_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: str | None = None,
) -> CustomerList:
    require(identity, "api_key")
    assert identity.org_id
    rows = await customer_repository.list_customers(
        session,
        identity.org_id,
        email=email,
        external_user_id=external_user_id,
        limit=limit + 1,
        starting_after=starting_after,
    )
    return CustomerList(
        data=[CustomerRecord.model_validate(r, from_attributes=True) for r in rows[:limit]],
        has_more=len(rows) > limit,
    )


@router.get("/v1/customers/{customer_id}", response_model=CustomerRecord)
async def get_customer(
    customer_id: str, session: Session, identity: CurrentIdentity
) -> CustomerRecord:
    require(identity, "api_key")
    assert identity.org_id
    row = await customer_repository.get_customer(session, identity.org_id, customer_id)
    if row is None:
        raise NotFound("customer_not_found", "Customer not found.")
    return CustomerRecord.model_validate(row, from_attributes=True)


class CardUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payment_method: str | None = Field(
        default=None, min_length=3, max_length=255, pattern=STRIPE_ID_PATTERN
    )


@router.get(
    "/v1/connected-account",
    response_model=ConnectedAccountOut,
    responses=error_responses({404: "connected_account_not_found"}),
)
async def get_connected_account(identity: CurrentIdentity, runtime: Runtime) -> ConnectedAccountOut:
    # No request-scoped session: Stripe may be asked, with no connection held meanwhile.
    require(identity, "api_key")
    assert identity.org_id
    return await connect.connected_account(runtime, identity.org_id)


@router.post("/internal/customers/{customer_id}/payment-method-updates", include_in_schema=False)
async def update_payment_method(
    customer_id: str, identity: CurrentIdentity, runtime: Runtime, body: CardUpdate | None = None
) -> dict[str, Any]:
    """Start (or, with a payment method, complete) a card update for the portal:
    `{status: succeeded|requires_action|requires_payment_method|failed, setup_intent_id,
    client_secret}` for Stripe.js `confirmCardSetup` when the card is collected in the page."""
    return await cards.start_card_update(
        runtime, identity, customer_id, body.payment_method if body else None
    )


@router.get("/internal/customers/{customer_id}", include_in_schema=False)
async def internal_customer(
    customer_id: str, session: Session, identity: CurrentIdentity
) -> CustomerRecord:
    """For tokens (portal sessions): the customer in the caller's organization, else 404."""
    if identity.principal_type not in ("service", "api_key") or not identity.org_id:
        raise NotFound("customer_not_found", "Customer not found.")
    row = await customer_repository.get_customer(session, identity.org_id, customer_id)
    if row is None:
        raise NotFound("customer_not_found", "Customer not found.")
    return CustomerRecord.model_validate(row, from_attributes=True)
