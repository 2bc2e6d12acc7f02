"""deploy/k8s rendered (base and overlays) and validated strictly, then checked against the
service contract: services, probes, security contexts, resources, the migration Job,
PDBs and HPAs, config and secret references, the publishable key, scrape labels."""

from __future__ import annotations

import re
from typing import Any

import pytest
from deploykit import (
    EXTERNAL_SECRETS,
    GATEWAY_ENV,
    GATEWAY_URL_TARGETS,
    K8S,
    K8S_VERSION,
    MIGRATED,
    OVERLAYS,
    PROM,
    SERVICES,
    STRIPE_ENV_OF,
    STRIPE_JS_SERVICES,
    STRIPE_SECRETS,
    STRIPE_SERVICES,
    STRIPE_SIM_PORT,
    base_name,
    by_kind,
    containers_of,
    load_yaml,
    migrate_job_of,
    ok,
    render,
    rendered_docs,
    run,
    settings_env,
    sim_endpoints,
    which,
    workloads_of,
)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kustomize_renders_and_validates_strict(kubectl: str, overlay: str) -> None:
    validator = which("kubernetes-validate")
    rendered = render(kubectl, overlay)
    proc = run([validator, "--strict", "--quiet", "-k", K8S_VERSION, "-"], stdin=rendered)
    ok(proc)
    assert "ERROR" not in proc.stdout + proc.stderr


