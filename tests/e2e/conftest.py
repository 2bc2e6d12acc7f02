"""E2E tests talk to the stack scripts/test.sh started (black box, through the gateway)."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from merchant import Merchant, new_merchant  # noqa: E402
from obs_infra import OpsStack, start_ops_stack  # noqa: E402


@pytest.fixture(scope="session")
def gateway_url() -> str:
    url = os.environ.get("GATEWAY_URL")
    if not url:
        if os.environ.get("CI") or os.environ.get("BOS_TEST_STACK"):
            pytest.fail("GATEWAY_URL is not set: the e2e stack is missing")
        pytest.skip("no running stack (run `make test`)")
    return url


@pytest.fixture
async def gateway(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as client:
        yield client


@pytest.fixture
async def sim() -> AsyncIterator[httpx.AsyncClient]:
    base = os.environ.get("STRIPE_API_BASE")
    if not base:
        pytest.skip("no Stripe simulator (run `make test`)")
    key = os.environ.get("STRIPE_SECRET_KEY", "sk_test_bos_simulator")
    async with httpx.AsyncClient(
        base_url=base, timeout=10, headers={"Authorization": f"Bearer {key}"}
    ) as client:
        yield client


@pytest.fixture
async def merchant(gateway: httpx.AsyncClient, sim: httpx.AsyncClient) -> Merchant:
    return await new_merchant(gateway, sim)


@pytest.fixture(scope="session")
def ops_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsStack]:
    """Prometheus + Alertmanager + alert receiver (scripts/obs.sh) on the stack under test,
    time compressed (obs_infra); started once for the test_obs_* modules that ask."""
    if not os.environ.get("BOS_STATE_DIR"):
        pytest.skip("no local stack (run `make test`)")
    stack = start_ops_stack(tmp_path_factory.mktemp("obs"))
    yield stack
    stack.run("stop")
