"""E2E tests talk to the stack scripts/test.sh started (black box, through the gateway)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import httpx
import pytest


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
