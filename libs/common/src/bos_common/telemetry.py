"""Tracing (OpenTelemetry) and HTTP metrics (Prometheus).

Tracing: one SDK TracerProvider per process. With `OTEL_EXPORTER_OTLP_ENDPOINT` set,
spans are recorded and exported over OTLP/HTTP, and the HTTP clients and asyncpg get
client spans. Without it nothing would ever read a span, so none is recorded: spans are
still started (unsampled, with real ids), so logs carry trace ids and `traceparent`
still flows through HTTP, the outbox and the consumers.

Server side, one pure ASGI middleware (`ServerTelemetryMiddleware`) starts the server
span (joining an incoming `traceparent`) and observes
`http_request_duration_seconds{service,method,route,status}`, labelled with the route
template so cardinality stays bounded. It stands in for OpenTelemetry's FastAPI
instrumentation, which for the same one span matches the route a second time, builds
dozens of attributes and wraps every ASGI message.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final

from fastapi.telemetry import TelemetryConfig
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    generate_latest,
)
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bos_common.context import SCOPE_KEY as REQUEST_ID_SCOPE_KEY

__all__ = [
    "FASTAPI_TELEMETRY",
    "HTTP_REQUEST_DURATION",
    "ServerTelemetryMiddleware",
    "TRACEPARENT_METADATA_KEY",
    "build_tracer_provider",
    "context_from_traceparent",
    "current_traceparent",
    "exporting",
    "LinkedRootSampler",
    "instrument_clients",
    "linked_span",
    "sampled_traceparent",
    "metrics_response",
    "route_template",
    "setup_tracing",
]

# --------------------------------------------------------------------------- tracing

# FastAPI (>= 0.165) traces, meters and logs every request by itself as soon as a global
# TracerProvider exists, with a span per dependency, endpoint and serialisation step:
# turned off for `FastAPI(telemetry=FASTAPI_TELEMETRY)`, ServerTelemetryMiddleware
# does the one server span and the Prometheus histogram for a fraction of the cost.
FASTAPI_TELEMETRY: Final[TelemetryConfig] = {"tracing": False, "metrics": False, "logs": False}

# Paths that are probed constantly and would only add noise to traces.
EXCLUDED_PATHS: Final = frozenset({"/healthz", "/healthz/details", "/readyz", "/metrics"})

_lock = threading.Lock()
_provider: TracerProvider | None = None
_propagator: Final = TraceContextTextMapPropagator()


def exporting() -> bool:
    """True when spans leave the process (an OTLP endpoint is configured)."""
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


class LinkedRootSampler(Sampler):
    """`OTEL_TRACES_SAMPLER`'s sampler, except that a root span linked to a sampled span
    is sampled: work that continues another trace without being its child (a Stripe
    webhook about a confirm's payment) is recorded whenever that trace is."""

    def __init__(self, delegate: Sampler) -> None:
        self.delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if not parent.is_valid and any(link.context.trace_flags.sampled for link in links or ()):
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
        return self.delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"LinkedRootSampler{{{self.delegate.get_description()}}}"


def build_tracer_provider(service_name: str) -> TracerProvider:
    """A TracerProvider for `service_name`; records and exports only if configured."""
    resource = Resource.create({SERVICE_NAME: service_name})
    if not exporting():
        # Unsampled spans still get ids (logs, traceparent) but cost no recording.
        return TracerProvider(resource=resource, sampler=ParentBased(ALWAYS_OFF))
    # The sampler the OTEL_TRACES_SAMPLER* variables name (the SDK's own reading of them).
    configured = sampling._get_from_env_or_default()
    provider = TracerProvider(resource=resource, sampler=LinkedRootSampler(configured))
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


def instrument_clients(provider: TracerProvider) -> None:
    """Client spans for httpx, aiohttp's client and asyncpg, only when exporting: each
    costs tens of microseconds per call, for spans nobody reads otherwise. Our own
    clients (gateway proxy, InternalClient) send `traceparent` themselves either way.

    aio-pika is left out: opentelemetry-instrumentation-aio-pika supports aio_pika < 10
    only, and the outbox/consumer carry `traceparent` in the envelope themselves.
    """
    if not exporting():
        return
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


def current_traceparent() -> str | None:
    """W3C `traceparent` of the current span, or None outside any valid span."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


# The metadata key under which an object BOS creates at Stripe carries the recorded span
# that created it: Stripe's events about the object link their trace to it.
TRACEPARENT_METADATA_KEY: Final = "bos_traceparent"


def sampled_traceparent() -> str | None:
    """`current_traceparent()` if the current span is recorded, else None: what is worth
    carrying to where a later trace can link to it."""
    context = trace.get_current_span().get_span_context()
    return current_traceparent() if context.is_valid and context.trace_flags.sampled else None


@contextmanager
def linked_span(
    name: str,
    traceparent: str | None,
    attributes: Mapping[str, str] | None = None,
    *,
    tracer: trace.Tracer | None = None,
) -> Iterator[None]:
    """A span linked to the span `traceparent` names, current for the block: the trace of
    work caused by that span without being its child (a webhook from Stripe about a
    payment BOS started). It is the current span's child when that one is recorded, else
    a new trace, recorded when the linked one is. No traceparent: nothing is started."""
    linked = trace.get_current_span(context_from_traceparent(traceparent)).get_span_context()
    if not linked.is_valid:
        yield
        return
    current = trace.get_current_span().get_span_context()
    parent = None if current.is_valid and current.trace_flags.sampled else Context()
    with (tracer or trace.get_tracer("bos")).start_as_current_span(
        name, context=parent, links=[Link(linked)], attributes=dict(attributes or {})
    ):
        yield


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

# From half a millisecond up: most requests here are faster than the default buckets'
# first one (5 ms).
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


def _trace_headers(scope: Scope) -> tuple[str | None, str | None]:
    traceparent = tracestate = None
    for name, value in scope.get("headers", ()):
        if name == b"traceparent":
            traceparent = value.decode("latin-1")
        elif name == b"tracestate":
            tracestate = value.decode("latin-1")
    return traceparent, tracestate


class ServerTelemetryMiddleware:
    """The server span and the duration histogram of every HTTP request, in one pure ASGI
    wrapper. The route template is read after routing (Starlette stores the matched
    route in the scope), so the route is never matched twice."""

    def __init__(
        self, app: ASGIApp, service: str, tracer_provider: trace.TracerProvider | None = None
    ) -> None:
        self.app = app
        self.service = service
        self._tracer = trace.get_tracer("bos.http", tracer_provider=tracer_provider)
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

        method = scope.get("method", "")
        method = method if method in _KNOWN_METHODS else "OTHER"
        path = scope.get("path", "")
        span = None
        token = None
        if path not in EXCLUDED_PATHS:
            parent = context_from_traceparent(*_trace_headers(scope))
            span = self._tracer.start_span(method, context=parent, kind=SpanKind.SERVER)
            token = otel_context.attach(trace.set_span_in_context(span, parent))
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_recording_status)
        except BaseException as exc:
            if span is not None and span.is_recording():
                span.record_exception(exc)
            raise
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            self._child(method, route, str(status)).observe(elapsed)
            if span is not None:
                if span.is_recording():
                    _describe_server_span(span, scope, method, route, status)
                span.end()
            if token is not None:
                otel_context.detach(token)


def _describe_server_span(
    span: trace.Span, scope: Scope, method: str, route: str, status: int
) -> None:
    """Attributes of the HTTP semantic conventions that matter for a BOS request."""
    span.update_name(f"{method} {route}")
    attributes: dict[str, str | int] = {
        "http.request.method": method,
        "http.route": route,
        "url.path": scope.get("path", ""),
        "http.response.status_code": status,
    }
    request_id = scope.get(REQUEST_ID_SCOPE_KEY)
    if isinstance(request_id, str):
        attributes["bos.request_id"] = request_id
    span.set_attributes(attributes)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


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
