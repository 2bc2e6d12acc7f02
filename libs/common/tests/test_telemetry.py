"""Metrics by route template, exposition output, and W3C traceparent handling."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client.parser import text_string_to_metric_families

from bos_common import telemetry
from bos_common.context import RequestContextMiddleware
from bos_common.errors import install_error_handlers
from bos_common.telemetry import (
    FASTAPI_TELEMETRY,
    LinkedRootSampler,
    ServerTelemetryMiddleware,
    build_tracer_provider,
    context_from_traceparent,
    current_traceparent,
    linked_span,
    metrics_response,
    sampled_traceparent,
    setup_tracing,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
INCOMING = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"


@pytest.fixture(autouse=True)
def no_stack_tracing_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tracing as configured by nothing: `make test` exports its stack's OTEL_* settings
    (a sampler that records only what a client asks for), which the SDK reads."""
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_BSP_SCHEDULE_DELAY",
    ):
        monkeypatch.delenv(name, raising=False)


def make_app(service: str, tracer_provider: TracerProvider | None = None) -> FastAPI:
    app = FastAPI(telemetry=FASTAPI_TELEMETRY)
    install_error_handlers(app)

    products = APIRouter(prefix="/v1/products")

    @products.get("/{id}")
    async def get_product(id: str) -> dict[str, str]:
        return {"id": id}

    prices = APIRouter(prefix="/prices")

    @prices.get("/{price_id}")
    async def get_price(price_id: str) -> dict[str, str]:
        return {"id": price_id}

    nested = APIRouter(prefix="/v1/catalog")
    nested.include_router(prices)

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("boom")

    @app.get("/metrics")
    async def metrics() -> object:
        return metrics_response()

    @app.get("/healthz")
    async def healthz() -> dict[str, str | None]:
        return {"traceparent": current_traceparent()}

    @app.get("/v1/echo")
    async def echo() -> dict[str, str | None]:
        return {"traceparent": current_traceparent()}

    app.include_router(products)
    app.include_router(nested)
    app.add_middleware(ServerTelemetryMiddleware, service=service, tracer_provider=tracer_provider)
    app.add_middleware(RequestContextMiddleware)
    return app


def client_for(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def request_counts(exposition: str, service: str) -> dict[tuple[str, str, str], float]:
    counts: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(exposition):
        if family.name != "http_request_duration_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_count") and sample.labels["service"] == service:
                key = (sample.labels["method"], sample.labels["route"], sample.labels["status"])
                counts[key] = sample.value
    return counts


async def test_metrics_use_route_templates() -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"
    async with client_for(make_app(service)) as client:
        for pid in ("prod_1", "prod_2", "prod_3"):
            assert (await client.get(f"/v1/products/{pid}")).status_code == 200
        assert (await client.get("/v1/catalog/prices/price_9")).status_code == 200
        assert (await client.get("/no/such/path/123")).status_code == 404
        assert (await client.post("/v1/products/prod_1")).status_code == 405
        assert (await client.get("/crash")).status_code == 500
        assert (await client.request("BREW", "/v1/products/x")).status_code == 405
        resp = await client.get("/metrics")

    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    counts = request_counts(resp.text, service)
    assert counts[("GET", "/v1/products/{id}", "200")] == 3
    assert counts[("GET", "/v1/catalog/prices/{price_id}", "200")] == 1
    assert counts[("GET", "unmatched", "404")] == 1
    assert counts[("POST", "/v1/products/{id}", "405")] == 1
    assert counts[("GET", "/crash", "500")] == 1
    assert counts[("OTHER", "/v1/products/{id}", "405")] == 1
    # No raw ids ever become label values.
    assert "prod_1" not in resp.text and "price_9" not in resp.text


async def test_buckets_resolve_sub_millisecond() -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"
    async with client_for(make_app(service)) as client:
        await client.get("/v1/products/p")
    text = metrics_response().body.decode()
    assert 'le="0.0005"' in text and 'le="0.001"' in text and 'le="10.0"' in text


