"""The webhooks service's runtime: the common one plus the account directory, intake's
event writer, the Stripe client (for reconciliation) and merchant webhook delivery."""

from __future__ import annotations

from typing import Annotated

import stripe
from fastapi import Depends, Request

from bos_common.app import ServiceRuntime
from bos_common.internal import InternalClient
from bos_common.stripe_api import stripe_client
from webhooks import models
from webhooks.accounts import AccountDirectory
from webhooks.endpoints.worker import MerchantDelivery
from webhooks.event_recorder import EventRecorder
from webhooks.settings import WebhooksSettings


class WebhooksRuntime(ServiceRuntime):
    settings: WebhooksSettings

    def __init__(self, settings: WebhooksSettings) -> None:
        super().__init__(settings, metadata=models.metadata)
        self.accounts = AccountDirectory(
            InternalClient(settings.tokens_url, caller="webhooks", secret=settings.internal_secret),
            settings.stripe_platform_account_id,
        )
        self.stripe: stripe.StripeClient = stripe_client(
            settings.stripe_secret_key, settings.stripe_api_base
        )
        # Intake's writer: webhooks that arrive together are recorded by one statement.
        self.recorder = EventRecorder(self.db)
        # When reconciliation's last complete pass over each account began (None: the
        # platform's own events), in Unix seconds.
        self.reconciled_at: dict[str | None, int] = {}
        # Webhooks to merchants: the delivery worker (woken by the consumer).
        self.merchant = MerchantDelivery(settings, self.db)

    async def stop(self) -> None:
        await self.recorder.close()  # what is queued is written before the pool closes
        await super().stop()
        await self.accounts.close()
        await self.merchant.close()


async def _runtime(request: Request) -> WebhooksRuntime:
    runtime: WebhooksRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[WebhooksRuntime, Depends(_runtime)]
