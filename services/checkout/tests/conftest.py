"""A checkout runtime on the test infrastructure (real Postgres and RabbitMQ), one per
test module, for the integration tests of its consumers and repository."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bos_common.testing import Infra, migrate
from checkout.app import build_runtime
from checkout.runtime import CheckoutRuntime
from checkout.settings import CheckoutSettings


@pytest.fixture(scope="module")
async def runtime(infra: Infra) -> AsyncIterator[CheckoutRuntime]:
    await migrate(infra.database_url, "checkout")
    unused = "http://127.0.0.1:9"  # these tests never reach catalog, tokens or Stripe
    rt = build_runtime(
        CheckoutSettings(
            **infra.env(),
            STRIPE_SECRET_KEY="sk_test_x",
            STRIPE_API_BASE=unused,
            CATALOG_URL=unused,
            TOKENS_URL=unused,
            SUBSCRIPTIONS_URL=unused,
        )
    )
    await rt.start()
    await asyncio.wait_for(rt.bus.wait_connected(), 30)
    yield rt
    await rt.stop()
