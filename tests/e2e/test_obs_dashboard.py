"""The dashboard and the rules against the live stack: every BOS metric the rules read is
exported by a running process with the labels they match, and every dashboard panel that
reads only BOS metrics shows data in a real Prometheus scraping the stack (RabbitMQ's and
PostgreSQL's exporters are not part of the local stack)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import promql_parser
import pytest
import yaml
from merchant import Merchant
from obs_infra import ROOT, OpsStack, service_urls
from prometheus_client.parser import text_string_to_metric_families

from bos_common.testing import eventually

pytestmark = pytest.mark.e2e

RULES = ROOT / "deploy" / "prometheus" / "rules"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "bos-overview.json"
# Read by rules, exported by something other than BOS.
EXTERNAL = re.compile(r"^(up|pg_.*|rabbitmq_.*|process_start_time_seconds)$")


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    found: list[tuple[str, set[str]]] = []

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            labels = {m.name for m in node.matchers.matchers} - {"__name__"}
            found.append((str(node.name), labels))
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in sorted(RULES.glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


async def exported(gateway_url: str) -> dict[str, set[str]]:
    """Every sample name of every process of the stack, with the label names seen."""
    names: dict[str, set[str]] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for url in [gateway_url, *service_urls().values()]:
            text = (await client.get(f"{url}/metrics")).text
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    names.setdefault(sample.name, set()).update(sample.labels)
    return names


async def test_every_bos_metric_the_rules_read_is_exported_with_its_labels(
    gateway_url: str,
) -> None:
    names = await exported(gateway_url)
    recorded = {r["record"] for r in rules() if "record" in r}
    for rule in rules():
        for name, labels in selectors(rule["expr"]):
            if name in recorded or EXTERNAL.match(name):
                continue
            assert name in names, f"{rule.get('alert') or rule.get('record')}: {name} not exported"
            assert labels <= names[name], f"{name}: no label {labels - names[name]}"


async def test_every_bos_panel_of_the_dashboard_shows_data(
    ops_stack: OpsStack, merchant: Merchant
) -> None:
    """After one paid and one declined checkout seen by a fresh Prometheus (ratios over
    the hour need activity within its lifetime)."""

    async def checkout_scraped() -> bool:
        return bool(await ops_stack.query('up{job="bos",service="checkout"} == 1'))

    assert await eventually(checkout_scraped, timeout=30, interval=0.5)
    await asyncio.sleep(2)  # a sample before the activity, for increase()
    price = await merchant.price(1200)
    paid = await merchant.checkout(price["id"])
    r = await merchant.confirm(paid["id"], await merchant.card())
    assert r.status_code == 200, r.text
    declined = await merchant.checkout(price["id"])
    await merchant.confirm(declined["id"], await merchant.card("declined"))
    await merchant.wait_status(paid["id"], "complete")

    recorded = {r["record"]: r["expr"] for r in rules() if "record" in r}

    def external(name: str) -> bool:
        if name in recorded:
            return any(external(n) for n, _ in selectors(recorded[name]))
        return bool(EXTERNAL.match(name)) and name != "up"

    dashboard = json.loads(DASHBOARD.read_text())
    queries = [
        (panel["title"], target["expr"].replace('{service=~"$service"}', ""))
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    bos_only = [(t, q) for t, q in queries if not any(external(n) for n, _ in selectors(q))]
    assert len(bos_only) >= 10

    # Recordings of a 1 h window need two samples: a few evaluations after the start.
    missing: list[str] = []
    for _ in range(20):
        missing = [title for title, q in bos_only if not await ops_stack.query(q)]
        if not missing:
            return
        await asyncio.sleep(1)
    pytest.fail(f"panels without data: {missing}")
