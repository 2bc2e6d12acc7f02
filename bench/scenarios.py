"""The scenario registry.

A scenario is a list of targets (one HTTP request shape against one base URL) plus the
checks that turn their numbers into pass/fail against the targets of the issue. Every
scenario also runs floor targets (bench/floor_app.py) in the same run, so each result
reads as a ratio to what bare FastAPI + uvicorn (+ asyncpg) does at that moment.

To add a scenario: define it below with `register(Scenario(...))`. Targets name a base
(`gateway`, `floor`, or a service: `tokens`, `catalog`, `checkout`, `subscriptions`,
`webhooks`), a path, a method, an optional body and headers, the statuses that count as
success, and optionally a Lua file under bench/lua/ (e.g. a `request()` hook that makes
every request unique). See bench/README.md.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# --- building blocks -------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    label: str
    base: str
    path: str
    method: str = "GET"
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    expected: frozenset[int] = frozenset({200})
    lua: str | None = None  # file name under bench/lua/, inserted before report.lua
    # Processes (pid-file names in the stack's run dir, or "floor") whose CPU time is
    # divided by the request count in the closed-loop regime.
    procs: tuple[str, ...] = ()
    note: str = ""


# Checks are evaluated per round (paired, interleaved measurements of the same round) and
# the median over rounds is reported: drift between rounds cancels out of each ratio.
# `rps[target]` is the list of closed-loop req/s per round; `pct[target]` the list of
# one-connection percentiles (ms, keys "50", "95", "99", ...) per round.
Rounds = dict[str, list[float]]
PctRounds = dict[str, list[dict[str, float]]]


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def _rounds_note(values: list[float], fmt: str) -> str:
    return f"; rounds {', '.join(format(v, fmt) for v in values)}" if len(values) > 1 else ""


def _outcome(
    name: str,
    kind: str,
    regime: str,
    values: list[float],
    *,
    digits: int,
    detail: str,
    minimum: float | None = None,
    maximum: float | None = None,
    unit: str = "",
) -> dict[str, Any]:
    """A check's result from its value per round: the median against `minimum` (at
    least) or `maximum` (below)."""
    value = _median(values)
    if minimum is not None:
        passed, margin, target = value >= minimum, value - minimum, f">= {minimum:g}{unit}"
    else:
        assert maximum is not None
        passed, margin, target = value < maximum, maximum - value, f"< {maximum:g}{unit}"
    return {
        "name": name,
        "kind": kind,
        "regime": regime,
        "measured": round(value, digits),
        "target": target,
        "detail": detail + _rounds_note(values, ",.0f" if digits <= 1 else f".{digits}f"),
        "pass": passed,
        "margin": round(margin, digits),
        "rounds": [round(v, digits) for v in values],
    }


@dataclass(frozen=True)
class RpsRatio:
    """Closed loop: rps(numerator) / rps(denominator) >= minimum."""

    name: str
    numerator: str
    denominator: str
    minimum: float

    def evaluate(self, rps: Rounds, pct: PctRounds) -> dict[str, Any]:
        num, den = rps[self.numerator], rps[self.denominator]
        return _outcome(
            self.name,
            "rps_ratio",
            "closed_loop",
            [n / d if d else 0.0 for n, d in zip(num, den, strict=True)],
            digits=3,
            minimum=self.minimum,
            detail=f"{_median(num):,.0f} / {_median(den):,.0f} req/s "
            f"({self.numerator} / {self.denominator})",
        )


@dataclass(frozen=True)
class AddedLatency:
    """One connection: percentile(slow) - percentile(fast) < maximum (ms)."""

    name: str
    slow: str
    fast: str
    percentile: str
    maximum_ms: float

    def evaluate(self, rps: Rounds, pct: PctRounds) -> dict[str, Any]:
        slow = [r[self.percentile] for r in pct[self.slow]]
        fast = [r[self.percentile] for r in pct[self.fast]]
        return _outcome(
            self.name,
            "added_latency_ms",
            "one_connection",
            [a - b for a, b in zip(slow, fast, strict=True)],
            digits=3,
            maximum=self.maximum_ms,
            unit=" ms",
            detail=f"p{self.percentile} {_median(slow):.3f} - {_median(fast):.3f} ms "
            f"({self.slow} - {self.fast})",
        )


@dataclass(frozen=True)
class MinRps:
    """Closed loop: the median req/s of `target` over rounds >= minimum. Absolute, so it
    moves with the machine: read it beside the floor ratio and the `disturbed` flag."""

    name: str
    target: str
    minimum: float

    def evaluate(self, rps: Rounds, pct: PctRounds) -> dict[str, Any]:
        values = rps[self.target]
        return _outcome(
            self.name,
            "rps",
            "closed_loop",
            values,
            digits=1,
            minimum=self.minimum,
            unit=" req/s",
            detail=f"{self.target}: {_median(values):,.0f} req/s",
        )


@dataclass(frozen=True)
class MaxLatency:
    """One connection: the median over rounds of percentile(target) < maximum (ms).
    Absolute (see MinRps)."""

    name: str
    target: str
    percentile: str
    maximum_ms: float

    def evaluate(self, rps: Rounds, pct: PctRounds) -> dict[str, Any]:
        values = [r[self.percentile] for r in pct[self.target]]
        return _outcome(
            self.name,
            "latency_ms",
            "one_connection",
            values,
            digits=3,
            maximum=self.maximum_ms,
            unit=" ms",
            detail=f"{self.target}: p{self.percentile} {_median(values):.3f} ms",
        )


Check = RpsRatio | AddedLatency | MinRps | MaxLatency


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    targets: tuple[Target, ...]
    floors: tuple[str, ...] = ("ping",)
    checks: tuple[Check, ...] = ()
    notes: tuple[str, ...] = ()
    # Creates the data the scenario needs (an organization, an API key, a price...)
    # against the running stack and returns the scenario with its targets filled in.
    # Called with the base URLs by name (`gateway`, `floor`, `catalog`, ...) once per run,
    # before the preflight. See bench/fixtures.py for helpers.
    prepare: Callable[[dict[str, str]], Scenario] | None = None
    # Run only when named (`--scenario <name>`), not by a bare `make bench`: for scenarios
    # whose data takes minutes to prepare.
    opt_in: bool = False


# --- the floor -------------------------------------------------------------------------

FLOOR_TARGETS: dict[str, Target] = {
    "ping": Target(
        name="floor_ping",
        label="floor: bare FastAPI GET /ping (JSON, no DB)",
        base="floor",
        path="/ping",
        procs=("floor",),
    ),
    "items": Target(
        name="floor_items",
        label="floor: bare FastAPI + asyncpg POST /items (one INSERT ... RETURNING)",
        base="floor",
        path="/items",
        method="POST",
        body=json.dumps({"name": "bench", "amount": 100}).encode(),
        headers={"Content-Type": "application/json"},
        expected=frozenset({201}),
        procs=("floor",),
    ),
}

# --- the registry ----------------------------------------------------------------------

SCENARIOS: dict[str, Scenario] = {}


def register(scenario: Scenario) -> Scenario:
    if scenario.name in SCENARIOS:
        raise ValueError(f"scenario {scenario.name} registered twice")
    names = [t.name for t in scenario.targets] + [FLOOR_TARGETS[f].name for f in scenario.floors]
    if len(set(names)) != len(names):
        raise ValueError(f"scenario {scenario.name}: duplicate target names")
    SCENARIOS[scenario.name] = scenario
    return scenario


# The gateway answers its own /healthz, so the proxy hop is measured on a proxied path
# that does no database work. The services' public routes all open a database
# connection before anything else, and the gateway answers an anonymous request for an
# authenticated route itself (401, never forwarded), so the hop is measured on a path under
# a prefix the gateway forwards without credentials and that no service defines: /sdk/...
# goes to checkout, which answers 404 with the contract's JSON error body through its
# whole middleware stack (request context, metrics, tracing, idempotency pass-through for
# GET, error handler) and touches no database. Same request directly and through the
# gateway: the difference is the hop. 404 is the expected status; the preflight fails
# loudly if that changes.
PROXIED_NO_DB_PATH = "/sdk/v1/_bench/not-found"

register(
    Scenario(
        name="gateway_healthz",
        description=(
            "Gateway overhead: a proxied no-DB request through the gateway vs the same "
            "request straight to the service, plus the gateway's own /healthz."
        ),
        targets=(
            Target(
                name="gateway_self",
                label="gateway GET /healthz (answered by the gateway itself, no hop)",
                base="gateway",
                path="/healthz",
                procs=("gateway",),
            ),
            Target(
                name="direct",
                label="checkout GET <unrouted path> directly (404 JSON, no DB)",
                base="checkout",
                path=PROXIED_NO_DB_PATH,
                expected=frozenset({404}),
                procs=("checkout",),
                note="404 is expected: no service defines this path (a no-DB request)",
            ),
            Target(
                name="via_gateway",
                label="gateway GET <unrouted path> -> checkout (404 JSON, one hop)",
                base="gateway",
                path=PROXIED_NO_DB_PATH,
                expected=frozenset({404}),
                procs=("gateway", "checkout"),
                note="404 is expected: it is checkout's answer, carried back by the proxy",
            ),
            Target(
                name="service_healthz",
                label="checkout GET /healthz directly (200, no DB)",
                base="checkout",
                path="/healthz",
                procs=("checkout",),
            ),
        ),
        floors=("ping",),
        checks=(
            RpsRatio("gateway_rps_ratio", "via_gateway", "direct", 0.5),
            AddedLatency("gateway_added_p50", "via_gateway", "direct", "50", 0.5),
            AddedLatency("gateway_added_p99", "via_gateway", "direct", "99", 1.5),
        ),
        notes=(
            f"The proxied request is GET {PROXIED_NO_DB_PATH}: the gateway routes it to "
            "checkout, which answers 404 (the contract's JSON error body) without database "
            "work. 404 is the expected status of `direct` and `via_gateway`; any other "
            "status is an error.",
        ),
    )
)

register(
    Scenario(
        name="floor",
        description=(
            "The floor on its own: bare FastAPI GET /ping and FastAPI + asyncpg POST /items "
            "(compare with the floor in bench/README.md)."
        ),
        targets=(),
        floors=("ping", "items"),
        checks=(),
    )
)
