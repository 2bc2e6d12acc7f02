"""Alerts reach a person, proven with real Prometheus and Alertmanager (scripts/obs.sh,
time compressed by the `ops_stack` fixture): an event in the stack -> the alert fires in
Prometheus on the repository's rules -> Alertmanager routes it by severity to the webhook
receiver (and the SMTP sink), with its labels and description. Just below the threshold,
nothing is delivered. The broker-down alert: test_obs_broker_outage."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
from pathlib import Path
from typing import Any

import aio_pika
import pytest
import yaml
from merchant import Merchant
from obs_infra import ROOT, OpsStack, service_urls

from bos_common.testing import eventually

pytestmark = pytest.mark.e2e

# Enough samples before counting that increase()'s extrapolation stays within rounding.
SETTLE_SECONDS = 15.0
# Evaluations (1 s) that must pass without a notification to call it "nothing delivered".
QUIET_SECONDS = 8.0


def alert_expression(name: str) -> str:
    for path in (ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == name:
                    return str(rule["expr"])
    raise AssertionError(f"no alert {name}")


async def value(ops: OpsStack, expr: str) -> float:
    result = await ops.query(expr)
    return float(result[0]["value"][1]) if result else 0.0


async def scraped(ops: OpsStack, service: str) -> None:
    async def up() -> bool:
        return await value(ops, f'up{{job="bos",service="{service}"}}') == 1

    assert await eventually(up, timeout=30, interval=0.5)


def alert_mails(subject_part: str) -> list[email.message.EmailMessage]:
    found = []
    for path in sorted((Path(os.environ["BOS_STATE_DIR"]) / "mail").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        if subject_part in str(message["Subject"]):
            found.append(message)
    return found


async def decline(merchant: Merchant, price_id: str) -> None:
    checkout = await merchant.checkout(price_id)
    r = await merchant.confirm(checkout["id"], await merchant.card("declined"))
    assert r.json()["status"] == "failed", r.text


async def test_ten_declines_fire_the_payment_failure_spike_to_the_team_nine_do_not(
    ops_stack: OpsStack, merchant: Merchant
) -> None:
    failures = re.sub(r"\s*>=\s*10\s*$", "", alert_expression("BosPaymentFailureSpike").strip())
    assert failures != alert_expression("BosPaymentFailureSpike").strip()
    await scraped(ops_stack, "checkout")
    await asyncio.sleep(SETTLE_SECONDS)
    price = await merchant.price(1900)
    before = int(await value(ops_stack, failures))
    assert before <= 8, f"{before} failures already counted in the window: cannot test 9"

    for _ in range(9 - before):
        await decline(merchant, price["id"])

    async def counted(n: int) -> bool:
        return await value(ops_stack, failures) == n

    assert await eventually(lambda: counted(9), timeout=20, interval=0.5)
    await asyncio.sleep(QUIET_SECONDS)
    assert await ops_stack.delivered("BosPaymentFailureSpike") == []
    assert await ops_stack.query('ALERTS{alertname="BosPaymentFailureSpike"}') == []

    await decline(merchant, price["id"])

    async def delivered() -> list[dict[str, Any]]:
        return await ops_stack.delivered("BosPaymentFailureSpike")

    [note] = await eventually(delivered, timeout=30, interval=0.5)
    assert note["receiver_path"] == "/team"  # severity warning
    assert note["labels"]["severity"] == "warning"
    assert note["annotations"]["summary"] == "10 payments failed in the last 5 minutes"
    assert note["annotations"]["description"].startswith("10 payments failed in 5 minutes.")

    async def mailed() -> list[email.message.EmailMessage]:
        return alert_mails("BosPaymentFailureSpike")

    [mail] = await eventually(mailed, timeout=30, interval=0.5)
    assert "team@bos.example" in str(mail["To"])


async def test_the_first_dead_lettered_message_reaches_the_team(ops_stack: OpsStack) -> None:
    """An unparseable message on one of catalog's queues is dead-lettered at once: the
    first one fires BosMessagesDeadLettered (its counter started at 0)."""
    catalog = service_urls()["catalog"]
    await scraped(ops_stack, "catalog")
    queues = await ops_stack.query(
        'bos_consumer_messages_total{service="catalog",outcome="dead_letter"}'
    )
    assert queues, "catalog's dead-letter counters are not initialised at 0"
    queue = sorted(q["metric"]["queue"] for q in queues)[0]
    assert await ops_stack.delivered("BosMessagesDeadLettered") == []

    connection = await aio_pika.connect(os.environ["AMQP_URL"])
    async with connection:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(b"not an envelope"), routing_key=queue
        )

    async def delivered() -> list[dict[str, Any]]:
        return [
            n
            for n in await ops_stack.delivered("BosMessagesDeadLettered")
            if n["labels"].get("queue") == queue
        ]

    [note] = await eventually(delivered, timeout=40, interval=0.5)
    assert note["receiver_path"] == "/team"
    assert note["labels"]["service"] == "catalog"
    assert note["labels"]["severity"] == "warning"
    assert f"Inspect {queue}.dlq" in note["annotations"]["description"]
    assert catalog  # the queue is catalog's own, read from its metrics
