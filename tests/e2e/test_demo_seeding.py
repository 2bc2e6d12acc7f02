"""`make up`'s demo seeding (scripts/seed_demo.py) run again after the merchant changed the
demo through the API: it restores what the demo needs, says what it did, exits 0 and prints
a checkout URL that works, so `make up` never fails on a demo a merchant has changed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "scripts" / "seed_demo.py"
CHECKOUT_URL = re.compile(r"demo checkout\s+(\S+)")


def seed(state_dir: Path) -> subprocess.CompletedProcess[str]:
    """One run of the seed script as `make up` runs it, on the test stack."""
    if not os.environ.get("CATALOG_URL") or not os.environ.get("BOS_INTERNAL_SECRET"):
        pytest.skip("needs the stack's environment (run through scripts/test.sh)")
    env = {**os.environ, "BOS_STATE_DIR": str(state_dir)}
    return subprocess.run(
        [sys.executable, str(SEED)], env=env, capture_output=True, text=True, timeout=120
    )


def seeded(state_dir: Path) -> tuple[str, str]:
    """(API key, checkout URL) of a successful run."""
    run = seed(state_dir)
    assert run.returncode == 0, run.stdout + run.stderr
    found = CHECKOUT_URL.search(run.stdout)
    assert found, run.stdout
    return json.loads((state_dir / "demo.json").read_text())["api_key"], found.group(1)


def assert_checkout_works(gateway: httpx.Client, key: str, url: str, plan: str) -> None:
    """The printed URL is an open checkout of the demo plan, and its page loads."""
    checkout_id = re.search(r"/checkout/(cs_[A-Za-z0-9]+)", url)
    assert checkout_id, url
    r = gateway.get(
        f"/v1/checkout-sessions/{checkout_id.group(1)}",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "open" and r.json()["product"]["name"] == plan
    page = gateway.get(url.split("#")[0].replace(str(gateway.base_url).rstrip("/"), ""))
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]


def demo_catalog(gateway: httpx.Client, key: str) -> dict[str, dict[str, str]]:
    """The demo's products by plan key (`metadata.demo`), active ones only, with a price."""
    auth = {"Authorization": f"Bearer {key}"}
    products = gateway.get("/v1/products", params={"limit": 100}, headers=auth).json()["data"]
    out: dict[str, dict[str, str]] = {}
    for product in products:
        plan = product["metadata"].get("demo")
        if plan is None or not product["active"]:
            continue
        prices = gateway.get(
            "/v1/prices", params={"product_id": product["id"], "active": "true"}, headers=auth
        ).json()["data"]
        out[plan] = {"product_id": product["id"], "price_id": prices[0]["id"] if prices else ""}
    return out


def test_seeding_again_after_the_demo_was_changed_restores_it(tmp_path: Path) -> None:
    with httpx.Client(base_url=os.environ["GATEWAY_URL"], timeout=15) as gateway:
        key, url = seeded(tmp_path)
        assert_checkout_works(gateway, key, url, "Pro")
        auth = {"Authorization": f"Bearer {key}"}
        before = demo_catalog(gateway, key)
        assert set(before) == {"free-product", "basic-product", "pro-product", "enterprise-product"}

        # The merchant plays with the demo: deletes the checkout's price, archives a plan.
        r = gateway.delete(f"/v1/prices/{before['pro-product']['price_id']}", headers=auth)
        assert r.status_code == 200, r.text
        r = gateway.post(
            f"/v1/products/{before['basic-product']['product_id']}/archive", headers=auth
        )
        assert r.status_code == 200, r.text

        key_again, url_again = seeded(tmp_path)
        assert key_again == key  # the same organization
        assert_checkout_works(gateway, key, url_again, "Pro")
        after = demo_catalog(gateway, key)
        assert set(after) == set(before) and all(p["price_id"] for p in after.values())
        assert after["pro-product"]["price_id"] != before["pro-product"]["price_id"]

        # The checkout's product itself archived: a new Pro plan, and the run still succeeds.
        r = gateway.post(f"/v1/products/{after['pro-product']['product_id']}/archive", headers=auth)
        assert r.status_code == 200, r.text
        _, url_third = seeded(tmp_path)
        assert_checkout_works(gateway, key, url_third, "Pro")

        # Nothing changed since: a run creates nothing new.
        settled = demo_catalog(gateway, key)
        seeded(tmp_path)
        assert demo_catalog(gateway, key) == settled


def test_seeding_with_a_revoked_demo_key_starts_a_new_demo_organization(tmp_path: Path) -> None:
    with httpx.Client(base_url=os.environ["GATEWAY_URL"], timeout=15) as gateway:
        key, _ = seeded(tmp_path)
        keys = gateway.get("/v1/api-keys", headers={"Authorization": f"Bearer {key}"}).json()
        for api_key in keys["data"]:
            gateway.delete(
                f"/v1/api-keys/{api_key['id']}", headers={"Authorization": f"Bearer {key}"}
            )
        new_key, url = seeded(tmp_path)
        assert new_key != key
        assert_checkout_works(gateway, new_key, url, "Pro")
