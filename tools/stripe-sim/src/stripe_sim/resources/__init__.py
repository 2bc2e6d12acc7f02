"""One module per Stripe resource group; each exports ``ROUTES``."""

from __future__ import annotations

from . import (
    balance,
    charges,
    connect,
    customers,
    events,
    payment_intents,
    payment_methods,
    refunds,
    setup_intents,
)
from .common import Route

ROUTES: list[Route] = [
    *customers.ROUTES,
    *payment_methods.ROUTES,
    *setup_intents.ROUTES,
    *payment_intents.ROUTES,
    *charges.ROUTES,
    *refunds.ROUTES,
    *connect.ROUTES,
    *balance.ROUTES,
    *events.ROUTES,
]
