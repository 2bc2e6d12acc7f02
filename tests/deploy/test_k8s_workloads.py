"""deploy/k8s's workloads as an operator applies them (issue 18): a budget and resources for
every workload, each pod's secret keys, the migration Job's place in the hook order,
scaling, network policies and the monitoring objects rendered from the local files."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploykit import (
    EXTERNAL_SECRETS,
    K8S,
    OVERLAYS,
    REPO,
    SERVICES,
    by_kind,
    containers_of,
    migrate_job_of,
    ok,
    render_with,
    rendered_docs,
    run,
    settings_env,
)

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}
# The custom resources' kinds whose operators make pods, with where their resources are.
OPERATED_KINDS = {"Cluster", "RabbitmqCluster"}


# ---------------------------------------------------------------------------- workloads
def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        present, value = expr["key"] in labels, labels.get(expr["key"])
        op = expr["operator"]
        if op == "In" and value not in expr["values"]:
            return False
        if op == "NotIn" and present and value in expr["values"]:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_has_a_budget_and_resources(kubectl: str, overlay: str) -> None:
    docs = rendered_docs(kubectl, overlay)
    pdbs = list(by_kind(docs, "PodDisruptionBudget").values())
    workloads = [d for d in docs if d["kind"] in WORKLOAD_KINDS]
    assert len(workloads) >= 7
    for work in workloads:
        where = f"{work['kind']}/{work['metadata']['name']}"
        labels = work["spec"]["template"]["metadata"]["labels"]
        assert any(_selects(p["spec"]["selector"], labels) for p in pdbs), f"{where}: no PDB"
        for c in work["spec"]["template"]["spec"]["containers"]:
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= c.get("resources", {}).get(kind, {}).keys(), where
    for cr in (d for d in docs if d["kind"] in OPERATED_KINDS):
        where = f"{cr['kind']}/{cr['metadata']['name']}"
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= cr["spec"]["resources"][kind].keys(), where
        if cr["kind"] == "Cluster":
            assert cr["spec"]["enablePDB"] is True  # the operator makes the budgets
        else:  # RabbitmqCluster pods carry app.kubernetes.io/name: <cluster name>
            pod = {"app.kubernetes.io/name": cr["metadata"]["name"]}
            assert any(_selects(p["spec"]["selector"], pod) for p in pdbs), where


def _secret_keys(container: dict[str, Any]) -> set[tuple[str, str]]:
    assert not any("secretRef" in src for src in container.get("envFrom", [])), (
        f"{container['name']} takes a whole Secret (envFrom): name the keys it uses"
    )
    keys = set()
    for env in container.get("env", []):
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert env["name"] == ref["key"], env
            keys.add((ref["name"], ref["key"]))
    return keys


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_pod_gets_a_secret_key_it_does_not_use(kubectl: str, overlay: str) -> None:
    docs = rendered_docs(kubectl, overlay)
    deployments = by_kind(docs, "Deployment")
    for name in SERVICES:
        [c] = containers_of(deployments[name])
        keys = {key for _, key in _secret_keys(c)}
        unused = keys - settings_env(name)
        assert not unused, f"{name} gets secret keys its settings never read: {unused}"
        assert keys, name
    # the migration Job: what bos_common.migrations reads, nothing else
    [c] = containers_of(migrate_job_of(docs))
    source = (REPO / "libs/common/src/bos_common/migrations.py").read_text()
    for secret, key in _secret_keys(c):
        assert secret == "bos-migrations" and f'"{key}"' in source, key  # a stable name
    for name, dep in deployments.items():
        if name not in SERVICES:
            for c in containers_of(dep):
                _secret_keys(c)  # no envFrom of a whole Secret anywhere


def test_the_secret_check_can_fail() -> None:
    with pytest.raises(AssertionError, match="whole Secret"):
        _secret_keys({"name": "x", "envFrom": [{"secretRef": {"name": "bos-secrets"}}]})


# ---------------------------------------------------------------------------- migrations
_PHASES = {"PreSync": 0, "Sync": 1, "PostSync": 2}


def _argo_order(doc: dict[str, Any]) -> tuple[int, int]:
    """(phase, wave) in which Argo CD applies an object: hooks in their phase, the rest in
    Sync; within a phase by sync-wave."""
    ann = doc["metadata"].get("annotations", {})
    phase = _PHASES[ann.get("argocd.argoproj.io/hook", "Sync")]
    return phase, int(ann.get("argocd.argoproj.io/sync-wave", "0"))


def _job_inputs(job: dict[str, Any]) -> set[tuple[str, str]]:
    spec = job["spec"]["template"]["spec"]
    inputs = set()
    for c in spec.get("initContainers", []) + spec["containers"]:
        for src in c.get("envFrom", []):
            for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                if ref in src:
                    inputs.add((kind, src[ref]["name"]))
        for env in c.get("env", []):
            for kind, ref in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                if ref in env.get("valueFrom", {}):
                    inputs.add((kind, env["valueFrom"][ref]["name"]))
    for volume in spec.get("volumes", []):
        if "configMap" in volume:
            inputs.add(("ConfigMap", volume["configMap"]["name"]))
        if "secret" in volume:
            inputs.add(("Secret", volume["secret"]["secretName"]))
    return inputs


def _check_migration_inputs(docs: list[dict[str, Any]]) -> None:
    job = migrate_job_of(docs)
    job_order = _argo_order(job)
    assert job_order[0] == _PHASES["PreSync"], "migrations run before the new pods (PreSync)"
    makers = {
        ("Secret", d["spec"]["target"]["name"]): d for d in docs if d["kind"] == "ExternalSecret"
    }
    inputs = _job_inputs(job)
    assert inputs, "the Job reads its database URL from somewhere"
    for kind, name in inputs:
        rendered = {(d["kind"], d["metadata"]["name"]): d for d in docs}
        source = rendered.get((kind, name)) or makers.get((kind, name))
        if source is None:
            assert kind == "Secret" and name in EXTERNAL_SECRETS, (
                f"{kind}/{name} is neither rendered nor created by the operator beforehand"
            )
            continue
        assert _argo_order(source) < job_order, (
            f"{kind}/{name} is applied at {_argo_order(source)}, after the Job at {job_order}"
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_migration_job_inputs_exist_before_it_runs(kubectl: str, overlay: str) -> None:
    _check_migration_inputs(rendered_docs(kubectl, overlay))


def test_the_migration_inputs_with_external_secrets(kubectl: str, tmp_path: Path) -> None:
    _check_migration_inputs(render_with(kubectl, tmp_path, "prod", "external-secrets"))


def test_the_hook_order_check_can_fail(kubectl: str) -> None:
    docs = [dict(d) for d in rendered_docs(kubectl, "dev")]
    job = migrate_job_of(docs)
    job["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
        {"configMapRef": {"name": next(n for n in by_kind(docs, "ConfigMap") if "bos-config" in n)}}
    ]
    with pytest.raises(AssertionError, match="after the Job"):
        _check_migration_inputs(docs)


def test_a_new_release_is_a_new_migration_job(kubectl: str, tmp_path: Path) -> None:
    """kubectl apply: a Job's template is immutable, so each release has its own Job, named
    from the overlay's app.kubernetes.io/version (what CI sets with the image digest)."""

    for shared in ("base", "components"):
        (tmp_path / shared).symlink_to(K8S / shared)
    overlay = tmp_path / "overlays" / "prod"
    shutil.copytree(K8S / "overlays" / "prod", overlay)
    text = (overlay / "kustomization.yaml").read_text()
    assert 'app.kubernetes.io/version: "0.1.0"' in text
    (overlay / "kustomization.yaml").write_text(text.replace('"0.1.0"', '"0.2.0"'))
    out = ok(run([kubectl, "kustomize", str(overlay)]))
    [job] = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "Job"]
    assert job["metadata"]["name"] == "migrate-0.2.0"
    assert migrate_job_of(rendered_docs(kubectl, "prod"))["metadata"]["name"] == "migrate-0.1.0"
    assert migrate_job_of(rendered_docs(kubectl, "dev"))["metadata"]["name"] == "migrate-dev"


