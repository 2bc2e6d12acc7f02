"""Routes of the subscriptions service (thin: parse, call the domain, shape the response),
one module per audience: `public` (API keys), `portal`, `internal`.

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
- `POST /internal/clock {now? | advance_seconds? | reset?}` and `POST /internal/scheduler/run`
  exist only with `ALLOW_CLOCK_CONTROL=true` (test stacks).
"""

from fastapi import APIRouter

from subscriptions.api import internal, portal, public

# The routes themselves (not included routers), in this order, as one router serves them.
router = APIRouter()
router.routes.extend([*public.router.routes, *portal.router.routes, *internal.router.routes])
