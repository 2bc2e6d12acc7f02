"""Plan 18.1/18.2 against the running stack: the checkout funnel as the checkout service
exports it to Prometheus (what the conversion recording rule and the payment-failure
spike alert read; the rules themselves are unit-tested with promtool in tests/deploy).
Counters are of committed transitions: a decline is counted once, though Stripe's
`payment_intent.payment_failed` webhook reports it a second time."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).parent))
from merchant import Merchant  # noqa: E402

from bos_common.testing import eventually  # noqa: E402

pytestmark = pytest.mark.e2e


async def funnel() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every bos_checkout_* sample of the checkout service, by (name, labels)."""
    async with httpx.AsyncClient(base_url=os.environ["CHECKOUT_URL"]) as checkout:
        text = (await checkout.get("/metrics")).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("bos_checkout_") and sample.name.endswith("_total")
    }


CREATED = ("bos_checkout_sessions_created_total", (("paid", "true"),))
COMPLETED = ("bos_checkout_sessions_completed_total", ())
DECLINED = (
    "bos_checkout_payments_total",
    (("code", "card_declined"), ("kind", "checkout"), ("outcome", "failed")),
)
SUCCEEDED = (
    "bos_checkout_payments_total",
    (("code", ""), ("kind", "checkout"), ("outcome", "succeeded")),
)


async def test_18_1_and_18_2_the_funnel_counts_checkouts_and_payment_outcomes(
    merchant: Merchant,
) -> None:
    before = await funnel()
    price = await merchant.price(2900)
    first = await merchant.checkout(price["id"])
    second = await merchant.checkout(price["id"])

    declined = await merchant.confirm(first["id"], await merchant.card("declined"))
    assert declined.json()["status"] == "failed"
    paid = await merchant.confirm(second["id"], await merchant.card("visa"))
    assert paid.json()["status"] in ("processing", "complete")
    await merchant.wait_status(second["id"], "complete")

    def delta(after: dict, key: tuple) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    async def settled() -> dict | None:
        after = await funnel()
        return after if delta(after, COMPLETED) >= 1 and delta(after, SUCCEEDED) >= 1 else None

    after = await eventually(settled)
    assert delta(after, CREATED) == 2
    # The decline, once: the webhook that reports it again finds the payment failed already.
    assert delta(after, DECLINED) == 1