async def test_several_apps_share_one_registry() -> None:
    # Building many apps (as service test suites do) must not re-register metrics.
    services = [f"svc-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    for service in services:
        async with client_for(make_app(service)) as client:
            await client.get("/v1/products/p")
    text = metrics_response().body.decode()
    for service in services:
        assert request_counts(text, service)[("GET", "/v1/products/{id}", "200")] == 1


def test_histogram_get_or_create_survives_reimport() -> None:
    before = telemetry.HTTP_REQUEST_DURATION
    assert telemetry._get_or_create_histogram() is before
    reloaded = importlib.reload(telemetry)
    assert reloaded.HTTP_REQUEST_DURATION is before


def test_multiprocess_exposition(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    resp = metrics_response()
    assert resp.status_code == 200  # empty dir: valid, empty exposition


# --------------------------------------------------------------------------- tracing


@pytest.fixture
def local_tracer() -> trace.Tracer:
    # A private provider: spans become current without touching the global one.
    return TracerProvider().get_tracer("test")


def test_no_traceparent_outside_a_span() -> None:
    assert current_traceparent() is None


def test_traceparent_round_trip(local_tracer: trace.Tracer) -> None:
    with local_tracer.start_as_current_span("producer") as producer:
        tp = current_traceparent()
        ctx = producer.get_span_context()
    # Flags come from the SDK (sampled; newer SDKs also set the W3C "random" bit).
    flags = f"{ctx.trace_flags:02x}"
    assert tp == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{flags}"

    parent = context_from_traceparent(tp)
    with local_tracer.start_as_current_span("consumer", context=parent) as consumer:
        child = consumer.get_span_context()
        assert current_traceparent() == f"00-{ctx.trace_id:032x}-{child.span_id:016x}-{flags}"
    assert child.trace_id == ctx.trace_id
    assert isinstance(consumer, ReadableSpan)
    assert consumer.parent is not None and consumer.parent.span_id == ctx.span_id


@pytest.mark.parametrize(
    "bad", [None, "", "garbage", "00-xyz-abc-01", f"00-{'0' * 32}-{'0' * 16}-01"]
)
def test_bad_traceparent_starts_a_new_trace(local_tracer: trace.Tracer, bad: str | None) -> None:
    parent = context_from_traceparent(bad)
    assert not trace.get_current_span(parent).get_span_context().is_valid
    with local_tracer.start_as_current_span("root", context=parent) as span:
        assert isinstance(span, ReadableSpan)
        assert span.parent is None


def test_build_tracer_provider_exports_only_when_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    quiet = build_tracer_provider("svc")
    assert quiet.resource.attributes["service.name"] == "svc"
    assert quiet._active_span_processor._span_processors == ()

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    exporting = build_tracer_provider("svc")
    processors = exporting._active_span_processor._span_processors
    assert len(processors) == 1 and isinstance(processors[0], BatchSpanProcessor)
    exporting.shutdown()


@pytest.fixture
def global_tracing(monkeypatch: pytest.MonkeyPatch) -> Iterator[TracerProvider]:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    yield setup_tracing("bos-test")


def test_setup_tracing_is_idempotent(global_tracing: TracerProvider) -> None:
    assert setup_tracing("other-name") is global_tracing
    assert trace.get_tracer_provider() is global_tracing


async def test_server_span_joins_an_incoming_traceparent(
    global_tracing: TracerProvider,
) -> None:
    async with client_for(make_app("bos-test")) as client:
        joined = (await client.get("/v1/echo", headers={"traceparent": INCOMING})).json()
        fresh = (await client.get("/v1/echo")).json()
        probe = (await client.get("/healthz", headers={"traceparent": INCOMING})).json()

    assert joined["traceparent"].split("-")[1] == TRACE_ID
    assert joined["traceparent"].split("-")[2] != PARENT_SPAN_ID  # a child, not the parent
    assert fresh["traceparent"] is not None and TRACE_ID not in fresh["traceparent"]
    assert probe["traceparent"] is None  # health probes are not traced


def test_without_an_exporter_spans_have_ids_but_are_not_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    tracer = build_tracer_provider("svc").get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        assert not span.is_recording()
        assert span.get_span_context().is_valid
        assert current_traceparent() is not None


async def test_recorded_server_span_describes_the_request() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with client_for(make_app("bos-test", provider)) as client:
        ok = await client.get(
            "/v1/products/prod_1", headers={"traceparent": INCOMING, "x-request-id": "req_a"}
        )
        assert (await client.get("/crash")).status_code == 500
        await client.get("/healthz")

    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"GET /v1/products/{id}", "GET /crash"}  # no span for probes
    span = spans["GET /v1/products/{id}"]
    assert span.kind is SpanKind.SERVER
    assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT_SPAN_ID
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "http.route": "/v1/products/{id}",
        "url.path": "/v1/products/prod_1",
        "http.response.status_code": 200,
        "bos.request_id": ok.headers["x-request-id"],
    }
    crash = spans["GET /crash"]
    assert crash.status.status_code is StatusCode.ERROR
    assert [e.name for e in crash.events] == ["exception"]


