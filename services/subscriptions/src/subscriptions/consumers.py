"""Event handlers of the subscriptions service. Each runs once per event (inbox), in the
transaction that records its effects."""

from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.app import ServiceRuntime
from bos_common.events import Envelope, PaymentSucceededV1
from subscriptions import repository


async def record_payment_succeeded(session: AsyncSession, envelope: Envelope) -> None:
    event = envelope.payload()
    assert isinstance(event, PaymentSucceededV1)
    await repository.insert_payment_received(
        session,
        payment_intent_id=event.payment_intent_id,
        event_id=envelope.event_id,
        org_id=envelope.org_id,
        checkout_id=event.checkout_id,
        amount=event.amount,
        currency=event.currency,
    )


def register(runtime: ServiceRuntime) -> None:
    runtime.on_event("payments", PaymentSucceededV1.event_type)(record_payment_succeeded)
