"""The subscriptions service's runtime: the common one plus its clock, billing policy,
mailer and the client of checkout's internal API."""

from __future__ import annotations

from datetime import timedelta

from bos_common.app import ServiceRuntime
from bos_common.internal import InternalClient
from subscriptions import models
from subscriptions.billing import Policy
from subscriptions.clock import Clock
from subscriptions.settings import SubscriptionsSettings


class SubscriptionsRuntime(ServiceRuntime):
    settings: SubscriptionsSettings

    def __init__(self, settings: SubscriptionsSettings, *, clock: Clock | None = None) -> None:
        super().__init__(settings, metadata=models.metadata)
        self.clock = clock or Clock()
        self.policy = Policy(
            retry_days=tuple(settings.retry_days),
            grace_days=settings.dunning_grace_days,
            result_timeout=timedelta(seconds=settings.payment_result_timeout),
            reminder_days=settings.trial_reminder_days,
        )
        self.checkout: InternalClient | None = (
            InternalClient(settings.checkout_url, caller=self.name, secret=settings.internal_secret)
            if settings.checkout_url
            else None
        )

    async def stop(self) -> None:
        try:
            await super().stop()
        finally:
            if self.checkout is not None:
                await self.checkout.close()