def recording_provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    """Sampled only where a client asks (the stack's test setting), links included."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=LinkedRootSampler(ParentBased(ALWAYS_OFF)))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_a_span_linked_to_a_recorded_one_is_recorded_in_a_trace_of_its_own() -> None:
    provider, exporter = recording_provider()
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("confirm", context=context_from_traceparent(INCOMING)):
        carried = sampled_traceparent()
    assert carried is not None and TRACE_ID in carried

    with linked_span("stripe.event", carried, {"stripe.event_type": "x"}, tracer=tracer):
        assert current_traceparent() is not None
    spans = {s.name: s for s in exporter.get_finished_spans()}
    event = spans["stripe.event"]
    assert event.parent is None and format(event.context.trace_id, "032x") != TRACE_ID
    [link] = event.links
    assert link.context.span_id == spans["confirm"].context.span_id
    assert dict(event.attributes or {}) == {"stripe.event_type": "x"}


def test_a_link_to_an_unrecorded_span_records_nothing_and_no_traceparent_starts_nothing() -> None:
    provider, exporter = recording_provider()
    tracer = provider.get_tracer("test")
    unsampled = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-00"
    with tracer.start_as_current_span("confirm", context=context_from_traceparent(unsampled)):
        assert sampled_traceparent() is None
    with linked_span("stripe.event", unsampled, tracer=tracer):
        assert not trace.get_current_span().is_recording()
    with linked_span("stripe.event", None, tracer=tracer):
        assert not trace.get_current_span().get_span_context().is_valid
    assert exporter.get_finished_spans() == ()


def test_inside_a_recorded_span_the_linked_span_is_its_child() -> None:
    provider, exporter = recording_provider()
    tracer = provider.get_tracer("test")
    other = f"00-{'ab' * 16}-{'cd' * 8}-01"
    with tracer.start_as_current_span("request", context=context_from_traceparent(INCOMING)):
        with linked_span("stripe.event", other, tracer=tracer):
            pass
    spans = {s.name: s for s in exporter.get_finished_spans()}
    event = spans["stripe.event"]
    assert event.parent is not None and event.parent.span_id == spans["request"].context.span_id
    assert format(event.links[0].context.trace_id, "032x") == "ab" * 16


def test_the_exporting_provider_keeps_the_configured_sampler_behind_the_link_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_always_off")
    provider = build_tracer_provider("svc")
    # By name: another test re-imports this module, so classes may not be identical.
    assert provider.sampler.get_description() == (
        "LinkedRootSampler{ParentBased{root:AlwaysOffSampler,remoteParentSampled:"
        "AlwaysOnSampler,remoteParentNotSampled:AlwaysOffSampler,localParentSampled:"
        "AlwaysOnSampler,localParentNotSampled:AlwaysOffSampler}}"
    )
    provider.shutdown()
