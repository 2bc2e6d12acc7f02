"""Test helpers shared by BOS test suites.

    with run_simulator(webhook_endpoints=[("http://127.0.0.1:9000/hook", "whsec_x")]) as base:
        stripe.api_base = base

``run_simulator`` starts ``python -m stripe_sim`` as a subprocess on a free port (fast webhook
retries on by default), waits for ``/healthz`` and stops it (SIGTERM, then SIGKILL) on exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import httpx

START_TIMEOUT_SECONDS = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(
    base_url: str,
    process: subprocess.Popen[bytes] | None = None,
    timeout: float = START_TIMEOUT_SECONDS,
) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"stripe-sim exited with code {process.returncode}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last_error = exc
        time.sleep(0.05)
    raise TimeoutError(f"stripe-sim did not become healthy at {base_url}: {last_error}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@dataclass(frozen=True)
class SimProcess:
    base_url: str
    process: subprocess.Popen[bytes]

    def cpu_seconds(self) -> float:
        """User + system CPU time the simulator process has used (Linux ``/proc``)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def run_simulator(
    port: int | None = None,
    webhook_endpoints: Iterable[tuple[str, ...]] = (),
    *,
    state_file: str | Path | None = None,
    fast_retries: bool = True,
    extra_env: Mapping[str, str] | None = None,
    log_file: str | Path | None = None,
) -> Iterator[str]:
    """Run the simulator as a subprocess and yield its base URL (``http://127.0.0.1:<port>``).
    Endpoints are ``(url, secret)``, ``(url, secret, "connect")`` or ``(url, secret, types,
    "connect")`` (the fields of ``STRIPE_SIM_WEBHOOK_ENDPOINTS``)."""
    with start_simulator(
        port,
        webhook_endpoints,
        state_file=state_file,
        fast_retries=fast_retries,
        extra_env=extra_env,
        log_file=log_file,
    ) as sim:
        yield sim.base_url


