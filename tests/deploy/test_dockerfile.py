"""The Dockerfile: hadolint-clean, multi-stage, slim, non-root, frozen, every workspace
member copied, and a small, secret-free build context."""

from __future__ import annotations

import glob
import json
import re
import tomllib
from pathlib import Path

from deploykit import (
    REPO,
    SERVICES,
    ok,
    run,
    which,
)


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def _workspace_members() -> list[str]:
    root = tomllib.loads((REPO / "pyproject.toml").read_text())
    members: list[str] = []
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        members += sorted(
            str(Path(p).relative_to(REPO))
            for p in glob.glob(str(REPO / pattern))
            if (Path(p) / "pyproject.toml").exists()
        )
    return members


def test_dockerfile_lints_clean() -> None:
    hadolint = which("hadolint")
    ok(run([hadolint, "--failure-threshold", "warning", "Dockerfile"]))


def test_dockerfile_is_multistage_slim_nonroot_and_frozen() -> None:
    ins = _dockerfile_instructions()
    args = {
        rest.split("=", 1)[0]: rest.split("=", 1)[1]
        for op, rest in ins
        if op == "ARG" and "=" in rest
    }
    froms = [rest for op, rest in ins if op == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    for frm in froms:
        image = frm.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), image)
        assert image == "python:3.11-slim", frm
    assert any(" AS builder" in f or " as builder" in f for f in froms)
    runs = " ".join(rest for op, rest in ins if op == "RUN")
    assert re.search(r"pip install \"?uv(==|\b)", runs), "uv must come from PyPI through pip"
    sync = [m for op, rest in ins if op == "RUN" for m in re.findall(r"uv sync [^&;]*", rest)]
    assert any(
        "--frozen" in s and "--all-packages" in s and "--no-dev" in s and "--no-install" not in s
        for s in sync
    ), sync
    assert all("--frozen" in s for s in sync), "every uv sync must honour uv.lock"
    users = [rest for op, rest in ins if op == "USER"]
    assert users, "the runtime stage must drop root"
    final_stage = [op for op, _ in ins][[i for i, (op, _) in enumerate(ins) if op == "FROM"][-1] :]
    assert "USER" in final_stage, "USER must be set in the final stage"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) >= 1000, (
        f"numeric non-root uid expected (runAsNonRoot), got {user}"
    )
    cmd = [rest for op, rest in ins if op == "CMD"][-1]
    assert json.loads(cmd)[:2] == ["uvicorn", "gateway.app:app"]


def test_dockerfile_copies_every_workspace_member() -> None:
    """The dependency layer needs each member's pyproject.toml; a new member must be added."""
    copies = " ".join(rest for op, rest in _dockerfile_instructions() if op == "COPY")
    members = _workspace_members()
    assert set(members) >= {"libs/common", "tools/stripe-sim", *(f"services/{s}" for s in SERVICES)}
    for member in members:
        assert f"{member}/pyproject.toml" in copies, (
            f"Dockerfile does not copy {member}/pyproject.toml"
        )
        top = member.split("/")[0]
        assert f"{top} ./{top}" in copies, f"Dockerfile does not copy the sources of {top}/"


def test_dockerignore_keeps_the_context_small_and_secret_free() -> None:
    entries = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for must in (".venv", "**/.git", "**/__pycache__", "tests", "deploy", ".env"):
        assert must in entries, f".dockerignore should exclude {must}"
    for keep in ("pyproject.toml", "uv.lock", "libs", "services", "tools"):
        assert keep not in entries, f".dockerignore must not exclude {keep}"
