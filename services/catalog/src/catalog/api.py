"""Routes of the catalog service (thin: parse, call service.py, shape the response).

Public (docs/api.md "Catalog"; API key, reads also for session tokens):
  POST   /v1/products                      ProductCreate -> 201 ProductOut
  GET    /v1/products                      ?limit=1..100&starting_after=prod_..&active=&visible=
                                           -> {"object": "list", "data": [ProductOut], "has_more"}
                                           (a session token lists active, visible products only)
  GET    /v1/products/{id}                 -> ProductOut (any product of the org, visible or not)
  PATCH  /v1/products/{id}                 ProductUpdate -> ProductOut
  POST   /v1/products/{id}/archive         -> ProductOut (idempotent)
  POST   /v1/prices                        PriceCreate -> 201 PriceOut
  GET    /v1/prices                        ?product_id=&active=&limit=&starting_after= -> list
  GET    /v1/prices/{id}                   -> PriceOut (annual: monthly_equivalent and savings)
  DELETE /v1/prices/{id}                   -> PriceOut with active=false (soft delete)
  POST   /v1/coupons                       CouponCreate -> 201 CouponOut (409 coupon_code_taken)
  GET    /v1/coupons                       ?limit=&starting_after= -> list (API key only)
  GET    /v1/coupons/{code}                -> CouponOut (code matched case-insensitively)

Internal (checkout and operators: service principal; under `/internal`, never routed by
the gateway). Every route takes the organization in the path; an api_key/session identity
forwarded with `on_behalf_of` is accepted too when its org is that org. Failures are the contract's
error bodies, so `bos_common.internal.InternalClient` re-raises them as the very
`BOSError` a public route can let through unchanged.

`GET /internal/orgs/{org_id}/prices/{price_id}/snapshot[?include_unavailable=true]`
    200 `SnapshotOut`: `{"snapshot": <bos_common.events.PriceSnapshot fields>,
    "product": {id, name, description, visible, active, metadata},
    "monthly_equivalent": int | null, "savings": {amount, percent, compared_to_price_id} | null,
    "available": true, "reason": null}`
    (`PriceSnapshot.model_validate(body["snapshot"])` gives the event model).
    Errors: 404 `product_not_found` "Product not found" (unknown price, another org's);
    400 `product_not_available` "Product not available" (archived product, checked first);
    400 `price_not_available` "Price not available" (soft-deleted price).
    With `include_unavailable=true` the last two are a 200 with `available: false` and
    `reason` = the code (for renewals of existing subscriptions).

`POST /internal/orgs/{org_id}/coupons/evaluate` body `CouponEvaluateIn`:
    `{code, product_id, amount, currency, customer_is_new, price_id?, checkout_id?}`
    (`amount`: what the coupon discounts, the recurring/one-time price in minor units,
    setup fee excluded; `checkout_id`: a checkout holding a reservation does not count
    against itself; `price_id`: accepted for tracing, the rules use `product_id`).
    Read-only.
    200 `EvaluationOut`: `{"coupon": <bos_common.events.AppliedCoupon fields>,
    "amount_subtotal", "amount_discount", "amount_total", "trial_extension_days",
    "reservation": null}`.
    Errors, 400, checked in this order: `invalid_coupon` "Invalid coupon code" (unknown,
    another org's), `coupon_expired` "Coupon expired", `coupon_not_applicable` "Coupon not
    valid for this product" (product restriction, or an amount_off coupon in another
    currency), `coupon_new_customers_only` "Coupon for new customers only",
    `coupon_exhausted` "Coupon usage limit reached" (max_redemptions taken by redemptions
    and live reservations of other checkouts).

`POST /internal/orgs/{org_id}/coupons/reserve` body `CouponReserveIn` = evaluate's body +
    `{checkout_id (required), customer_id?, ttl_seconds? = 3600 (60..604800)}`.
    Evaluates, then takes one of the coupon's `max_redemptions` slots for this checkout
    until `now + ttl_seconds` (row lock on the coupon: concurrent reserves of the last
    slot -> exactly one 200, the others 400 `coupon_exhausted`). Idempotent per
    (coupon, checkout): calling again renews the lease. Call it right before charging
    (confirm / confirm-free); `checkout.completed.v1` turns the lease into a redemption.
    200 `EvaluationOut` with `"reservation": {"checkout_id", "status": "reserved"|"redeemed",
    "expires_at"}`.

`POST /internal/orgs/{org_id}/coupons/release` body `{checkout_id, coupon_id?}` ->
    200 `{"released": n}`: gives back the slot of a checkout that was canceled, expired
    or failed (no-op for redeemed ones).

`POST /internal/demo/{org_id}` (service or admin) -> 200 `DemoOut`: the plan's "Test
    Data Setup" for that organization, created once (idempotent).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from bos_common.app import CurrentIdentity, Session
from bos_common.auth import (
    Identity,
    request_identity,
    require,
)
from bos_common.errors import AuthenticationError, PermissionDenied, ValidationFailed
from bos_common.ids import id_pattern
from catalog import demo, service
from catalog.schemas import (
    CouponCreate,
    CouponEvaluateIn,
    CouponList,
    CouponOut,
    CouponReleaseIn,
    CouponReserveIn,
    DemoOut,
    EvaluationOut,
    PriceCreate,
    PriceList,
    PriceOut,
    ProductCreate,
    ProductList,
    ProductListQuery,
    ProductOut,
    ProductUpdate,
    ReleaseOut,
    SnapshotOut,
    coupon_out,
    page,
    price_out,
    product_out,
    products_out,
)

router = APIRouter(tags=["catalog"])
internal_router = APIRouter(prefix="/internal", include_in_schema=False)

READERS = ("api_key", "session")


@asynccontextmanager
async def read_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """Reads run outside a transaction (autocommit): one round trip per query, no
    BEGIN/COMMIT. Writes use `Session` (one transaction, committed before the response)."""
    async with request.app.state.runtime.db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


async def _read_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    async with read_connection(request) as conn:
        yield conn


ReadDb = Annotated[AsyncConnection, Depends(_read_connection, scope="function")]


def _producer(request: Request) -> str:
    """The name this service's events carry as their producer."""
    return str(request.app.state.runtime.name)


