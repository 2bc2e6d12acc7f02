"""deploy/k8s as an operator applies it (issue 18): the custom resources against their CRDs'
schemas, what the prod Ingress exposes, a budget and resources for every workload, each pod's
secret keys, the migration Job's place in the hook order, scaling, network policies, the
monitoring objects rendered from the local rule files, and checkov.

Rendering and tools as in test_manifests.py (scripts/ensure-deploy-tools.sh installs them).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from gateway.routing import ROUTES


def _manifests() -> ModuleType:
    """test_manifests.py's helpers (the tests run with --import-mode=importlib, so a sibling
    module is loaded by path; the one pytest loaded is reused when it is there)."""
    path = Path(__file__).with_name("test_manifests.py")
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) == str(path):
            return module
    spec = importlib.util.spec_from_file_location("bos_deploy_test_manifests", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_m = _manifests()
EXTERNAL_SECRETS = _m.EXTERNAL_SECRETS
K8S, OVERLAYS, REPO, SERVICES = _m.K8S, _m.OVERLAYS, _m.REPO, _m.SERVICES
_by_kind, _containers, _docs, _migrate_job = _m._by_kind, _m._containers, _m._docs, _m._migrate_job
_missing, _ok, _run, _render, settings_env = (
    _m._missing,
    _m._ok,
    _m._run,
    _m._render,
    _m.settings_env,
)
kubectl = _m.kubectl  # the fixture

SCHEMAS = Path(__file__).resolve().parent / "crd-schemas"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}
# The custom resources' kinds whose operators make pods, with where their resources are.
OPERATED_KINDS = {"Cluster", "RabbitmqCluster"}
README = REPO / "deploy" / "README.md"
CHECKOV_VERSION = "3.3.30"


def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for path in SCHEMAS.glob("*.json"):
        doc = json.loads(path.read_text())
        out[(doc["apiVersion"], doc["kind"])] = doc["schema"]
    return out


def _custom(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        d
        for d in docs
        if "." in d["apiVersion"].split("/")[0]
        and "/" in d["apiVersion"]
        and not d["apiVersion"].split("/")[0].endswith(".k8s.io")
    ]


def _render_with(
    kubectl: str, tmp_path: Path, overlay: str, *components: str
) -> list[dict[str, Any]]:
    """An overlay plus components, as an operator's own kustomization would add them."""
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(K8S / "overlays" / overlay, tmp_path)],
                "components": [
                    os.path.relpath(K8S / "components" / c, tmp_path) for c in components
                ],
            }
        )
    )
    out = _ok(_run([kubectl, "kustomize", str(tmp_path)]))
    return [d for d in yaml.safe_load_all(out) if d]


# ---------------------------------------------------------------------------- CRD schemas
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_built_in_kinds_validate_for_kubernetes_1_33(kubectl: str, overlay: str) -> None:
    """test_manifests.py validates for 1.30; the newest version the issue names, too. The
    custom resources are left to their CRD schemas below (kubernetes-validate warns)."""
    validator = _m._which("kubernetes-validate")
    proc = _run(
        [validator, "--strict", "--quiet", "-k", "1.33", "-"], stdin=_render(kubectl, overlay)
    )
    _ok(proc)
    assert "ERROR" not in proc.stdout + proc.stderr


