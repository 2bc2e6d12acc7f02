"""Tracing (OpenTelemetry) and HTTP metrics (Prometheus).

Tracing: one SDK TracerProvider per process; spans are exported over OTLP/HTTP only
when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Without it spans still get real ids, so
logs carry trace ids and `traceparent` still flows through HTTP and the outbox.

Metrics: `http_request_duration_seconds{service,method,route,status}` from a pure ASGI
middleware, labelled with the route template so cardinality stays bounded.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Final

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    generate_latest,
)
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "HTTP_REQUEST_DURATION",
    "MetricsMiddleware",
    "build_tracer_provider",
    "context_from_traceparent",
    "current_traceparent",
    "instrument_app",
    "metrics_response",
    "route_template",
    "setup_tracing",
]

# --------------------------------------------------------------------------- tracing

# Paths that are probed constantly and would only add noise to traces.
EXCLUDED_URLS: Final = "/healthz$,/readyz$,/metrics$"

_lock = threading.Lock()
_provider: TracerProvider | None = None
_propagator: Final = TraceContextTextMapPropagator()


def build_tracer_provider(service_name: str) -> TracerProvider:
    """A TracerProvider for `service_name`; exports over OTLP/HTTP only if configured."""
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        # Imported lazily: the exporter pulls in protobuf, needless when not exporting.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # The exporter reads the endpoint (and headers, timeout) from the OTEL_* env.
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def setup_tracing(service_name: str) -> TracerProvider:
    """Installs the process-wide TracerProvider once; later calls return the same one."""
    global _provider
    with _lock:
        if _provider is not None:
            return _provider
        existing = trace.get_tracer_provider()
        if isinstance(existing, TracerProvider):
            # Someone (a test, opentelemetry-instrument) already set one up: reuse it.
            _provider = existing
            return existing
        provider = build_tracer_provider(service_name)
        trace.set_tracer_provider(provider)
        _provider = provider
        return provider


def _instrument_clients(provider: TracerProvider) -> None:
    """httpx, aiohttp-client and asyncpg: process-wide, so instrumented at most once.

    aio-pika is left out: opentelemetry-instrumentation-aio-pika supports aio_pika < 10
    only, and the outbox/consumer carry `traceparent` in the envelope themselves.
    """
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentors: tuple[Any, ...] = (
        HTTPXClientInstrumentor(),
        AioHttpClientInstrumentor(),
        AsyncPGInstrumentor(),  # type: ignore[no-untyped-call, unused-ignore]
    )
    for instrumentor in instrumentors:
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider)


def instrument_app(app: FastAPI, service_name: str) -> None:
    """Server spans for `app` (honouring an incoming `traceparent`) plus client spans.

    Call before the app serves its first request: the instrumentation wraps the
    middleware stack when Starlette builds it.
    """
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    provider = setup_tracing(service_name)
    if not getattr(app, "_is_instrumented_by_opentelemetry", False):
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=provider,
            excluded_urls=EXCLUDED_URLS,
            # One server span per request; per-ASGI-message spans cost more than they tell.
            exclude_spans=["receive", "send"],
        )
    _instrument_clients(provider)


def current_traceparent() -> str | None:
    """W3C `traceparent` of the current span, or None outside any valid span."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def context_from_traceparent(tp: str | None, tracestate: str | None = None) -> Context:
    """An otel Context whose span is the remote parent named by `tp`.

    A missing or malformed value gives an empty Context, so spans started under it
    begin a new trace rather than silently joining whatever is current.
    """
    if not tp:
        return Context()
    carrier = {"traceparent": tp}
    if tracestate:
        carrier["tracestate"] = tracestate
    return _propagator.extract(carrier, context=Context())


# --------------------------------------------------------------------------- metrics

# Requests here take 0.1 ms to a few hundred ms; the default buckets start at 5 ms.
LATENCY_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
_METRIC_NAME: Final = "http_request_duration_seconds"


def _get_or_create_histogram() -> Histogram:
    # Created once per process at import; the lookup covers a re-import (importlib
    # reloads in tests) that would otherwise raise "Duplicated timeseries".
    try:
        return Histogram(
            _METRIC_NAME,
            "HTTP request duration in seconds, by route template.",
            labelnames=("service", "method", "route", "status"),
            buckets=LATENCY_BUCKETS,
        )
    except ValueError:
        existing = REGISTRY._names_to_collectors.get(_METRIC_NAME)
        if isinstance(existing, Histogram):
            return existing
        raise


HTTP_REQUEST_DURATION: Final = _get_or_create_histogram()

_KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
UNMATCHED: Final = "unmatched"


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/v1/products/{id}`), or "unmatched".

    FastAPI >= 0.16x resolves routers included into routers lazily: `scope["route"]`
    is then the inner APIRoute whose `.path` lacks the outer prefixes, and the full
    template sits in the effective route context, which is preferred when present.
    """
    fastapi_scope = scope.get("fastapi")
    if isinstance(fastapi_scope, dict):
        effective = fastapi_scope.get("effective_route_context")
        path_format = getattr(effective, "path_format", None)
        if isinstance(path_format, str) and path_format:
            return path_format
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class MetricsMiddleware:
    """Observes every HTTP request's duration; route label is read after routing."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service
        # Histogram.labels() costs a few microseconds (lock, validation); the label sets
        # are few (routes x methods x statuses), so their children are cached here.
        self._children: dict[tuple[str, str, str], Histogram] = {}

    def _child(self, method: str, route: str, status: str) -> Histogram:
        key = (method, route, status)
        child = self._children.get(key)
        if child is None:
            child = HTTP_REQUEST_DURATION.labels(self.service, method, route, status)
            self._children[key] = child
        return child

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        status = 500  # if the app raises before starting a response, the server sends 500

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            elapsed = time.perf_counter() - started
            method = scope.get("method", "")
            self._child(
                method if method in _KNOWN_METHODS else "OTHER",
                route_template(scope),
                str(status),
            ).observe(elapsed)


def _registry() -> CollectorRegistry:
    # Several uvicorn workers: each writes its own files; the scrape merges them.
    multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not multiproc_dir:
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=multiproc_dir)  # type: ignore[no-untyped-call, unused-ignore]
    return registry


def metrics_response() -> Response:
    """Prometheus text exposition of this process's (or all workers') metrics."""
    return Response(content=generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)
