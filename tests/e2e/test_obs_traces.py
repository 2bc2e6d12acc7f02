"""One paid checkout, one trace: a confirm sent through the gateway with a sampled
traceparent yields spans of that trace id in the gateway, checkout, the bus's consumers
(messaging spans), subscriptions and catalog, received by an in-process OTLP/HTTP
receiver (scripts/lib.sh points the stack's exporters at OTLP_TEST_PORT and samples only
what a client asks to). Stripe's webhook about the payment starts a trace of its own,
recorded and linked to the confirm's (the intent's metadata carries the confirm's span)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from merchant import Merchant
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from bos_common.testing import eventually

pytestmark = pytest.mark.e2e

SPAN_KIND_CONSUMER = 5  # opentelemetry.proto.trace.v1.Span.SpanKind.SPAN_KIND_CONSUMER


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str
    service: str
    name: str
    kind: int
    linked_traces: tuple[str, ...] = ()


@pytest.fixture
async def otlp_spans() -> AsyncIterator[list[ReceivedSpan]]:
    """Spans the stack exports, as an OTLP/HTTP (protobuf) receiver records them."""
    port = os.environ.get("OTLP_TEST_PORT")
    if not port:
        pytest.skip("the stack does not export to OTLP_TEST_PORT (run `make test`)")
    spans: list[ReceivedSpan] = []

    async def traces(request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in export.resource_spans:
            attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        ReceivedSpan(
                            span.trace_id.hex(),
                            attrs.get("service.name", ""),
                            span.name,
                            span.kind,
                            tuple(link.trace_id.hex() for link in span.links),
                        )
                    )
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(port)).start()
    try:
        yield spans
    finally:
        await runner.cleanup()


async def test_one_paid_checkout_is_one_trace_across_gateway_bus_and_services(
    merchant: Merchant, otlp_spans: list[ReceivedSpan]
) -> None:
    price = await merchant.price(2500)
    checkout = await merchant.checkout(price["id"])
    pm = await merchant.card()
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    r = await merchant.post(
        f"/v1/checkout-sessions/{checkout['id']}/confirm",
        {"payment_method": pm},
        traceparent=traceparent,
    )
    assert r.status_code == 200, r.text
    await merchant.wait_status(checkout["id"], "complete")

    wanted = {"gateway", "checkout", "subscriptions", "catalog"}

    async def whole_trace() -> list[ReceivedSpan] | None:
        ours = [s for s in otlp_spans if s.trace_id == trace_id]
        services = {s.service for s in ours}
        consumers = {s.service for s in ours if s.kind == SPAN_KIND_CONSUMER}
        return ours if wanted <= services and {"subscriptions", "catalog"} <= consumers else None

    ours = await eventually(whole_trace, timeout=20, interval=0.2)
    gateway_spans = [s for s in ours if s.service == "gateway"]
    assert any("proxy:checkout" in s.name for s in gateway_spans), gateway_spans

    # Stripe's webhook: a trace of its own (Stripe sends no traceparent), linked to the
    # confirm's, through intake and on to checkout's consumer of the payment's event.
    async def webhook_trace() -> list[ReceivedSpan] | None:
        linked = {
            s.trace_id
            for s in otlp_spans
            if s.name == "stripe.event" and trace_id in s.linked_traces
        }
        spans = [s for s in otlp_spans if s.trace_id in linked]
        consumers = {s.service for s in spans if s.kind == SPAN_KIND_CONSUMER}
        return spans if "checkout" in consumers else None

    webhook = await eventually(webhook_trace, timeout=20, interval=0.2)
    assert {s.service for s in webhook} >= {"webhooks", "checkout"}, webhook
    # Only those two were recorded: the unsampled requests above left no span.
    assert {s.trace_id for s in otlp_spans} == {trace_id} | {s.trace_id for s in webhook}