def test_kustomize_base_renders_and_validates_strict(kubectl: str) -> None:
    validator = which("kubernetes-validate")
    rendered = ok(run([kubectl, "kustomize", str(K8S / "base")]))
    ok(run([validator, "--strict", "--quiet", "-k", K8S_VERSION, "-"], stdin=rendered))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_services_follow_the_contract(kubectl: str, overlay: str) -> None:
    docs = rendered_docs(kubectl, overlay)
    deployments = by_kind(docs, "Deployment")
    services = by_kind(docs, "Service")
    images = set()
    for name, port in SERVICES.items():
        dep = deployments[name]
        pod = dep["spec"]["template"]
        assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        [c] = containers_of(dep)
        images.add(c["image"])
        assert c["command"] == [
            "uvicorn",
            f"{name}.app:app",
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
            "--no-access-log",
            "--no-server-header",
        ]
        assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"http": port}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        ann = pod["metadata"]["annotations"]
        assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == str(port)
        assert ann["prometheus.io/path"] == "/metrics"
        assert pod["metadata"]["labels"]["app.kubernetes.io/part-of"] == "bos"
        # hardened: non-root, read-only root fs, no privilege escalation, no capabilities
        psc = pod["spec"]["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] >= 1000
        assert psc["seccompProfile"]["type"] == "RuntimeDefault"
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert pod["spec"]["automountServiceAccountToken"] is False
        mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
        assert "/tmp" in mounts, "a read-only root fs needs a writable /tmp"

        svc = services[name]
        assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(port, "http")]
    assert len(images) == 1, f"one image for every service, got {images}"
    [image] = images
    if overlay == "prod":
        assert not image.endswith(":latest") and ":" in image, "prod pins the image"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_every_container_has_resources_and_runs_as_non_root(kubectl: str, overlay: str) -> None:
    for work in workloads_of(rendered_docs(kubectl, overlay)):
        spec = work["spec"]["template"]["spec"]
        for c in spec.get("initContainers", []) + spec["containers"]:
            where = f"{work['kind']}/{work['metadata']['name']}/{c['name']}"
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= res.get(kind, {}).keys(), f"{where}: {kind} missing"
            non_root = c.get("securityContext", {}).get(
                "runAsNonRoot", spec.get("securityContext", {}).get("runAsNonRoot")
            )
            assert non_root is True, f"{where} may run as root"
            assert c.get("securityContext", {}).get("allowPrivilegeEscalation") is False, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_migrate_job_runs_every_schema(kubectl: str, overlay: str) -> None:
    docs = rendered_docs(kubectl, overlay)
    job = migrate_job_of(docs)
    version = job["metadata"]["labels"]["app.kubernetes.io/version"]
    assert job["metadata"]["name"] == f"migrate-{version}", "one Job per release"
    [c] = containers_of(job)
    script = " ".join(c["command"] + c.get("args", []))
    assert "python -m bos_common.migrate" in script
    for name in MIGRATED:
        assert name in script
    assert job["spec"]["template"]["spec"]["restartPolicy"] in {"Never", "OnFailure"}
    assert c["image"] == containers_of(by_kind(docs, "Deployment")["checkout"])[0]["image"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_pdb_and_hpa_guard_gateway_and_checkout(kubectl: str, overlay: str) -> None:
    docs = rendered_docs(kubectl, overlay)
    deployments = by_kind(docs, "Deployment")
    pdbs = by_kind(docs, "PodDisruptionBudget")
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    for name in ("gateway", "checkout"):
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert pdbs[name]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        if name in by_kind(docs, "ScaledObject"):
            continue  # KEDA's (tests/deploy/test_k8s_workloads.py)
        hpa = hpas[name]["spec"]
        assert hpa["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert 1 <= hpa["minReplicas"] < hpa["maxReplicas"]
        assert "replicas" not in deployments[name]["spec"], f"{name}: replicas belong to its HPA"
        if overlay == "prod":
            assert hpa["minReplicas"] >= 2
            assert "minAvailable" in pdbs[name]["spec"] or pdbs[name]["spec"]["maxUnavailable"] <= 1
    scaled = by_kind(docs, "ScaledObject")
    for name in SERVICES:
        assert "replicas" not in deployments[name]["spec"], f"{name}: replicas belong to its scaler"
        if overlay == "prod":
            low = (
                scaled[name]["spec"]["minReplicaCount"]
                if name in scaled
                else hpas[name]["spec"]["minReplicas"]
            )
            assert low >= 2, f"prod {name} needs redundancy"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_config_and_secret_references_resolve(kubectl: str, overlay: str) -> None:
    docs = rendered_docs(kubectl, overlay)
    namespaces = {d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"}
    assert len(namespaces) == 1
    [namespace] = namespaces
    for d in docs:
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == namespace, (
                f"{d['kind']}/{d['metadata']['name']}"
            )
    configmaps = by_kind(docs, "ConfigMap")
    secrets = by_kind(docs, "Secret")
    if overlay == "prod":
        assert not secrets, "prod must not render secrets from the repository"
    secret_keys = {
        n: set(s.get("data", {})) | set(s.get("stringData", {})) for n, s in secrets.items()
    }
    known_secret_keys = (
        {**{n: set(k) for n, k in EXTERNAL_SECRETS.items()}} if overlay == "prod" else secret_keys
    )

    def env_of(container: dict[str, Any]) -> set[str]:
        names = {e["name"] for e in container.get("env", [])}
        for src in container.get("envFrom", []):
            if "configMapRef" in src:
                ref = src["configMapRef"]["name"]
                assert ref in configmaps, f"configMap {ref} is not rendered"
                names |= set(configmaps[ref]["data"])
            if "secretRef" in src:
                ref = src["secretRef"]["name"]
                assert ref in known_secret_keys, f"secret {ref} is neither rendered nor documented"
                names |= known_secret_keys[ref]
        for e in container.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert e["valueFrom"]["secretKeyRef"]["key"] in known_secret_keys[ref["name"]]
        return names

    deployments = by_kind(docs, "Deployment")
    k8s_services = by_kind(docs, "Service")
    for name in SERVICES:
        [c] = containers_of(deployments[name])
        env = env_of(c)
        required = settings_env(name, required_only=True)
        assert required <= env, f"{name} misses {required - env}"
        if name == "gateway":
            assert "DATABASE_URL" not in env, "the gateway must not get database credentials"
        if name in STRIPE_SERVICES:
            assert STRIPE_ENV_OF[name] <= env, f"{name} misses {STRIPE_ENV_OF[name] - env}"
        else:
            assert not (STRIPE_SECRETS & env), f"{name} gets Stripe keys"
        if name == "gateway":
            assert GATEWAY_ENV <= env
    [migrate] = containers_of(migrate_job_of(docs))
    assert {"MIGRATIONS_DATABASE_URL", "BOS_RUNTIME_DB_ROLE"} <= env_of(migrate)
    assert "DATABASE_URL" not in env_of(migrate), "migrations run as their own role"

    [config] = [c for n, c in configmaps.items() if base_name(n) == "bos-config"]
    for var, target in GATEWAY_URL_TARGETS.items():
        assert config["data"][var] == f"http://{target}:{SERVICES[target]}"
        assert k8s_services[target]["spec"]["ports"][0]["port"] == SERVICES[target]
    if overlay == "dev":
        assert config["data"]["STRIPE_API_BASE"] == f"http://stripe-sim:{STRIPE_SIM_PORT}"
        assert {"stripe-sim", "postgres", "rabbitmq"} <= deployments.keys() & k8s_services.keys()
        [sim] = containers_of(deployments["stripe-sim"])
        assert sim["command"][:3] == ["python", "-m", "stripe_sim"]
        sim_env = {e["name"]: e for e in sim["env"]}
        account, connect = sim_endpoints(sim_env["STRIPE_SIM_WEBHOOK_ENDPOINTS"]["value"])
        for (_, secret, _), variable in (
            (account, "STRIPE_WEBHOOK_SECRETS"),
            (connect, "STRIPE_CONNECT_WEBHOOK_SECRETS"),
        ):
            assert secret == f"$({variable})"
            assert variable in sim_env, "the $(...) reference needs the variable defined first"
    else:
        assert config["data"]["STRIPE_API_BASE"] == "https://api.stripe.com"
        assert "stripe-sim" not in deployments, "the simulator is dev/test only"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_sets_a_publishable_key_and_prod_a_live_one(kubectl: str, overlay: str) -> None:
    """Every overlay sets STRIPE_PUBLISHABLE_KEY for the pages; prod says it is production,
    so checkout refuses to start with a test key or the placeholder left unset."""
    docs = rendered_docs(kubectl, overlay)
    [config] = [c for n, c in by_kind(docs, "ConfigMap").items() if base_name(n) == "bos-config"]
    deployments = by_kind(docs, "Deployment")
    for name in STRIPE_JS_SERVICES:
        [c] = containers_of(deployments[name])
        refs = {src.get("configMapRef", {}).get("name") for src in c.get("envFrom", [])}
        assert config["metadata"]["name"] in refs, name
    key = config["data"]["STRIPE_PUBLISHABLE_KEY"]
    if overlay == "prod":
        assert config["data"]["BOS_PROFILE"] == "production"
        assert key.startswith("pk_live_")
        assert config["data"]["STRIPE_JS_URL"] == "https://js.stripe.com/v3/"
    else:
        assert key.startswith("pk_test_")


def test_k8s_scrape_config_matches_the_pods(kubectl: str) -> None:
    """prometheus-k8s.yml keeps pods by labels/annotations that deploy/k8s actually sets."""
    cfg = load_yaml(PROM / "prometheus-k8s.yml")
    [job] = [j for j in cfg["scrape_configs"] if j["job_name"] == "bos"]
    keeps = {
        tuple(r["source_labels"]): re.compile(r["regex"])
        for r in job["relabel_configs"]
        if r.get("action") == "keep"
    }
    namespaces = set(job["kubernetes_sd_configs"][0]["namespaces"]["names"])
    for overlay in OVERLAYS:
        deployments = by_kind(rendered_docs(kubectl, overlay), "Deployment")
        for name in SERVICES:
            pod = deployments[name]["spec"]["template"]["metadata"]
            assert deployments[name]["metadata"]["namespace"] in namespaces
            meta = {
                f"__meta_kubernetes_pod_label_{re.sub(r'[^a-zA-Z0-9_]', '_', k)}": v
                for k, v in pod["labels"].items()
            }
            meta |= {
                f"__meta_kubernetes_pod_annotation_{re.sub(r'[^a-zA-Z0-9_]', '_', k)}": v
                for k, v in pod["annotations"].items()
            }
            for labels, regex in keeps.items():
                value = ";".join(meta.get(label, "") for label in labels)
                assert regex.fullmatch(value), (
                    f"{overlay}/{name} dropped by keep {labels}={regex.pattern}"
                )
