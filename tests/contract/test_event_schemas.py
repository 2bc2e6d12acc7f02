"""Contract: every event's JSON Schema is committed and frozen.

A producer that changes a payload in place, or a consumer that expects a field the
committed schema does not have, fails here: the change must ship as a new version."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest

from bos_common.events import Envelope, PaymentSucceededV1, json_schemas, registry

sys.path.insert(0, str(Path(__file__).parent))
from update_schemas import SCHEMAS, render, schema_path  # noqa: E402


@pytest.mark.parametrize("event_type", sorted(registry()))
def test_schema_is_committed_and_unchanged(event_type: str) -> None:
    path = schema_path(event_type)
    assert path.exists(), (
        f"{event_type} has no committed schema: run tests/contract/update_schemas.py"
    )
    current = render(json_schemas()[event_type])
    assert path.read_text() == current, (
        f"{event_type} changed in place. Published events are frozen: add "
        f"{event_type.rsplit('.v', 1)[0]}.v{int(event_type.rsplit('.v', 1)[1]) + 1} instead."
    )


def test_no_committed_schema_lost_its_event() -> None:
    """Removing an event breaks its consumers: retire it deliberately, not silently."""
    committed = {p.name.removesuffix(".json") for p in SCHEMAS.glob("*.json")}
    assert committed <= set(registry()), committed - set(registry())


def test_a_produced_payload_validates_against_the_committed_schema() -> None:
    event = PaymentSucceededV1(
        stripe_event_id="evt_1",
        payment_intent_id="pi_1",
        amount=5000,
        currency="usd",
        status="succeeded",
        stripe_created="2026-11-27T00:00:00Z",
        checkout_id="cs_1",
    )
    envelope = Envelope.wrap(event, producer="webhooks", org_id="org_1")
    schema = json.loads(schema_path(event.event_type).read_text())
    jsonschema.validate(envelope.model_dump(mode="json")["data"], schema)


def test_committed_schema_rejects_a_payload_missing_a_required_field() -> None:
    schema = json.loads(schema_path("payment.succeeded.v1").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"payment_intent_id": "pi_1"}, schema)
