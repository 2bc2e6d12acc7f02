"""Plan 18 against the running stack.

18.1/18.2: the checkout funnel as the checkout service exports it to Prometheus (what the
conversion recording rule and the payment-failure spike alert read; the rules themselves
are unit-tested with promtool in tests/deploy). Counters are of committed transitions: a
decline is counted once, though Stripe's `payment_intent.payment_failed` webhook reports
it a second time.
18.3/18.4: the audit trail and the decline's debug line, read from checkout's log as an
operator would (the stack's log files: needs a local stack, BOS_STATE_DIR)."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).parent))
from merchant import Merchant  # noqa: E402
from replicas import log_files, replica_urls  # noqa: E402

from bos_common.testing import eventually  # noqa: E402

pytestmark = pytest.mark.e2e


async def funnel() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every bos_checkout_* sample of the checkout service, by (name, labels): the sum over
    its processes (each counts what it did)."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    async with httpx.AsyncClient() as http:
        for url in replica_urls("checkout"):
            text = (await http.get(f"{url}/metrics")).text
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.name.startswith("bos_checkout_") and sample.name.endswith("_total"):
                        key = (sample.name, tuple(sorted(sample.labels.items())))
                        found[key] = found.get(key, 0.0) + sample.value
    return found


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


def log_lines(service: str) -> list[dict]:
    state = os.environ.get("BOS_STATE_DIR")
    if not state:
        pytest.skip("the stack's logs are not local (no BOS_STATE_DIR)")
    lines = []
    for path in log_files(state, service):
        for raw in path.read_text().splitlines():
            if raw.startswith("{"):
                lines.append(json.loads(raw))
    return lines


async def test_18_3_and_18_4_every_checkout_action_is_in_the_audit_trail_with_its_actor(
    merchant: Merchant,
) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    price = await merchant.price(2900)
    paid = await merchant.checkout(price["id"])
    declined = await merchant.confirm(paid["id"], await merchant.card("declined"))
    accepted = await merchant.confirm(paid["id"], await merchant.card("visa"))
    await merchant.wait_status(paid["id"], "complete")
    dropped = await merchant.checkout(price["id"])
    canceled = await merchant.post(f"/v1/checkout-sessions/{dropped['id']}/cancel")
    assert canceled.status_code == 200, canceled.text

    wanted = [
        (paid["id"], "checkout.created"),
        (paid["id"], "checkout.confirmed"),  # failed
        (paid["id"], "payment.failed"),
        (paid["id"], "checkout.confirmed"),  # processing or complete
        (paid["id"], "payment.succeeded"),
        (paid["id"], "checkout.completed"),
        (dropped["id"], "checkout.created"),
        (dropped["id"], "checkout.canceled"),
    ]

    def trail() -> list[dict] | None:
        lines = [
            line
            for line in log_lines("checkout")
            if line.get("audit") and line.get("checkout_id") in (paid["id"], dropped["id"])
        ]
        got = sorted((line["checkout_id"], line["event"]) for line in lines)
        return lines if got == sorted(wanted) else None

    lines = await eventually(lambda: _async(trail()))
    by_action = {}
    for line in lines:
        by_action.setdefault((line["checkout_id"], line["event"]), []).append(line)
        stamp = datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
        assert started <= stamp <= datetime.now(UTC), line  # timestamps accurate
        assert line["org_id"] == merchant.org_id and line["service"] == "checkout"

    created = by_action[(paid["id"], "checkout.created")][0]
    assert created["actor_type"] == "api_key" and created["actor_id"]  # who
    assert created["request_id"]  # and which request
    failed, succeeded = sorted(
        by_action[(paid["id"], "checkout.confirmed")], key=lambda line: line["timestamp"]
    )
    assert (failed["outcome"], failed["code"]) == ("failed", "card_declined")
    assert failed["request_id"] == declined.headers["x-request-id"]
    assert succeeded["outcome"] in ("processing", "complete")
    assert succeeded["request_id"] == accepted.headers["x-request-id"]
    assert by_action[(paid["id"], "payment.failed")][0]["actor_type"] == "stripe"
    completed = by_action[(paid["id"], "checkout.completed")][0]
    assert completed["subscription_id"]
    # Decided by a consumer two events later, yet in the trace of the confirm that paid.
    assert completed["trace_id"] == succeeded["trace_id"]
    assert by_action[(dropped["id"], "checkout.canceled")][0]["actor_type"] == "api_key"

    # 18.4: the decline's details, under the request id the client got.
    [debug] = [
        line
        for line in log_lines("checkout")
        if line.get("event") == "payment declined by Stripe"
        and line.get("checkout_id") == paid["id"]
    ]
    assert debug["level"] == "warning"
    assert debug["request_id"] == declined.headers["x-request-id"]
    assert debug["stripe_error"]["code"] == "card_declined"
    assert debug["stripe_request_id"] and debug["payment_id"]


async def _async(value: object) -> object:
    return value


async def test_18_3_subscription_actions_are_in_the_audit_trail_too(merchant: Merchant) -> None:
    price = await merchant.price(0)
    checkout = await merchant.checkout(price["id"])
    r = await merchant.post(f"/v1/checkout-sessions/{checkout['id']}/confirm-free")
    assert r.status_code == 200, r.text
    done = await merchant.wait_status(checkout["id"], "complete")
    subscription = done["subscription_id"]
    canceled = await merchant.post(
        f"/v1/subscriptions/{subscription}/cancel", {"at_period_end": True}
    )
    assert canceled.status_code == 200, canceled.text

    def trail() -> list[dict]:
        return [
            line
            for line in log_lines("subscriptions")
            if line.get("audit") and line.get("subscription_id") == subscription
        ]

    [line] = await eventually(lambda: _async(trail()))
    assert line["event"] == "subscription.canceled"
    answered = canceled.json()  # the line says what the merchant was told
    assert (line["status"], line["cancel_at_period_end"]) == (
        answered["status"],
        answered["cancel_at_period_end"],
    )
    assert line["actor_type"] == "api_key" and line["org_id"] == merchant.org_id
    assert line["request_id"] == canceled.headers["x-request-id"]
    confirmed = [
        entry
        for entry in log_lines("checkout")
        if entry.get("event") == "checkout.confirmed" and entry.get("checkout_id") == checkout["id"]
    ]
    assert [entry["outcome"] for entry in confirmed] in (["processing"], ["complete"])