@contextlib.contextmanager
def start_simulator(
    port: int | None = None,
    webhook_endpoints: Iterable[tuple[str, ...]] = (),
    *,
    state_file: str | Path | None = None,
    fast_retries: bool = True,
    extra_env: Mapping[str, str] | None = None,
    log_file: str | Path | None = None,
    start_timeout: float = START_TIMEOUT_SECONDS,
) -> Iterator[SimProcess]:
    """Like ``run_simulator`` but yields the process handle too."""
    port = port or free_port()
    env = dict(os.environ)
    env.update(
        {
            "STRIPE_SIM_PORT": str(port),
            "STRIPE_SIM_WEBHOOK_ENDPOINTS": ",".join("|".join(e) for e in webhook_endpoints),
            "STRIPE_SIM_FAST_RETRIES": "1" if fast_retries else "0",
        }
    )
    if state_file is not None:
        env["STRIPE_SIM_STATE_FILE"] = str(state_file)
    else:
        env.pop("STRIPE_SIM_STATE_FILE", None)
    env.update(extra_env or {})
    with contextlib.ExitStack() as stack:
        output: int | IO[bytes] = subprocess.DEVNULL
        if log_file:
            output = stack.enter_context(open(log_file, "ab"))
        process = subprocess.Popen(
            [sys.executable, "-m", "stripe_sim", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=output,
        )
        stack.callback(_stop, process)
        base_url = f"http://127.0.0.1:{port}"
        wait_healthy(base_url, process, start_timeout)
        yield SimProcess(base_url, process)


@dataclass
class Received:
    """One webhook request as the receiver saw it."""

    path: str
    body: bytes
    signature: str | None
    status: int
    event_id: str | None
    event_type: str | None
    account: str | None
    at: float


@dataclass
class _PathPlan:
    fail_first: int = 0
    status: int = 500
    seen: dict[str, int] = field(default_factory=dict)


class WebhookReceiver:
    """A local HTTP endpoint recording webhook deliveries (threaded, stdlib only).

    ``verifier(body, signature_header)`` may raise to reject a delivery with 400 (tests pass
    ``stripe.Webhook.construct_event``). ``fail_first(path, n)`` answers 500 to the first ``n``
    attempts of each event on that path, so retries can be observed.
    """

    def __init__(self, verifier: Callable[[bytes, str], Any] | None = None) -> None:
        self.verifier = verifier
        self.received: list[Received] = []
        self._plans: dict[str, _PathPlan] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "receiver not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str = "/hook") -> str:
        return self.base_url + path

    def fail_first(self, path: str, count: int, status: int = 500) -> None:
        with self._lock:
            self._plans[path] = _PathPlan(fail_first=count, status=status)

    def _status_for(self, path: str, event_id: str | None) -> int:
        with self._lock:
            plan = self._plans.get(path)
            if plan is None or event_id is None:
                return 200
            seen = plan.seen.get(event_id, 0)
            plan.seen[event_id] = seen + 1
            return plan.status if seen < plan.fail_first else 200

    def _record(self, item: Received) -> None:
        with self._lock:
            self.received.append(item)

    def for_path(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def wait_for(
        self, predicate: Callable[[Received], bool], count: int = 1, timeout: float = 10.0
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                matches = [r for r in self.received if predicate(r)]
            if len(matches) >= count or time.monotonic() > deadline:
                return matches
            time.sleep(0.02)

    def __enter__(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (stdlib API)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                signature = self.headers.get("Stripe-Signature")
                event: dict[str, Any] = {}
                status = 200
                try:
                    if receiver.verifier is not None:
                        receiver.verifier(body, signature or "")
                    event = json.loads(body)
                except Exception:  # noqa: BLE001 - any verification failure is a 400
                    status = 400
                if status == 200:
                    status = receiver._status_for(self.path, event.get("id"))
                receiver._record(
                    Received(
                        self.path,
                        body,
                        signature,
                        status,
                        event.get("id"),
                        event.get("type"),
                        event.get("account"),
                        time.monotonic(),
                    )
                )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


# -- request parameters ----------------------------------------------------------------------


def confirmed_card_payment(amount: int, payment_method: str, **extra: Any) -> dict[str, Any]:
    """The parameters of a usd PaymentIntent confirmed at once with ``payment_method``,
    cards-only (nothing redirects, so no ``return_url`` is needed), plus ``extra``."""
    return {
        "amount": amount,
        "currency": "usd",
        "payment_method": payment_method,
        "confirm": True,
        "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        **extra,
    }


# -- request log -----------------------------------------------------------------------------

#: every kind of refusal the simulator tags: parameter names/types/values, ``Stripe-Version``,
#: Stripe's documented rules (return_url, ...), URLs Stripe does not have
REFUSALS = ("parameters", "version", "rule", "route")


def recorded_requests(base_url: str, *, refused_only: bool = False) -> list[dict[str, Any]]:
    """The ``/v1`` requests the simulator received (``GET /_sim/requests``), oldest first: each
    with ``method``, ``path``, ``stripe_account``, ``stripe_version``, ``idempotency_key``,
    ``params``, ``status``, ``error`` and ``refusal``."""
    query = {"refused": "true"} if refused_only else None
    response = httpx.get(f"{base_url}/_sim/requests", params=query, timeout=30)
    response.raise_for_status()
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def clear_recorded_requests(base_url: str) -> None:
    httpx.delete(f"{base_url}/_sim/requests", timeout=10).raise_for_status()


def describe_request(record: Mapping[str, Any]) -> str:
    error = record.get("error") or {}
    return (
        f"{record['method']} {record['path']} -> {record['status']} "
        f"[{record.get('refusal')}] {error.get('code') or ''} param={error.get('param')}: "
        f"{error.get('message')} (Stripe-Version {record.get('stripe_version')}, "
        f"Stripe-Account {record.get('stripe_account')}, params {json.dumps(record['params'])})"
    )


def assert_no_refused_requests(base_url: str, refusals: Iterable[str] = REFUSALS) -> None:
    """Fail, listing them, when the simulator refused any request for its parameters, its
    ``Stripe-Version`` or one of Stripe's documented rules (as Stripe would have)."""
    kinds = set(refusals)
    refused = [r for r in recorded_requests(base_url, refused_only=True) if r["refusal"] in kinds]
    if refused:
        listed = "\n".join(describe_request(r) for r in refused[:50])
        raise AssertionError(f"{len(refused)} request(s) Stripe would refuse:\n{listed}")


def assert_run_sent_nothing_refused(base_url: str) -> None:
    """For the end of a suite run against a shared simulator: it received requests, and
    none that Stripe would refuse."""
    log = httpx.get(f"{base_url}/_sim/requests", timeout=30).json()
    assert log["total"] > 0, "the simulator received no request: nothing was checked"
    assert_no_refused_requests(base_url)