# ---------------------------------------------------------------------------- scaling
def _consuming_services() -> set[str]:
    return {
        name
        for name in SERVICES
        if any(
            re.search(r"\.on_events?\(", p.read_text())
            for p in (REPO / "services" / name / "src").rglob("*.py")
        )
    }


def test_keda_scales_each_consuming_service_on_its_queues_and_cpu(kubectl: str) -> None:
    docs = rendered_docs(kubectl, "prod")
    scaled = by_kind(docs, "ScaledObject")
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    deployments = by_kind(docs, "Deployment")
    assert set(scaled) == _consuming_services()
    for name, so in scaled.items():
        assert so["spec"]["scaleTargetRef"]["name"] == name and name in deployments
        assert name not in hpas, f"{name}: an HPA and a ScaledObject would fight"
        triggers = {t["type"]: t for t in so["spec"]["triggers"]}
        assert triggers["cpu"]["metricType"] == "Utilization"
        rabbit = triggers["rabbitmq"]["metadata"]
        assert rabbit["mode"] == "QueueLength" and rabbit["useRegex"] == "true"
        queues = re.compile(rabbit["queueName"])
        assert queues.search(f"{name}.payments")
        for other in (f"{name}.payments.dlq", f"{name}.payments.retry.1000", "x.payments"):
            assert not queues.search(other), other
    for name in set(deployments) & set(SERVICES) - set(scaled):
        metric = hpas[name]["spec"]["metrics"][0]["resource"]["name"]
        assert metric == "cpu", name