def _unknown_fields(obj: Any, schema: dict[str, Any], where: str) -> list[str]:
    """Fields the API server would prune (a typo, a field of another version)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found: list[str] = []
    if isinstance(obj, dict) and "properties" in schema:
        for key, value in obj.items():
            if key in schema["properties"]:
                found += _unknown_fields(value, schema["properties"][key], f"{where}.{key}")
            elif not schema.get("additionalProperties"):
                found.append(f"{where}.{key}")
    elif isinstance(obj, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key, value in obj.items():
            found += _unknown_fields(value, schema["additionalProperties"], f"{where}.{key}")
    elif isinstance(obj, list) and "items" in schema:
        for i, value in enumerate(obj):
            found += _unknown_fields(value, schema["items"], f"{where}[{i}]")
    return found


def _validate_custom_resources(docs: list[dict[str, Any]]) -> int:
    import jsonschema

    schemas = _crd_schemas()
    checked = 0
    for doc in _custom(docs):
        key = (doc["apiVersion"], doc["kind"])
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        assert key in schemas, f"{where}: no CRD schema vendored for {key} (crd-schemas/extract.py)"
        schema = schemas[key]
        body = {k: v for k, v in doc.items() if k != "metadata"}  # metadata: kubernetes-validate's
        jsonschema.Draft7Validator(schema).validate(doc)
        unknown = _unknown_fields(body, schema, where)
        assert not unknown, f"fields the API server would drop: {unknown}"
        checked += 1
    return checked


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_match_their_crd_schema(kubectl: str, overlay: str) -> None:
    checked = _validate_custom_resources(_docs(kubectl, overlay))
    if overlay == "prod":
        assert checked >= 10


def test_the_external_secrets_example_matches_its_crd_schema(kubectl: str, tmp_path: Path) -> None:
    docs = _render_with(kubectl, tmp_path, "prod", "external-secrets")
    secrets = _by_kind(docs, "ExternalSecret")
    assert _validate_custom_resources(docs) >= 14
    # it produces every Secret prod expects, with the keys the pods read
    for name, keys in EXTERNAL_SECRETS.items():
        data = secrets[name]["spec"]["data"]
        assert {d["secretKey"] for d in data} == keys, name
        assert secrets[name]["spec"]["target"]["name"] == name


def test_a_schema_catches_a_wrong_field() -> None:
    """The check can fail: a misspelt field and a wrong type are both caught."""
    import jsonschema

    schema = _crd_schemas()[("keda.sh/v1alpha1", "ScaledObject")]
    bad = {"spec": {"scaleTargetRef": {"name": "x"}, "triggers": [], "minReplicas": 1}}
    assert _unknown_fields(bad, schema, "so") == ["so.spec.minReplicas"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(
            {"spec": {"scaleTargetRef": {"name": "x"}, "triggers": "cpu"}}
        )


def test_the_vendored_schemas_say_where_they_come_from() -> None:
    for path in SCHEMAS.glob("*.json"):
        doc = json.loads(path.read_text())
        assert re.match(r"https://github.com/[\w-]+/[\w-]+/blob/[0-9a-f]{40}/", doc["source"])
        assert doc["version"] and doc["schema"]["type"] == "object", path.name


# ---------------------------------------------------------------------------- exposure
def _prefix_match(prefix: str, path: str) -> bool:
    """Ingress pathType Prefix: element-wise on '/'-separated segments."""
    want = [p for p in prefix.split("/") if p]
    have = [p for p in path.split("/") if p]
    return have[: len(want)] == want


def _public_prefixes() -> set[str]:
    """The gateway's routes but the operator's /admin API."""
    return {
        f"/{first}" + ("" if second == "*" else f"/{second}")
        for first, second in ROUTES
        if first != "admin"
    }


def test_prod_ingress_exposes_only_the_api_the_pages_and_the_sdk(kubectl: str) -> None:
    docs = _docs(kubectl, "prod")
    ingresses = _by_kind(docs, "Ingress")
    paths = []
    for ingress in ingresses.values():
        for rule in ingress["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                assert p["pathType"] == "Prefix", p
                assert p["backend"]["service"]["name"] == "gateway"
                paths.append(p["path"])
        assert "defaultBackend" not in ingress["spec"]
    assert sorted(paths) == sorted(_public_prefixes())
    assert {"/checkout", "/portal", "/sdk", "/v1/checkout-sessions"} <= set(paths)
    for internal in (
        "/",
        "/metrics",
        "/readyz",
        "/healthz",
        "/livez",
        "/docs",
        "/openapi.json",
        "/internal/organizations",
        "/admin/organizations",
    ):
        assert not any(_prefix_match(p, internal) for p in paths), f"{internal} is public"
    # and the public paths are reached
    for public in ("/v1/prices/price_1", "/checkout/cs_1", "/sdk/v1/bos.js", "/portal"):
        assert any(_prefix_match(p, public) for p in paths), public


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
    docs = _docs(kubectl, overlay)
    pdbs = list(_by_kind(docs, "PodDisruptionBudget").values())
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
    docs = _docs(kubectl, overlay)
    deployments = _by_kind(docs, "Deployment")
    for name in SERVICES:
        [c] = _containers(deployments[name])
        keys = {key for _, key in _secret_keys(c)}
        unused = keys - settings_env(name)
        assert not unused, f"{name} gets secret keys its settings never read: {unused}"
        assert keys, name
    # the migration Job: what bos_common.migrations reads, nothing else
    [c] = _containers(_migrate_job(docs))
    source = (REPO / "libs/common/src/bos_common/migrations.py").read_text()
    for secret, key in _secret_keys(c):
        assert secret == "bos-migrations" and f'"{key}"' in source, key  # a stable name
    for name, dep in deployments.items():
        if name not in SERVICES:
            for c in _containers(dep):
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
    job = _migrate_job(docs)
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
    _check_migration_inputs(_docs(kubectl, overlay))


def test_the_migration_inputs_with_external_secrets(kubectl: str, tmp_path: Path) -> None:
    _check_migration_inputs(_render_with(kubectl, tmp_path, "prod", "external-secrets"))


def test_the_hook_order_check_can_fail(kubectl: str) -> None:
    docs = [dict(d) for d in _docs(kubectl, "dev")]
    job = _migrate_job(docs)
    job["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
        {
            "configMapRef": {
                "name": next(n for n in _by_kind(docs, "ConfigMap") if "bos-config" in n)
            }
        }
    ]
    with pytest.raises(AssertionError, match="after the Job"):
        _check_migration_inputs(docs)


def test_a_new_release_is_a_new_migration_job(kubectl: str, tmp_path: Path) -> None:
    """kubectl apply: a Job's template is immutable, so each release has its own Job, named
    from the overlay's app.kubernetes.io/version (what CI sets with the image digest)."""
    import shutil

    for shared in ("base", "components"):
        (tmp_path / shared).symlink_to(K8S / shared)
    overlay = tmp_path / "overlays" / "prod"
    shutil.copytree(K8S / "overlays" / "prod", overlay)
    text = (overlay / "kustomization.yaml").read_text()
    assert 'app.kubernetes.io/version: "0.1.0"' in text
    (overlay / "kustomization.yaml").write_text(text.replace('"0.1.0"', '"0.2.0"'))
    out = _ok(_run([kubectl, "kustomize", str(overlay)]))
    [job] = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "Job"]
    assert job["metadata"]["name"] == "migrate-0.2.0"
    assert _migrate_job(_docs(kubectl, "prod"))["metadata"]["name"] == "migrate-0.1.0"
    assert _migrate_job(_docs(kubectl, "dev"))["metadata"]["name"] == "migrate-dev"


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
    docs = _docs(kubectl, "prod")
    scaled = _by_kind(docs, "ScaledObject")
    hpas = _by_kind(docs, "HorizontalPodAutoscaler")
    deployments = _by_kind(docs, "Deployment")
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
    deployments = _by_kind(_docs(kubectl, "prod"), "Deployment")
    spread = deployments["gateway"]["spec"]["template"]["spec"]["topologySpreadConstraints"]
    zone = [c for c in spread if c["topologyKey"] == "topology.kubernetes.io/zone"]
    assert [c["whenUnsatisfiable"] for c in zone] == ["DoNotSchedule"]


