"""Processes: starting/stopping the floor app, and CPU accounting from /proc.

CPU time is read per process group: services.sh starts every BOS process with `setsid`
(so its pid is its process-group id, and uvicorn workers share it), and the floor app is
started the same way here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- CPU accounting --------------------------------------------------------------------


def _stat_fields(pid: str) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process (e.g. a Postgres backend), None when unreadable."""
    f = _stat_fields(str(pid))
    return None if f is None else (int(f[11]) + int(f[12])) / CLK_TCK


def group_cpu_seconds(pgid: int) -> float:
    """utime + stime of every live process in process group `pgid` (children that
    exited and were reaped are included through cutime/cstime)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        f = _stat_fields(entry)
        # after comm: state(0) ppid(1) pgrp(2) ... utime(11) stime(12) cutime(13) cstime(14)
        if f is None or int(f[2]) != pgid:
            continue
        total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total / CLK_TCK


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(x) for x in parts]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return total - idle, total


def children_cpu_seconds() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class CpuMeter:
    """CPU consumed during a block by named process groups, by this process's children
    (wrk) and by the whole machine."""

    def __init__(self, groups: dict[str, int]) -> None:
        self.groups = groups
        self.result: dict[str, float] = {}

    def __enter__(self) -> CpuMeter:
        self._t0 = time.monotonic()
        self._g0 = {n: group_cpu_seconds(p) for n, p in self.groups.items()}
        self._c0 = children_cpu_seconds()
        self._m0 = machine_cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self._t0
        busy1, total1 = machine_cpu()
        busy0, total0 = self._m0
        self.wall = wall
        self.group_seconds = {n: group_cpu_seconds(p) - self._g0[n] for n, p in self.groups.items()}
        self.children_seconds = children_cpu_seconds() - self._c0
        self.machine_busy = (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
        # Cores kept busy by everything else (other services of the stack, Postgres,
        # RabbitMQ, and any other work on a shared machine) while this ran.
        ours = (sum(self.group_seconds.values()) + self.children_seconds) / wall if wall else 0
        self.other_cores = max(0.0, self.machine_busy * (os.cpu_count() or 1) - ours)


def read_pidfiles(run_dir: Path | None) -> dict[str, int]:
    out: dict[str, int] = {}
    if run_dir is None or not run_dir.is_dir():
        return out
    for f in run_dir.glob("*.pid"):
        try:
            out[f.stem] = int(f.read_text().strip())
        except ValueError:
            continue
    return out


# Servers of the stack with no process group of their own: the process in the pid file
# (relative to the state dir) and its direct children (Postgres' backends).
SERVER_PIDFILES = {"postgres": "postgres/data/postmaster.pid", "rabbitmq": "rabbitmq/rabbit.pid"}


def tree_cpu_seconds(pid_file: Path) -> float | None:
    """utime + stime (+ reaped children) of the process in `pid_file` (its first word)
    and of its direct children; None when there is no such file."""
    try:
        root = pid_file.read_text().split()[0]
    except (OSError, IndexError):
        return None
    total = 0
    for entry in os.listdir("/proc"):
        f = _stat_fields(entry) if entry.isdigit() else None
        if f and (entry == root or f[1] == root):
            total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total / CLK_TCK


def process_groups() -> dict[str, int]:
    """The stack's process groups from its pid files ($BENCH_RUN_DIR or
    $BOS_STATE_DIR/run)."""
    run_dir = os.environ.get("BENCH_RUN_DIR") or (
        f"{os.environ['BOS_STATE_DIR']}/run" if os.environ.get("BOS_STATE_DIR") else None
    )
    return read_pidfiles(Path(run_dir) if run_dir else None)


class StackCpu:
    """CPU seconds used during a block by each service of the stack (process groups from
    the pid files), Postgres and RabbitMQ (from $BOS_STATE_DIR)."""

    def __enter__(self) -> StackCpu:
        state = os.environ.get("BOS_STATE_DIR")
        self._servers = {name: Path(f"{state}/{f}") for name, f in SERVER_PIDFILES.items() if state}
        self._meter = CpuMeter(process_groups()).__enter__()
        self._s0 = {n: tree_cpu_seconds(f) for n, f in self._servers.items()}
        return self

    def __exit__(self, *exc: object) -> None:
        self._meter.__exit__(*exc)
        self.meter = self._meter
        self.seconds = dict(self._meter.group_seconds)
        for name, pid_file in self._servers.items():
            before, after = self._s0[name], tree_cpu_seconds(pid_file)
            if before is not None and after is not None:
                self.seconds[name] = after - before


# --- the floor app ---------------------------------------------------------------------


class FloorApp:
    """bench/floor_app.py under uvicorn, production-like, in its own process group."""

    def __init__(
        self,
        port: int,
        database_url: str | None,
        *,
        workers: int = 1,
        run_dir: Path | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.database_url = database_url
        self.workers = workers
        self.run_dir = run_dir
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self._pidfile = run_dir / "bench-floor.pid" if run_dir else None

    def start(self, timeout: float = 30.0) -> None:
        if _answers(f"{self.url}/ping"):
            raise RuntimeError(f"port {self.port} is already serving: refusing to start the floor")
        env = dict(os.environ)
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.floor_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
            "--workers",
            str(self.workers),
        ]
        log = (
            open(self.log_dir / "bench-floor.log", "ab")  # noqa: SIM115 - handed to the child
            if self.log_dir
            else subprocess.DEVNULL
        )
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        if self._pidfile is not None:
            # services.sh stop kills every pid file of the run dir: a safety net if the
            # harness itself is killed before it stops the floor.
            self._pidfile.write_text(f"{self.proc.pid}\n")
        deadline = time.monotonic() + timeout
        while not _answers(f"{self.url}/ping"):
            if self.proc.poll() is not None:
                raise RuntimeError(f"floor app exited with {self.proc.returncode} (see its log)")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("floor app did not answer /ping in time")
            time.sleep(0.1)

    @property
    def pgid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        # Workers of --workers N share the group; make sure none outlive the master.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self._pidfile is not None:
            self._pidfile.unlink(missing_ok=True)
        self.proc = None


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False