def test_prod_gateway_must_spread_across_zones(kubectl: str) -> None:
    deployments = by_kind(rendered_docs(kubectl, "prod"), "Deployment")
    spread = deployments["gateway"]["spec"]["template"]["spec"]["topologySpreadConstraints"]
    zone = [c for c in spread if c["topologyKey"] == "topology.kubernetes.io/zone"]
    assert [c["whenUnsatisfiable"] for c in zone] == ["DoNotSchedule"]


def test_prod_pins_the_bos_image_by_digest(kubectl: str) -> None:
    for work in rendered_docs(kubectl, "prod"):
        if work["kind"] in WORKLOAD_KINDS | {"Job"}:
            for c in containers_of(work):
                if "/bos/" in c["image"]:
                    assert re.search(r"@sha256:[0-9a-f]{64}$", c["image"]), c["image"]


# ---------------------------------------------------------------------------- network
def _allows(
    policies: list[dict[str, Any]],
    pod: dict[str, str],
    port: int | str,
    *,
    namespace: str | None = None,
    peer: dict[str, str] | None = None,
) -> bool:
    """Whether some policy selecting `pod` admits ingress from `peer` (a pod of this
    namespace) or from any pod of `namespace` on `port`."""
    for policy in policies:
        spec = policy["spec"]
        if not _selects(spec["podSelector"], pod) or "Ingress" not in spec["policyTypes"]:
            continue
        for rule in spec.get("ingress", []):
            ports = [p["port"] for p in rule.get("ports", [])]
            if ports and port not in ports:
                continue
            for src in rule.get("from", [{}]):
                if namespace is not None and "namespaceSelector" in src:
                    if _selects(
                        src["namespaceSelector"], {"kubernetes.io/metadata.name": namespace}
                    ):
                        return True
                if peer is not None and "podSelector" in src and "namespaceSelector" not in src:
                    if _selects(src["podSelector"], peer):
                        return True
    return False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_allow_the_real_flows(
    kubectl: str, overlay: str
) -> None:
    docs = rendered_docs(kubectl, overlay)
    policies = list(by_kind(docs, "NetworkPolicy").values())
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and "ingress" not in p["spec"]
        and "egress" not in p["spec"]
    ]
    assert deny and set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    deployments = by_kind(docs, "Deployment")
    pod = {n: d["spec"]["template"]["metadata"]["labels"] for n, d in deployments.items()}
    # ingress controller -> gateway, and to nothing else
    for name, labels in pod.items():
        allowed = _allows(policies, labels, "http", namespace="ingress-nginx")
        assert allowed == (name == "gateway"), name
    # gateway -> every service; monitoring -> every metrics port
    for name in set(SERVICES) - {"gateway"}:
        assert _allows(policies, pod[name], "http", peer=pod["gateway"]), name
    for name in SERVICES:
        assert _allows(policies, pod[name], "http", namespace="monitoring"), name
    # the internal calls that exist, and not the others
    calls = {
        ("checkout", "catalog"),
        ("checkout", "tokens"),
        ("checkout", "subscriptions"),
        ("webhooks", "tokens"),
        ("webhooks", "checkout"),
        ("webhooks", "subscriptions"),
        ("subscriptions", "checkout"),
        ("tokens", "checkout"),
    }
    for caller in set(SERVICES) - {"gateway"}:
        for callee in set(SERVICES) - {"gateway", caller}:
            allowed = _allows(policies, pod[callee], "http", peer=pod[caller])
            assert allowed == ((caller, callee) in calls), f"{caller} -> {callee}"
    # RabbitMQ's built-in metrics endpoint
    brokers = [d for d in docs if d["kind"] == "RabbitmqCluster"]
    broker = (
        {"app.kubernetes.io/name": brokers[0]["metadata"]["name"]} if brokers else pod["rabbitmq"]
    )
    assert _allows(policies, broker, 15692, namespace="monitoring")
    assert _allows(policies, broker, 5672, peer=pod["checkout"])


