"""The fault schedule: replicas killed with SIGKILL and started again, RabbitMQ stopped
and started, Postgres restarted (fast shutdown), the simulator's API errors and latency;
webhook faults (duplicates, shuffling, dropped first attempts) all along. Each fault is
recorded as a window (what, from, to) for the report."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("tokens", "catalog", "checkout", "subscriptions", "webhooks", "gateway")
WEBHOOK_FAULTS = {
    "webhook_duplicate": True,
    "webhook_shuffle": True,
    "webhook_drop_first_attempt": True,
}


@dataclass
class Window:
    what: str
    start: float
    end: float = 0.0


@dataclass
class Schedule:
    """Seconds from the start of the load."""

    duration: float
    kill_every: float = 6.0
    kill_pause: float = 3.0
    kills_from: float = 20.0
    rabbitmq_at: float = 70.0
    rabbitmq_down: float = 20.0
    postgres_at: float = 140.0
    sim_errors_at: float = 180.0
    sim_errors_for: float = 60.0
    sim_error_rate: float = 0.2
    sim_latency_ms: int = 300
    quiet_tail: float = 45.0  # no kills in the load's last seconds

    @classmethod
    def for_duration(cls, duration: float) -> Schedule:
        """The default schedule for the default 270 s, scaled for shorter runs."""
        f = min(1.0, duration / 270.0)
        return cls(
            duration=duration,
            kills_from=20 * f,
            rabbitmq_at=70 * f,
            postgres_at=140 * f,
            sim_errors_at=180 * f,
            sim_errors_for=60 * f,
            quiet_tail=45 * f,
        )


@dataclass
class FaultRunner:
    schedule: Schedule
    sim: httpx.AsyncClient
    replicas: int
    rng: random.Random
    run_dir: Path = field(default_factory=lambda: Path(os.environ["BOS_STATE_DIR"]) / "run")
    windows: list[Window] = field(default_factory=list)
    kills: int = 0

    async def _script(self, *args: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            str(ROOT / "scripts" / args[0]),
            *args[1:],
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await proc.wait()

    async def sim_faults(self, **faults: object) -> None:
        for _ in range(20):
            try:
                r = await self.sim.post("/_sim/faults", json=faults)
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
        raise RuntimeError("the simulator refused its faults")

    async def run(self, t0: float) -> None:
        s = self.schedule
        await self.sim_faults(**WEBHOOK_FAULTS)
        await asyncio.gather(
            self._kills(t0),
            self._at(t0 + s.rabbitmq_at, self._rabbitmq),
            self._at(t0 + s.postgres_at, self._postgres),
            self._at(t0 + s.sim_errors_at, self._sim_errors),
        )

    async def stop(self) -> None:
        """Every fault off (the webhook ones too) and every process running."""
        try:
            await self.sim.delete("/_sim/faults")
        except httpx.HTTPError:
            await self.sim_faults(
                api_error_rate=0, api_latency_ms=0, **dict.fromkeys(WEBHOOK_FAULTS, False)
            )
        await self._script("services.sh", "start")

    @staticmethod
    async def _at(when: float, what: object) -> None:
        await asyncio.sleep(max(0.0, when - time.time()))
        await what()  # type: ignore[operator]

    async def _kills(self, t0: float) -> None:
        s = self.schedule
        await asyncio.sleep(max(0.0, t0 + s.kills_from - time.time()))
        while time.time() < t0 + s.duration - s.quiet_tail:
            service = self.rng.choice(SERVICES)
            replica = f"{service}-{self.rng.randint(1, self.replicas)}"
            pid_file = self.run_dir / f"{replica}.pid"
            window = Window(f"kill -9 {replica}", time.time())
            try:
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)
                self.kills += 1
            except (OSError, ValueError):
                pass
            await asyncio.sleep(s.kill_pause)
            await self._script("services.sh", "start")
            window.end = time.time()
            self.windows.append(window)
            await asyncio.sleep(max(0.0, s.kill_every - s.kill_pause))

    async def _rabbitmq(self) -> None:
        window = Window("RabbitMQ stopped", time.time())
        await self._script("rabbitmq.sh", "pause")
        await asyncio.sleep(self.schedule.rabbitmq_down)
        await self._script("rabbitmq.sh", "resume")
        window.end = time.time()
        self.windows.append(window)

    async def _postgres(self) -> None:
        window = Window("Postgres restarted", time.time())
        await self._script("postgres.sh", "stop")
        await self._script("postgres.sh", "start")
        window.end = time.time()
        self.windows.append(window)

    async def _sim_errors(self) -> None:
        s = self.schedule
        window = Window(
            f"simulator API errors {s.sim_error_rate:.0%} + {s.sim_latency_ms} ms", time.time()
        )
        await self.sim_faults(
            api_error_rate=s.sim_error_rate, api_latency_ms=s.sim_latency_ms, **WEBHOOK_FAULTS
        )
        await asyncio.sleep(s.sim_errors_for)
        await self.sim_faults(api_error_rate=0, api_latency_ms=0, **WEBHOOK_FAULTS)
        window.end = time.time()
        self.windows.append(window)
