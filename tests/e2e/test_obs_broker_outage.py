"""A broker restart is not an outage (bos_common.health): with RabbitMQ stopped for 30 s
during traffic, every /readyz stays 200, checkouts are created and confirmed, the
dependency gauges and /healthz/details say the broker is down; once it is back, every
checkout confirmed meanwhile completes (the outbox kept the events). The broker-down alert
reaches on-call through real Prometheus and Alertmanager (ops_stack), and resolves."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from merchant import Merchant, unique
from obs_infra import OpsStack, rabbitmq, sample, service_urls, start_services, stop_service

from bos_common.testing import eventually

pytestmark = pytest.mark.e2e

OUTAGE_SECONDS = 30.0


async def all_ready(client: httpx.AsyncClient, urls: dict[str, str]) -> dict[str, int]:
    answers = await asyncio.gather(*(client.get(f"{u}/readyz") for u in urls.values()))
    return {name: r.status_code for name, r in zip(urls, answers, strict=True)}


async def test_broker_outage_keeps_every_process_ready_and_checkouts_complete_after(
    merchant: Merchant, gateway_url: str, ops_stack: OpsStack
) -> None:
    urls = {"gateway": gateway_url, **service_urls()}
    price = await merchant.price(1500)
    confirmed: list[str] = []
    async with httpx.AsyncClient(timeout=10) as client:
        assert await all_ready(client, urls) == dict.fromkeys(urls, 200)
        broker = await sample(client, urls["checkout"], "bos_dependency_up", dependency="rabbitmq")
        assert broker == 1

        await rabbitmq("stop")
        try:
            started = time.monotonic()
            rounds = 0
            while time.monotonic() - started < OUTAGE_SECONDS:
                assert await all_ready(client, urls) == dict.fromkeys(urls, 200)
                checkout = await merchant.checkout(price["id"])  # asserts 201
                r = await merchant.confirm(checkout["id"], await merchant.card(), key=unique("k"))
                assert r.status_code == 200, r.text
                confirmed.append(checkout["id"])
                rounds += 1
                await asyncio.sleep(1)
            assert rounds >= 3, f"only {rounds} rounds of traffic in {OUTAGE_SECONDS} s"

            # The outage is reported apart from readiness: gauges and the details endpoint.
            for name in ("checkout", "subscriptions", "gateway"):
                assert (
                    await sample(client, urls[name], "bos_dependency_up", dependency="rabbitmq")
                    == 0
                ), name
            details = (await client.get(f"{gateway_url}/healthz/details")).json()
            assert details["ready"] is True and details["status"] == "degraded"
            assert details["dependencies"]["rabbitmq"] == "down"
            assert details["dependencies"]["checkout"] == "ok"
            service_details = (await client.get(f"{urls['checkout']}/healthz/details")).json()
            assert service_details["dependencies"] == {"database": "ok", "rabbitmq": "down"}
            assert service_details["ready"] is True

            # ... and alerted on: BosRabbitMQDown pages on-call (critical).
            async def paged() -> list[dict[str, Any]]:
                return await ops_stack.delivered("BosRabbitMQDown")

            [note] = await eventually(paged, timeout=30, interval=0.5)
            assert note["receiver_path"] == "/oncall"
            assert note["labels"]["severity"] == "critical"
            assert note["annotations"]["summary"] == "RabbitMQ is down"
        finally:
            await rabbitmq("start")

        for checkout_id in confirmed:
            await merchant.wait_status(checkout_id, "complete", timeout=90)
        assert await all_ready(client, urls) == dict.fromkeys(urls, 200)

        async def broker_back() -> bool:
            values = [
                await sample(client, urls[n], "bos_dependency_up", dependency="rabbitmq")
                for n in ("checkout", "subscriptions", "gateway")
            ]
            return values == [1, 1, 1]

        assert await eventually(broker_back, timeout=30, interval=0.5)

        async def resolved() -> list[dict[str, Any]]:
            return await ops_stack.delivered("BosRabbitMQDown", status="resolved")

        assert await eventually(resolved, timeout=60, interval=0.5)


async def test_gateway_stays_ready_and_answers_503_only_for_a_dead_backends_routes(
    merchant: Merchant, gateway_url: str
) -> None:
    """The gateway's readiness does not follow its backends: with catalog's process
    stopped, the gateway is ready, catalog's routes answer 503 `upstream_unavailable`,
    checkout's keep working, and /healthz/details names catalog down."""
    urls = service_urls()
    price = await merchant.price(700)
    async with httpx.AsyncClient(timeout=10) as client:
        await stop_service("catalog")
        try:
            r = await client.get(f"{gateway_url}/readyz")
            assert r.status_code == 200 and r.json()["checks"] == {"auth_state": "ok"}
            products = await merchant.get("/v1/products")
            assert products.status_code == 503, products.text
            assert products.json()["error"]["code"] == "upstream_unavailable"
            other = await merchant.get("/v1/customers", limit=1)
            assert other.status_code == 200, other.text
            details = (await client.get(f"{gateway_url}/healthz/details")).json()
            assert details["ready"] is True and details["dependencies"]["catalog"] == "down"
            assert details["dependencies"]["checkout"] == "ok"
        finally:
            await start_services()

        async def catalog_ready() -> bool:
            try:
                return (await client.get(f"{urls['catalog']}/readyz")).status_code == 200
            except httpx.ConnectError:  # the process is still starting
                return False

        assert await eventually(catalog_ready, timeout=60, interval=0.2)
    assert (await merchant.get(f"/v1/prices/{price['id']}")).status_code == 200
