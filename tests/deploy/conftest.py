"""Fixtures of the deployment tests: the tools they run and the compose file they read."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from deploykit import REPO, interpolate, load_yaml, missing_tool, run, which  # noqa: E402


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = interpolate(load_yaml(REPO / "docker-compose.yml"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def kubectl() -> str:
    path = which("kubectl")
    out = run([path, "version", "--client"]).stdout
    m = re.search(r"Kustomize Version: v?(\d+)", out)
    if not m or int(m.group(1)) < 4:
        missing_tool("kubectl", f"has no kustomize >= v4 ({out.strip()!r})")
    return path


@pytest.fixture(scope="module")
def promtool() -> str:
    return which("promtool")
