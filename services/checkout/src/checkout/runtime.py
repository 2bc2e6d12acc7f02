"""The checkout service's runtime: the common one plus Stripe and the internal clients."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from datetime import timedelta
from typing import Annotated

import stripe
from fastapi import Depends, Request

from bos_common.app import ServiceRuntime
from bos_common.bus import ConsumerSpec
from bos_common.internal import InternalClient
from bos_common.leases import LeaseRenewer
from bos_common.stripe_api import stripe_client
from checkout import models, recovery_repository
from checkout.clients import CatalogClient, OrganizationsClient, SubscriptionsClient
from checkout.completion import CompletionWaiter
from checkout.settings import CheckoutSettings
from checkout.snapshots import EVENT_TYPES, SnapshotCache


class CheckoutRuntime(ServiceRuntime):
    settings: CheckoutSettings

    def __init__(self, settings: CheckoutSettings) -> None:
        super().__init__(settings, metadata=models.metadata)
        secret = settings.internal_secret
        self._internal = [
            InternalClient(settings.catalog_url, caller="checkout", secret=secret),
            InternalClient(settings.tokens_url, caller="checkout", secret=secret),
            InternalClient(settings.subscriptions_url, caller="checkout", secret=secret),
        ]
        self.catalog = CatalogClient(self._internal[0])
        self.organizations = OrganizationsClient(self._internal[1])
        self.subscriptions = SubscriptionsClient(self._internal[2])
        self.snapshots = SnapshotCache(
            self.catalog.price_snapshot,
            ttl=settings.snapshot_cache_seconds,
            connected=lambda: self.bus.is_connected and settings.snapshot_cache_seconds > 0,
        )
        # Every replica hears every catalog change (its own exclusive queue).
        self.consumers.append(
            ConsumerSpec(
                queue=f"checkout.snapshots.{socket.gethostname()}.{os.getpid()}."
                f"{secrets.token_hex(4)}",
                routing_keys=EVENT_TYPES,
                handler=self.snapshots.on_event,
                prefetch=256,
                exclusive=True,
            )
        )
        self.bus.on_connected(self.snapshots.on_connected)
        self.completions = CompletionWaiter(self.db)
        # The pending payments this process is confirming (checkout.recovery).
        self.payment_leases: LeaseRenewer[str] = LeaseRenewer(
            "payments",
            self._renew_payment_leases,
            lease=timedelta(seconds=settings.payment_lease_seconds),
        )
        # The SDK logs every request and response at info (four lines a paid checkout,
        # formatted and written on the hot path); our own spans and errors say what matters.
        logging.getLogger("stripe").setLevel(logging.WARNING)
        self.stripe: stripe.StripeClient = stripe_client(
            settings.stripe_secret_key, settings.stripe_api_base
        )

    async def _renew_payment_leases(self, payment_ids: list[str]) -> None:
        async with self.db.driver_connection() as conn:
            await recovery_repository.renew_payment_leases(conn, payment_ids)

    async def stop(self) -> None:
        await self.completions.close()
        await super().stop()
        for client in self._internal:
            await client.close()


async def _runtime(request: Request) -> CheckoutRuntime:
    runtime: CheckoutRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[CheckoutRuntime, Depends(_runtime)]
