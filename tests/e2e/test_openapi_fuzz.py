"""Schemathesis against the gateway's /openapi.json: every check, every phase (examples,
coverage, fuzzing, stateful), bounded (tests/e2e/schemathesis.toml), 0 failures.

Every check is schemathesis' default; the config disables the one check the contract
deliberately differs from (`--checks all` on the command line would override it).

The merchant's API key drives the run; operator and portal operations get the admin and
a portal token (the config picks them by path). A failure prints schemathesis' report,
with a `curl` to reproduce each case.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from merchant import ADMIN_TOKEN, Merchant, new_merchant

pytestmark = pytest.mark.e2e

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# The run stays well under 3 minutes on two shared cores; this only stops a hang.
TIMEOUT_SECONDS = 300
# The organization's own limits (docs/api.md: configurable per organization), far above what
# one fuzzing worker sends: a 429 would end an example before its checks ran.
FUZZ_RATE_LIMITS = {"api_key": "1000/second", "session": "100000/minute"}


async def portal_token(merchant: Merchant) -> str:
    """A portal token of a customer with a paid subscription."""
    price = await merchant.price(1500)
    checkout = await merchant.checkout(price["id"])
    r = await merchant.confirm(checkout["id"], await merchant.card())
    assert r.status_code == 200, r.text
    done = await merchant.wait_status(checkout["id"], "complete")
    r = await merchant.post("/v1/portal-sessions", {"customer_id": done["customer"]["id"]})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


@pytest.mark.timeout(TIMEOUT_SECONDS + 60)
async def test_15_3_openapi_fuzzing_finds_no_failure(
    gateway_url: str, gateway: httpx.AsyncClient, sim: httpx.AsyncClient, tmp_path: Path
) -> None:
    merchant = await new_merchant(gateway, sim, rate_limits=FUZZ_RATE_LIMITS)
    env = {
        **os.environ,
        "BOS_FUZZ_API_KEY": merchant.api_key,
        "BOS_FUZZ_ADMIN_TOKEN": ADMIN_TOKEN,
        "BOS_FUZZ_PORTAL_TOKEN": await portal_token(merchant),
        "NO_COLOR": "1",
    }
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "run",
        f"{gateway_url}/openapi.json",
    ]
    result = subprocess.run(  # noqa: ASYNC221 - the stack runs in other processes
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_SECONDS
    )
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-2000:]