def test_prod_pins_the_bos_image_by_digest(kubectl: str) -> None:
    for work in _docs(kubectl, "prod"):
        if work["kind"] in WORKLOAD_KINDS | {"Job"}:
            for c in _containers(work):
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
    docs = _docs(kubectl, overlay)
    policies = list(_by_kind(docs, "NetworkPolicy").values())
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and "ingress" not in p["spec"]
        and "egress" not in p["spec"]
    ]
    assert deny and set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    deployments = _by_kind(docs, "Deployment")
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
    proc = _run(
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
    docs = _docs(kubectl, "prod")
    monitors = _by_kind(docs, "PodMonitor")
    deployments = _by_kind(docs, "Deployment")
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
    docs = _docs(kubectl, overlay)
    [config] = [c for n, c in _by_kind(docs, "ConfigMap").items() if n.startswith("bos-config")]
    data = config["data"]
    assert data["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    assert data["OTEL_TRACES_SAMPLER"].startswith("parentbased_")
    collector = _by_kind(docs, "Service")["otel-collector"]
    assert 4318 in {p["port"] for p in collector["spec"]["ports"]}
    [cc] = [
        c for n, c in _by_kind(docs, "ConfigMap").items() if n.startswith("otel-collector-config")
    ]
    pipeline = yaml.safe_load(cc["data"]["config.yaml"])
    assert pipeline["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]
    assert "${env:OTEL_BACKEND_ENDPOINT}" in json.dumps(pipeline["exporters"])


# ---------------------------------------------------------------------------- checkov
def _checkov() -> str:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    cached = cache / "bos-deploy-tools" / f"checkov-{CHECKOV_VERSION}" / "bin"
    path = cached / "checkov"
    if not path.exists():
        _missing("checkov", f"not installed in {cached}")
    return str(path)


def _skipped_checks() -> dict[tuple[str, str], str]:
    """(check, overlay) -> reason, from deploy/README.md's table of skipped checkov checks."""
    text = README.read_text()
    section = text.split("### checkov: skipped checks", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| (CKV\w+) \| ([\w, ]+) \| ([^|]+) \|", section, re.M)
    assert rows
    return {
        (check, overlay.strip()): reason.strip()
        for check, overlays, reason in rows
        for overlay in overlays.split(",")
    }


def test_checkov_finds_nothing_unexplained(kubectl: str, tmp_path: Path) -> None:
    """One checkov run over both overlays; a failed check must be listed, for that overlay,
    in deploy/README.md with its reason."""
    checkov = _checkov()
    files = []
    for overlay in OVERLAYS:
        rendered = tmp_path / f"{overlay}.yaml"
        rendered.write_text(_render(kubectl, overlay))
        files += ["-f", str(rendered)]
    skipped = _skipped_checks()
    assert all(len(reason) > 20 for reason in skipped.values())
    # checkov's verdict on the same rendered bytes is the same: cached by their hash (the
    # run takes half a minute; the README's skip list is applied afterwards).
    import hashlib

    digest = hashlib.sha256(
        "".join(_render(kubectl, o) for o in OVERLAYS).encode() + CHECKOV_VERSION.encode()
    ).hexdigest()
    cached = Path(checkov).parents[2] / "results" / f"{digest}.json"
    if cached.exists():
        report = json.loads(cached.read_text())
    else:
        proc = subprocess.run(
            [
                checkov,
                "--quiet",
                "--compact",
                "--framework",
                "kubernetes",
                "-o",
                "json",
                "--skip-download",
                *files,
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        report = json.loads(proc.stdout)
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    failed, excused = [], set()
    for r in reports:
        for c in r.get("results", {}).get("failed_checks", []):
            overlay = Path(c["file_path"]).stem
            if (c["check_id"], overlay) in skipped:
                excused.add((c["check_id"], overlay))
            else:
                failed.append(f"{overlay}: {c['check_id']} {c['resource']}: {c['check_name']}")
    assert not failed, "\n".join(failed)
    stale = set(skipped) - excused
    assert not stale, f"listed as skipped in deploy/README.md but no longer failing: {stale}"
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    assert passed > 500, "checkov checked next to nothing"
