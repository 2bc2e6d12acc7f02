"""Writes the openAPIV3 schema of each CRD that deploy/k8s uses, from the operators'
repositories checked out locally, as the small JSON files next to this script.

    python tests/deploy/crd-schemas/extract.py <repo-checkouts-dir>

<repo-checkouts-dir>/<owner>+<name>[/repo] is a git directory of each source repository (e.g. a
bare clone); the files are read at the commit recorded in SOURCES, so a re-run is exact.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent

# (repository, commit, CRD file) -> the versions whose schema is kept
SOURCES: list[tuple[str, str, str, str, list[str]]] = [
    (
        "cloudnative-pg/cloudnative-pg",
        "a95a534dbe0854495b863bbc1b7651f74d310916",
        "v1.30.0-86-ga95a534db",
        "config/crd/bases/postgresql.cnpg.io_clusters.yaml",
        ["v1"],
    ),
    (
        "cloudnative-pg/cloudnative-pg",
        "a95a534dbe0854495b863bbc1b7651f74d310916",
        "v1.30.0-86-ga95a534db",
        "config/crd/bases/postgresql.cnpg.io_scheduledbackups.yaml",
        ["v1"],
    ),
    (
        "external-secrets/external-secrets",
        "cc5bfbc2234ace9cb0caff4ea89c435cf517b27b",
        "helm-chart-2.9.0",
        "config/crds/bases/external-secrets.io_externalsecrets.yaml",
        ["v1"],
    ),
    (
        "rabbitmq/cluster-operator",
        "06cda8e8e1a927a652dda20a1b169fe7667f4916",
        "v2.22.3-29-g06cda8e8",
        "config/crd/bases/rabbitmq.com_rabbitmqclusters.yaml",
        ["v1beta1"],
    ),
    (
        "kedacore/keda",
        "8b4f083ca8c8c2baf8477e322bd4d16ac4dfa09a",
        "v2.20.1-117-g8b4f083ca",
        "config/crd/bases/keda.sh_scaledobjects.yaml",
        ["v1alpha1"],
    ),
    (
        "kedacore/keda",
        "8b4f083ca8c8c2baf8477e322bd4d16ac4dfa09a",
        "v2.20.1-117-g8b4f083ca",
        "config/crd/bases/keda.sh_triggerauthentications.yaml",
        ["v1alpha1"],
    ),
    (
        "prometheus-operator/prometheus-operator",
        "6adcebc5076c34f4f55f8f5f7b1e528929373ac7",
        "v0.93.0-24-g6adcebc50",
        "example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml",
        ["v1"],
    ),
    (
        "prometheus-operator/prometheus-operator",
        "6adcebc5076c34f4f55f8f5f7b1e528929373ac7",
        "v0.93.0-24-g6adcebc50",
        "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
        ["v1"],
    ),
]


def without_descriptions(node: object) -> object:
    """The schema minus its prose (most of the bytes); the rules are all kept."""
    if isinstance(node, dict):
        return {
            k: without_descriptions(v)
            for k, v in node.items()
            if not (k == "description" and isinstance(v, str))
        }
    if isinstance(node, list):
        return [without_descriptions(v) for v in node]
    return node


def main(checkouts: Path) -> None:
    for repo, commit, described, path, versions in SOURCES:
        git_dir = checkouts / repo.replace("/", "+")
        if (git_dir / "repo").is_dir():
            git_dir = git_dir / "repo"
        text = subprocess.run(
            ["git", "-C", str(git_dir), "show", f"{commit}:{path}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        crd = yaml.safe_load(text)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version["name"] not in versions:
                continue
            out = {
                "source": f"https://github.com/{repo}/blob/{commit}/{path}",
                "version": described,
                "apiVersion": f"{group}/{version['name']}",
                "kind": kind,
                "schema": without_descriptions(version["schema"]["openAPIV3Schema"]),
            }
            target = HERE / f"{kind.lower()}.{group}.{version['name']}.json"
            target.write_text(json.dumps(out, separators=(",", ":"), sort_keys=True) + "\n")
            print(f"{target.name}: {len(target.read_text())} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
