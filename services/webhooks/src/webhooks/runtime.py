"""The webhooks service's runtime: the common one plus the account directory and the
Stripe client (for reconciliation)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import stripe
from fastapi import Depends, Request
from sqlalchemy.util import greenlet_spawn

from bos_common.app import ServiceRuntime
from bos_common.internal import InternalClient
from bos_common.stripe_api import stripe_client
from webhooks import models
from webhooks.accounts import AccountDirectory
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

    @asynccontextmanager
    async def driver_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection of the service's pool at the driver level, for the intake's one
        statement (repository.record_event): SQLAlchemy's per-statement machinery
        (Connection, compiled cache, cursor adaptation) measured at about half the
        intake's database CPU. Without a transaction: that statement is atomic alone."""
        fairy = await self.db.engine.raw_connection()
        try:
            yield fairy.driver_connection
        except asyncpg.PostgresError:
            # The server refused the statement; the connection itself is fine.
            await greenlet_spawn(fairy.close)
            raise
        except BaseException:
            # Broken, or interrupted mid-statement (cancelled): never hand it out again.
            await greenlet_spawn(fairy.invalidate)
            raise
        else:
            await greenlet_spawn(fairy.close)

    async def stop(self) -> None:
        await super().stop()
        await self.accounts.close()


async def _runtime(request: Request) -> WebhooksRuntime:
    runtime: WebhooksRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[WebhooksRuntime, Depends(_runtime)]
