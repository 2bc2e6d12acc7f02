"""Event handlers of the catalog service. Each runs once per event (inbox), in the
transaction that records its effects."""

from sqlalchemy.ext.asyncio import AsyncSession

from bos_common.app import ServiceRuntime
from bos_common.events import CheckoutCompletedV1, Envelope
from catalog import service


async def count_redemption(session: AsyncSession, envelope: Envelope) -> None:
    """A completed checkout with a coupon is one redemption of it (converts the lease the
    checkout reserved; a redelivered or late event finds the redemption and does nothing)."""
    event = envelope.payload()
    assert isinstance(event, CheckoutCompletedV1)
    await service.record_redemption(session, envelope.org_id, event, event_id=envelope.event_id)


def register(runtime: ServiceRuntime) -> None:
    runtime.on_event("redemptions", CheckoutCompletedV1.event_type)(count_redemption)
