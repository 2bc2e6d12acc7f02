"""Killing and restarting the stack's processes mid-test, as a crash does: SIGKILL (no
shutdown hook runs, nothing is released), then scripts/services.sh starts what is not
running. Only for the local stack of scripts/test.sh (its pid files)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run_dir() -> Path:
    state = os.environ.get("BOS_STATE_DIR")
    if not state or not os.environ.get("BOS_TEST_STACK"):
        pytest.skip("killing processes needs the local stack of scripts/test.sh")
    return Path(state) / "run"


def kill(name: str) -> list[int]:
    """SIGKILL every process of `name` (`checkout`, or with REPLICAS=N `checkout-1`..N:
    whichever replica holds the request, it dies), each whole process group as services.sh
    started it. Their pid files go too: services.sh is not their parent, and until whoever
    is reaps them the dead processes would still count as running (`kill -0` succeeds on a
    zombie)."""
    run = _run_dir()
    pid_files = [p for p in [run / f"{name}.pid", *sorted(run.glob(f"{name}-*.pid"))] if p.exists()]
    assert pid_files, f"no process {name} in {run}"
    pids = []
    for pid_file in pid_files:
        pid = int(pid_file.read_text())
        os.killpg(pid, signal.SIGKILL)
        pid_file.unlink()
        pids.append(pid)
    return pids


async def restart_stopped(ready_url: str, timeout: float = 60.0) -> None:
    """Start every process of the stack that is not running, then wait for `ready_url`."""
    _run_dir()
    await asyncio.to_thread(
        subprocess.run,
        [str(ROOT / "scripts" / "services.sh"), "start"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while loop.time() < deadline:
            try:
                if (await client.get(ready_url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{ready_url} not ready after {timeout} s")
