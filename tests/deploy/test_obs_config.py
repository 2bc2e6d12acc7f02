"""The operations configuration beside the rules: every alert has a runbook line, and
Alertmanager's configuration is valid and routes every severity the rules use."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _alerts() -> dict[str, dict[str, Any]]:
    out = {}
    for path in (DEPLOY / "prometheus" / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    out[rule["alert"]] = rule
    return out


def test_every_alert_has_a_runbook_line() -> None:
    text = (DEPLOY / "README.md").read_text()
    section = text.split("## Alert runbook", 1)[1].split("\n## ", 1)[0]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| (Bos\w+) \| (\w+) \|", section, re.M)}
    alerts = _alerts()
    assert set(rows) == set(alerts)
    for name, rule in alerts.items():
        assert rows[name] == rule["labels"]["severity"], name


def test_alertmanager_routes_every_severity_to_a_receiver_with_a_webhook() -> None:
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    routed = {}
    for route in config["route"]["routes"]:
        [matcher] = route["matchers"]
        m = re.fullmatch(r'severity="(\w+)"', matcher)
        assert m, matcher
        routed[m.group(1)] = route["receiver"]
    severities = {r["labels"]["severity"] for r in _alerts().values()}
    assert severities <= set(routed)
    for severity in severities:
        receiver = receivers[routed[severity]]
        assert receiver["webhook_configs"] and receiver["email_configs"], severity
        assert all(w["send_resolved"] for w in receiver["webhook_configs"])


def test_amtool_accepts_the_config() -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool not installed (Debian prometheus-alertmanager; scripts/obs.sh)")
    proc = subprocess.run(
        [amtool, "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
