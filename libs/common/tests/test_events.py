from __future__ import annotations

import uuid
from typing import ClassVar

import pytest
from pydantic import ValidationError

from bos_common.events import Envelope, Event, PaymentSucceededV1, event_class, register


def payment() -> PaymentSucceededV1:
    return PaymentSucceededV1(
        stripe_event_id="evt_1",
        payment_intent_id="pi_1",
        amount=5000,
        currency="usd",
        status="succeeded",
        stripe_created="2026-11-27T00:00:00Z",
    )


def test_envelope_round_trips_through_json() -> None:
    envelope = Envelope.wrap(payment(), producer="webhooks", org_id="org_1", traceparent="00-x")
    back = Envelope.model_validate_json(envelope.model_dump_json())
    assert back == envelope
    assert back.payload() == payment()
    assert back.event_type == "payment.succeeded.v1"


def test_each_envelope_gets_its_own_id() -> None:
    a = Envelope.wrap(payment(), producer="p")
    b = Envelope.wrap(payment(), producer="p")
    assert a.event_id != b.event_id


def test_events_are_frozen_and_strict() -> None:
    with pytest.raises(ValidationError):
        PaymentSucceededV1(**payment().model_dump(), unexpected="field")
    with pytest.raises(ValidationError):
        payment().amount = 1  # type: ignore[misc]


def test_unknown_event_type_parses_as_envelope_but_not_as_payload() -> None:
    envelope = Envelope(
        event_id=uuid.uuid4(),
        event_type="thing.happened.v9",
        occurred_at="2026-11-27T00:00:00Z",
        producer="x",
        data={"a": 1},
    )
    with pytest.raises(LookupError):
        envelope.payload()


@pytest.mark.parametrize(
    "name", ["Payment.Succeeded.v1", "payment.succeeded", "payment.v1", "x.y.v0"]
)
def test_event_names_must_be_noun_verb_version(name: str) -> None:
    class Bad(Event):
        event_type: ClassVar[str] = name

    with pytest.raises(ValueError):
        register(Bad)


def test_registry_refuses_a_second_class_for_a_name() -> None:
    class Imposter(Event):
        event_type: ClassVar[str] = "payment.succeeded.v1"

    with pytest.raises(ValueError):
        register(Imposter)
    assert event_class("payment.succeeded.v1") is PaymentSucceededV1
