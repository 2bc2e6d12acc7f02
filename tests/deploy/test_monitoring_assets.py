"""deploy/prometheus and deploy/grafana: promtool checks and unit tests of the rules, the
alerts the plan requires, rules and dashboards reading only contract metrics or recorded
series, the scrape configurations and Grafana's provisioning."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from deploykit import (
    CHECKOUT_METRICS,
    CONSUMER_OUTCOMES,
    CONTRACT_METRICS,
    GRAFANA,
    MERCHANT_WEBHOOK_METRICS,
    OPERATIONS_METRICS,
    PROM,
    RULE_EXTERNAL_METRICS,
    SERVICES,
    TARGET_LABELS,
    load_yaml,
    ok,
    promql_names,
    run,
)


def _rule_files() -> list[Path]:
    files = sorted((PROM / "rules").glob("*.yml"))
    assert files
    return files


def _rules() -> list[dict[str, Any]]:
    return [r for f in _rule_files() for g in load_yaml(f)["groups"] for r in g["rules"]]


def _recorded() -> set[str]:
    return {r["record"] for r in _rules() if "record" in r}


def test_promtool_check_rules(promtool: str) -> None:
    out = ok(run([promtool, "check", "rules", *map(str, _rule_files())]))
    assert "SUCCESS" in out


def test_promtool_unit_tests(promtool: str) -> None:
    tests = sorted((PROM / "tests").glob("*.test.yml"))
    assert tests
    out = ok(run([promtool, "test", "rules", *map(str, tests)], cwd=PROM))
    assert "FAILED" not in out


def test_every_alert_has_a_firing_unit_test() -> None:
    alerts = {r["alert"] for r in _rules() if "alert" in r}
    fired: set[str] = set()
    for path in (PROM / "tests").glob("*.test.yml"):
        doc = load_yaml(path)
        for test in doc["tests"]:
            for case in test.get("alert_rule_test", []):
                if case.get("exp_alerts"):
                    fired.add(case["alertname"])
    assert alerts - fired == set(), f"alerts never shown to fire: {alerts - fired}"


def test_alerts_cover_the_required_conditions() -> None:
    rules = {r["alert"]: r for r in _rules() if "alert" in r}
    required = {
        "high 5xx ratio": ("http_requests_5xx", "BosHigh5xxRatio"),
        "p99 latency": ("p99", "BosHighLatencyP99"),
        "outbox backlog growing": ("bos_outbox_backlog", "BosOutboxBacklogGrowing"),
        "DLQ messages": ("dlq", "BosDeadLetterQueueNotEmpty"),
        "dead-lettered messages": ('outcome="dead_letter"', "BosMessagesDeadLettered"),
        "service down": ("up", "BosServiceDown"),
        "payment failure spike (plan 18.2)": (
            'bos_checkout_payments_total{outcome="failed"}',
            "BosPaymentFailureSpike",
        ),
    }
    for what, (needle, alert) in required.items():
        assert alert in rules, f"no alert for {what}"
        assert needle in rules[alert]["expr"], f"{alert} does not look at {needle}"
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert {"summary", "description"} <= rule["annotations"].keys(), name


def test_rules_read_only_contract_metrics() -> None:
    exported = CONTRACT_METRICS | CHECKOUT_METRICS | OPERATIONS_METRICS | MERCHANT_WEBHOOK_METRICS
    allowed = set(exported) | RULE_EXTERNAL_METRICS
    recorded = _recorded()
    for rule in _rules():
        for name, labels in promql_names(rule["expr"]):
            assert name in allowed | recorded, (
                f"{rule.get('record') or rule.get('alert')}: unknown metric {name}"
            )
            if name in exported:
                extra = set(labels) - exported[name] - TARGET_LABELS
                assert not extra, f"{name} has no label {extra}"
    outcomes = set()
    for rule in _rules():
        if "bos_consumer_messages_total" in rule["expr"]:
            outcomes |= set(re.findall(r'outcome="(\w+)"', rule["expr"]))
    assert outcomes <= CONSUMER_OUTCOMES


def test_scrape_configs(promtool: str, tmp_path: Path) -> None:
    # Check the compose config together with the rules it loads.
    cfg = load_yaml(PROM / "prometheus.yml")
    cfg["rule_files"] = [str(f) for f in _rule_files()]
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(cfg))
    ok(run([promtool, "check", "config", str(checked)]))
    bos = next(j for j in cfg["scrape_configs"] if j["job_name"] == "bos")
    targets = {g["labels"]["service"]: g["targets"] for g in bos["static_configs"]}
    assert targets == {name: [f"{name}:{port}"] for name, port in SERVICES.items()}
    for path in (PROM / "prometheus.yml", PROM / "prometheus-k8s.yml"):
        jobs = {j["job_name"] for j in load_yaml(path)["scrape_configs"]}
        assert {"bos", "rabbitmq-queues"} <= jobs, path  # the rules select job="bos"


def test_k8s_scrape_config_with_promtool(promtool: str, tmp_path: Path) -> None:
    proc = run([promtool, "check", "config", str(PROM / "prometheus-k8s.yml")])
    if "field kubernetes_sd_configs not found" not in proc.stdout + proc.stderr:
        ok(proc)
        return
    # Debian builds Prometheus without Kubernetes service discovery. Check everything else
    # (relabelling, regexes, params) with promtool on a copy whose discovery is static, and
    # the discovery blocks themselves here.
    cfg = load_yaml(PROM / "prometheus-k8s.yml")
    for job in cfg["scrape_configs"]:
        for sd in job.pop("kubernetes_sd_configs", []):
            assert sd["role"] in {"pod", "service", "endpoints", "endpointslice", "node", "ingress"}
            assert set(sd) <= {
                "role",
                "namespaces",
                "selectors",
                "attach_metadata",
                "api_server",
                "kubeconfig_file",
            }, sd
            assert set(sd.get("namespaces", {})) <= {"names", "own_namespace"}
            job["static_configs"] = [{"targets": ["placeholder:1"]}]
    cfg["rule_files"] = [str(f) for f in _rule_files()]
    checked = tmp_path / "prometheus-k8s.yml"
    checked.write_text(yaml.safe_dump(cfg))
    ok(run([promtool, "check", "config", str(checked)]))


# ---------------------------------------------------------------------------- Grafana
def _dashboards() -> list[Path]:
    files = sorted((GRAFANA / "dashboards").glob("*.json"))
    assert files
    return files


def _panels(dash: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dash["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _grafana_to_promql(expr: str) -> str:
    expr = re.sub(r"\$__(rate_interval|interval|range)", "5m", expr)
    return re.sub(
        r"\$\{?\w+(?::\w+)?\}?", "x", expr
    )  # template variables (only inside strings here)


def test_dashboard_json_is_well_formed() -> None:
    ds = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    uids = {d["uid"] for d in ds if d["type"] == "prometheus"}
    for path in _dashboards():
        dash = json.loads(path.read_text())
        assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 36
        ids = [p["id"] for p in _panels(dash)]
        assert len(ids) == len(set(ids)), "panel ids must be unique"
        cells: set[tuple[int, int]] = set()
        for p in _panels(dash):
            g = p["gridPos"]
            assert g["x"] + g["w"] <= 24, p["title"]
            mine = {
                (x, y)
                for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])
            }
            assert not cells & mine, f"panel {p['title']!r} overlaps another"
            cells |= mine
            if p["type"] == "row":
                continue
            assert p["datasource"]["uid"] in uids, f"{p['title']}: datasource is not provisioned"
            assert p["targets"], p["title"]
            for t in p["targets"]:
                assert t["datasource"]["uid"] in uids and t["expr"].strip()


def test_dashboard_queries_use_only_known_metrics() -> None:
    known = set(CONTRACT_METRICS) | _recorded()
    for path in _dashboards():
        dash = json.loads(path.read_text())
        exprs = [(p["title"], t["expr"]) for p in _panels(dash) for t in p.get("targets", [])]
        for var in dash.get("templating", {}).get("list", []):
            if var["type"] == "query":
                q = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
                m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", q.strip())
                assert m, f"variable {var['name']}: unsupported query {q}"
                exprs.append((f"${var['name']}", m.group(1)))
        for title, expr in exprs:
            names = promql_names(_grafana_to_promql(expr))
            assert names, f"{title}: no metric in {expr}"
            for name, _ in names:
                assert name in known, (
                    f"{path.name} / {title}: {name} is neither a contract metric nor recorded"
                )


def test_dashboard_shows_the_required_views() -> None:
    dash = json.loads((GRAFANA / "dashboards" / "bos-overview.json").read_text())
    used = {
        name
        for p in _panels(dash)
        for t in p.get("targets", [])
        for name, _ in promql_names(_grafana_to_promql(t["expr"]))
    }
    required = {
        "request rate": "service:http_requests:rate5m",
        "error ratio": "service:http_requests_5xx:ratio_rate5m",
        "p50 by route": "service_route:http_request_duration_seconds:p50_5m",
        "p95 by route": "service_route:http_request_duration_seconds:p95_5m",
        "p99 by route": "service_route:http_request_duration_seconds:p99_5m",
        "outbox backlog": "service:outbox_backlog:max",
        "consumer outcomes": "service_queue_outcome:consumer_messages:rate5m",
        "DLQ depth": "queue:rabbitmq_dlq_messages:sum",
        "dependency health": "service_dependency:up:min",
        "payment success rate": "checkout:payment_success:ratio_1h",
        "funnel steps": "step:checkout_funnel:increase1h",
        "queue depth": "queue:rabbitmq_messages_ready:max",
        "queue consumers": "queue:rabbitmq_consumers:max",
        "consumer rate (lag)": "service_queue:consumer_messages:rate5m",
    }
    missing = {view for view, metric in required.items() if metric not in used}
    assert not missing, f"dashboard lacks {missing}"


def test_grafana_provisioning_matches_compose(compose: dict[str, Any]) -> None:
    providers = load_yaml(GRAFANA / "provisioning" / "dashboards" / "bos.yml")["providers"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in compose["services"]["grafana"]["volumes"]}
    for provider in providers:
        path = provider["options"]["path"]
        assert mounts.get(path) == "./deploy/grafana/dashboards", (
            f"{path} is not mounted from the repo"
        )
    ds = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    assert "PROMETHEUS_URL" in ds[0]["url"]
    assert (
        compose["services"]["grafana"]["environment"]["PROMETHEUS_URL"] == "http://prometheus:9090"
    )