# ---------------------------------------------------------------------------- monitoring
def test_prometheus_rule_and_dashboards_are_rendered_from_the_files() -> None:
    proc = run(
        [
            os.environ.get("PYTHON", str(REPO / ".venv/bin/python")),
            str(REPO / "scripts/render-prometheus-rule.py"),
            "--check",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    monitoring = K8S / "components" / "monitoring"
    rule = yaml.safe_load((monitoring / "prometheusrule.yaml").read_text())
    groups = [
        g
        for f in sorted((REPO / "deploy/prometheus/rules").glob("*.yml"))
        for g in yaml.safe_load(f.read_text())["groups"]
    ]
    assert rule["spec"]["groups"] == groups
    dashboards = yaml.safe_load((monitoring / "grafana-dashboards.yaml").read_text())
    assert dashboards["metadata"]["labels"] == {"grafana_dashboard": "1"}
    files = sorted((REPO / "deploy/grafana/dashboards").glob("*.json"))
    assert dashboards["data"] == {f.name: f.read_text() for f in files}


def test_pod_monitors_label_targets_as_the_rules_expect(kubectl: str) -> None:
    docs = rendered_docs(kubectl, "prod")
    monitors = by_kind(docs, "PodMonitor")
    deployments = by_kind(docs, "Deployment")
    bos = monitors["bos"]["spec"]
    for name in SERVICES:
        assert _selects(
            bos["selector"], deployments[name]["spec"]["template"]["metadata"]["labels"]
        )
    assert not _selects(
        bos["selector"],
        {"app.kubernetes.io/name": "migrate", "app.kubernetes.io/component": "migration"},
    )
    jobs = {
        r["replacement"]
        for m in monitors.values()
        for e in m["spec"]["podMetricsEndpoints"]
        for r in e.get("relabelings", [])
        if r.get("targetLabel") == "job"
    }
    assert {"bos", "rabbitmq-queues"} <= jobs  # what deploy/prometheus/rules select


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_sends_traces_to_the_collector(kubectl: str, overlay: str) -> None:
    docs = rendered_docs(kubectl, overlay)
    [config] = [c for n, c in by_kind(docs, "ConfigMap").items() if n.startswith("bos-config")]
    data = config["data"]
    assert data["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    assert data["OTEL_TRACES_SAMPLER"].startswith("parentbased_")
    collector = by_kind(docs, "Service")["otel-collector"]
    assert 4318 in {p["port"] for p in collector["spec"]["ports"]}
    [cc] = [
        c for n, c in by_kind(docs, "ConfigMap").items() if n.startswith("otel-collector-config")
    ]
    pipeline = yaml.safe_load(cc["data"]["config.yaml"])
    assert pipeline["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]
    assert "${env:OTEL_BACKEND_ENDPOINT}" in json.dumps(pipeline["exporters"])