Producer = Annotated[str, Depends(_producer)]


def identity_of(request: Request) -> Identity:
    """`CurrentIdentity` without dependency injection (the hot routes)."""
    return request_identity(request, request.app.state.runtime.settings.internal_secret)


Limit = Annotated[int, Query(ge=1, le=100)]

Q = TypeVar("Q", bound=BaseModel)


def parse_query(model: type[Q], request: Request) -> Q:
    """Query parameters through a pydantic model, without FastAPI's per-parameter
    dependency machinery (the hot routes below; errors in the same shape)."""
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(x) for x in first["loc"]) or None
        raise ValidationFailed(
            "parameter_invalid",
            f"Invalid value for {param}: {first['msg'].rstrip('.')}.",
            param=param,
        ) from None


def query_doc(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI `parameters` for a route that parses `model` itself."""
    schema = model.model_json_schema()
    return {
        "parameters": [
            {"name": name, "in": "query", "required": False, "schema": prop}
            for name, prop in schema["properties"].items()
        ]
    }


def json(data: Any, status_code: int = 200) -> Response:
    return Response(
        orjson.dumps(data, option=orjson.OPT_UTC_Z),
        status_code=status_code,
        media_type="application/json",
    )


def _org(identity: Identity, *types: str) -> str:
    require(identity, *types)  # type: ignore[arg-type]
    if not identity.org_id:
        raise AuthenticationError("authentication_required", "Authentication required.")
    return identity.org_id


def _internal(identity: Identity, org_id: str) -> str:
    """Service (or admin) callers name the org; a forwarded merchant/browser identity may
    only act on its own."""
    require(identity)
    if identity.principal_type in ("service", "admin"):
        return org_id
    if identity.principal_type in READERS and identity.org_id == org_id:
        return org_id
    raise PermissionDenied("forbidden", "This credential cannot perform this action.")


# --------------------------------------------------------------------------- products


@router.post(
    "/v1/products",
    status_code=201,
    responses={201: {"model": ProductOut}},
    summary="Create a product",
)
async def create_product(
    body: ProductCreate, session: Session, identity: CurrentIdentity
) -> Response:
    org_id = _org(identity, "api_key")
    return json(product_out(await service.create_product(session, org_id, body)), 201)


@router.get(
    "/v1/products",
    responses={200: {"model": ProductList}},
    summary="List products",
    openapi_extra=query_doc(ProductListQuery),
)
async def list_products(request: Request) -> Response:
    # Hot path (every pricing page): no per-parameter dependency injection.
    identity = identity_of(request)
    org_id = _org(identity, *READERS)
    # The first page of a pricing page has no parameters: the defaults, not a validation.
    q = parse_query(ProductListQuery, request) if request.scope["query_string"] else NO_QUERY
    active, visible = q.active, q.visible
    if identity.principal_type == "session":
        # Browsers list what is for sale: visibility matters to listings only (plan 2.6).
        if active is False or visible is False:
            return json(page([], False))
        active, visible = True, True
    async with request.app.state.runtime.db.driver_connection() as conn:
        rows, has_more = await service.list_products(
            conn,
            org_id,
            limit=q.limit,
            starting_after=q.starting_after,
            active=active,
            visible=visible,
        )
    return json(page(products_out(rows), has_more))


NO_QUERY = ProductListQuery()


@router.get(
    "/v1/products/{product_id}",
    responses={200: {"model": ProductOut}},
    summary="Retrieve a product",
)
async def get_product(product_id: str, db: ReadDb, identity: CurrentIdentity) -> Response:
    org_id = _org(identity, *READERS)
    return json(product_out(await service.get_product(db, org_id, product_id)))


@router.patch(
    "/v1/products/{product_id}", responses={200: {"model": ProductOut}}, summary="Update a product"
)
async def update_product(
    product_id: str,
    body: ProductUpdate,
    session: Session,
    identity: CurrentIdentity,
    producer: Producer,
) -> Response:
    org_id = _org(identity, "api_key")
    return json(
        product_out(await service.update_product(session, producer, org_id, product_id, body))
    )


@router.post(
    "/v1/products/{product_id}/archive",
    responses={200: {"model": ProductOut}},
    summary="Archive a product (no new checkouts; existing subscriptions continue)",
)
async def archive_product(
    product_id: str, session: Session, identity: CurrentIdentity, producer: Producer
) -> Response:
    org_id = _org(identity, "api_key")
    return json(product_out(await service.archive_product(session, producer, org_id, product_id)))


# --------------------------------------------------------------------------- prices


@router.post(
    "/v1/prices",
    status_code=201,
    responses={201: {"model": PriceOut}},
    summary="Create a price (prices are immutable: a change is a new price)",
)
async def create_price(body: PriceCreate, session: Session, identity: CurrentIdentity) -> Response:
    org_id = _org(identity, "api_key")
    row = await service.create_price(session, org_id, body)
    return json(price_out(row, row.monthly_id, row.monthly_amount), 201)


@router.get("/v1/prices", responses={200: {"model": PriceList}}, summary="List prices")
async def list_prices(
    db: ReadDb,
    identity: CurrentIdentity,
    limit: Limit = 20,
    starting_after: Annotated[str | None, Query(pattern=id_pattern("price"))] = None,
    product_id: str | None = None,
    active: bool | None = None,
) -> Response:
    org_id = _org(identity, *READERS)
    if identity.principal_type == "session":
        if active is False:
            return json(page([], False))
        active = True
    rows, has_more = await service.list_prices(
        db,
        org_id,
        limit=limit,
        starting_after=starting_after,
        product_id=product_id,
        active=active,
    )
    return json(page([price_out(r, r.monthly_id, r.monthly_amount) for r in rows], has_more))


@router.get(
    "/v1/prices/{price_id}",
    responses={200: {"model": PriceOut}},
    summary="Retrieve a price",
    description="A deleted price is still answered (docs/api.md: prices are soft-deleted), with "
    "`active: false` and `deleted_at` set: subscriptions that use it keep referring to it, "
    "and a new checkout of it is refused with 400 `price_not_available`.",
)
async def get_price(price_id: str, db: ReadDb, identity: CurrentIdentity) -> Response:
    org_id = _org(identity, *READERS)
    row = await service.get_price(db, org_id, price_id)
    return json(price_out(row, row.monthly_id, row.monthly_amount))


@router.delete(
    "/v1/prices/{price_id}",
    responses={200: {"model": PriceOut}},
    summary="Delete a price (soft: it stays readable, it cannot be bought)",
    description="Sets `deleted_at` and `active: false`; `GET /v1/prices/{price_id}` keeps "
    "answering 200 with them.",
)
async def delete_price(
    price_id: str, session: Session, identity: CurrentIdentity, producer: Producer
) -> Response:
    org_id = _org(identity, "api_key")
    row = await service.delete_price(session, producer, org_id, price_id)
    return json(price_out(row, row.monthly_id, row.monthly_amount))


# --------------------------------------------------------------------------- coupons


def _now() -> datetime:
    return datetime.now(UTC)


@router.post(
    "/v1/coupons", status_code=201, responses={201: {"model": CouponOut}}, summary="Create a coupon"
)
async def create_coupon(
    body: CouponCreate, session: Session, identity: CurrentIdentity
) -> Response:
    org_id = _org(identity, "api_key")
    return json(coupon_out(await service.create_coupon(session, org_id, body), now=_now()), 201)


@router.get("/v1/coupons", responses={200: {"model": CouponList}}, summary="List coupons")
async def list_coupons(
    db: ReadDb,
    identity: CurrentIdentity,
    limit: Limit = 20,
    starting_after: Annotated[str | None, Query(pattern=id_pattern("coupon"))] = None,
) -> Response:
    org_id = _org(identity, "api_key")
    rows, has_more = await service.list_coupons(
        db, org_id, limit=limit, starting_after=starting_after
    )
    now = _now()
    return json(page([coupon_out(r, now=now) for r in rows], has_more))


@router.get(
    "/v1/coupons/{code}", responses={200: {"model": CouponOut}}, summary="Retrieve a coupon by code"
)
async def get_coupon(code: str, db: ReadDb, identity: CurrentIdentity) -> Response:
    org_id = _org(identity, *READERS)
    return json(coupon_out(await service.get_coupon(db, org_id, code), now=_now()))


# --------------------------------------------------------------------------- internal


@internal_router.get(
    "/orgs/{org_id}/prices/{price_id}/snapshot", responses={200: {"model": SnapshotOut}}
)
async def price_snapshot(request: Request) -> Response:
    # Hot path (every checkout creation): no dependency injection at all.
    params = request.path_params
    org = _internal(identity_of(request), params["org_id"])
    price_id = params["price_id"]
    include = request.query_params.get("include_unavailable", "false").lower() in ("true", "1")
    async with request.app.state.runtime.db.driver_connection() as conn:
        body = await service.price_snapshot(conn, org, price_id, include_unavailable=include)
    return json(body)


class _FastRoute(Route):
    """A plain Starlette route (no FastAPI dependency solving, no per-request exit
    stacks: a sizeable share of these hot reads' cost) that still records its template
    for the duration metric."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self
        await super().handle(scope, receive, send)


# The two hot reads (every pricing page, every checkout creation), served by plain
# Starlette routes placed before FastAPI's (app.py). The FastAPI routes above run the
# very same functions and remain what the OpenAPI documents.
FAST_ROUTES = [
    _FastRoute("/v1/products", list_products, methods=["GET"]),
    _FastRoute(
        "/internal/orgs/{org_id}/prices/{price_id}/snapshot", price_snapshot, methods=["GET"]
    ),
]


@internal_router.post("/orgs/{org_id}/coupons/evaluate", responses={200: {"model": EvaluationOut}})
async def evaluate_coupon(
    org_id: str, body: CouponEvaluateIn, db: ReadDb, identity: CurrentIdentity
) -> Response:
    org = _internal(identity, org_id)
    return json(await service.evaluate_coupon(db, org, body))


@internal_router.post("/orgs/{org_id}/coupons/reserve", responses={200: {"model": EvaluationOut}})
async def reserve_coupon(
    org_id: str, body: CouponReserveIn, session: Session, identity: CurrentIdentity
) -> Response:
    org = _internal(identity, org_id)
    return json(await service.reserve_coupon(session, org, body))


@internal_router.post("/orgs/{org_id}/coupons/release", responses={200: {"model": ReleaseOut}})
async def release_coupon(
    org_id: str, body: CouponReleaseIn, session: Session, identity: CurrentIdentity
) -> Response:
    org = _internal(identity, org_id)
    released = await service.release_coupon(session, org, body.checkout_id, body.coupon_id)
    return json({"released": released})


@internal_router.post("/demo/{org_id}", responses={200: {"model": DemoOut}})
async def seed_demo(org_id: str, session: Session, identity: CurrentIdentity) -> Response:
    require(identity, "service", "admin")
    return json(await demo.seed_demo(session, org_id))
