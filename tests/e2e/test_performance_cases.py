"""Plan 15.1, 15.2 and 15.5 at the plan's own bounds, through the whole stack. The
benchmarks hold the issues' far tighter targets (bench/README.md maps section 15 to
them); 15.3 is test_concurrent_checkouts.py, 15.4 services/catalog/tests, 15.6
services/tokens/tests/test_cleanup.py."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench/, for its generator
from merchant import Merchant  # noqa: E402

from bench.webhook_load import run_load  # noqa: E402

pytestmark = pytest.mark.e2e


async def test_15_1_checkout_creation_answers_within_200_ms(merchant: Merchant) -> None:
    price = await merchant.price(2900)
    await merchant.checkout(price["id"])  # the first one fetches the price snapshot
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        await merchant.checkout(price["id"])
        timings.append(time.perf_counter() - started)
    timings.sort()
    assert timings[18] < 0.2, timings  # p95 of 20


async def test_15_2_a_card_payment_completes_within_3_seconds(merchant: Merchant) -> None:
    price = await merchant.price(4900)
    for _ in range(3):
        started = time.perf_counter()
        checkout = await merchant.checkout(price["id"])
        confirmed = await merchant.confirm(checkout["id"], await merchant.card())
        assert confirmed.status_code == 200, confirmed.text
        await merchant.wait_status(checkout["id"], "complete", timeout=10)
        assert time.perf_counter() - started < 3


async def test_15_5_twenty_webhooks_a_second_all_processed_within_500_ms(
    gateway_url: str,
) -> None:
    result = await run_load(
        20,
        5,
        gateway=gateway_url,
        secret=os.environ.get("STRIPE_WEBHOOK_SECRETS", "whsec_bos_dev_simulator").split(",")[0],
        dsn=os.environ["DATABASE_URL"],
        drain_timeout=30,
    )
    assert result["statuses"] == {"200": 100}
    assert result["stored"] == result["consumed_by_checkout"] == 100  # all processed
    assert result["outbox_unpublished_after"] == 0
    assert result["intake_ms"]["p99"] < 500
    assert result["delivery_to_consumer_commit_ms"]["p99"] < 500
    assert result["outbox_backlog_max"] <= 20  # no queue backup (1 s of events)
