import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bos_common.bus import (
    ATTEMPT_HEADER,
    Bus,
    ConsumerSpec,
    NotReadyYet,
    RetryPolicy,
    _Inflow,
    retry_queue_name,
)
from bos_common.events import AccountUpdatedV1, Envelope


def test_retry_delays_follow_the_tiers_then_stay_on_the_last() -> None:
    policy = RetryPolicy(delays_ms=(100, 1000), max_attempts=5)
    assert [policy.delay_for(n) for n in (1, 2, 3, 4)] == [100, 1000, 1000, 1000]


def test_retry_queue_names_carry_queue_and_delay() -> None:
    assert retry_queue_name("subscriptions.payments", 5000) == "subscriptions.payments.retry.5000"


class _Message:
    """Just what Bus._handle reads of an incoming message."""

    tags = 0

    def __init__(self, body: bytes) -> None:
        self.body, self.headers = body, {ATTEMPT_HEADER: 1}
        _Message.tags += 1
        self.delivery_tag = _Message.tags
        self.acked = 0
        self.acked_multiple = False
        self.rejected = False

    async def ack(self, multiple: bool = False) -> None:
        self.acked += 1
        self.acked_multiple = multiple

    async def reject(self, requeue: bool = False) -> None:
        self.rejected = True


def _envelope_json() -> bytes:
    event = AccountUpdatedV1(
        stripe_event_id="evt_1",
        stripe_created=datetime.now(UTC),
        account_id="acct_1",
        charges_enabled=True,
        payouts_enabled=True,
    )
    return Envelope.wrap(event, producer="test").model_dump_json().encode()


def _parking_bus() -> tuple[Bus, list[str]]:
    """A bus whose retry-tier and DLQ publishes are only written down (queue names)."""
    bus = Bus("amqp://unused", "test")
    parked: list[str] = []

    async def park(queue: str, *_: Any) -> None:
        parked.append(queue)

    bus._publish_to_queue = park  # type: ignore[method-assign]
    return bus, parked


async def test_not_ready_yet_is_retried_in_process_then_handled_once() -> None:
    calls = 0

    async def handler(_envelope: Envelope) -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise NotReadyYet("the confirm has not committed yet")

    bus, parked = _parking_bus()
    spec = ConsumerSpec("test.q", ["x"], handler, RetryPolicy(not_ready_pauses_ms=(0, 0, 0)))
    message = _Message(_envelope_json())
    await bus._handle(spec, message)  # type: ignore[arg-type]
    assert (calls, message.acked, parked) == (3, 1, [])


async def test_not_ready_yet_past_the_in_process_pauses_takes_the_retry_tier() -> None:
    async def handler(_envelope: Envelope) -> None:
        raise NotReadyYet("still not committed")

    bus, parked = _parking_bus()
    policy = RetryPolicy(delays_ms=(1_000,), not_ready_pauses_ms=(0,))
    message = _Message(_envelope_json())
    await bus._handle(ConsumerSpec("test.q", ["x"], handler, policy), message)  # type: ignore[arg-type]
    assert parked == ["test.q.retry.1000"] and message.acked == 1


async def _settle(bus: Bus) -> None:
    while bus._consumer_tasks:
        await asyncio.gather(*list(bus._consumer_tasks))


async def test_a_batch_is_handled_by_one_call_and_every_message_acked() -> None:
    batches: list[int] = []

    async def one(_envelope: Envelope) -> None:
        raise AssertionError("a successful batch never falls back to one by one")

    async def many(envelopes: Sequence[Envelope]) -> None:
        batches.append(len(envelopes))

    bus = Bus("amqp://unused", "test")
    spec = ConsumerSpec("test.q", ["x"], one, batch_handler=many)
    messages = [_Message(_envelope_json()) for _ in range(5)]
    unsettled = {m.delivery_tag for m in messages}
    await bus._handle_batch(spec, messages, unsettled)  # type: ignore[arg-type]
    # The oldest unsettled messages of the channel: one `multiple` ack for all five.
    assert batches == [5] and [m.acked for m in messages] == [0, 0, 0, 0, 1]
    assert messages[-1].acked_multiple and unsettled == set()

    in_flight = _Message(_envelope_json())  # an older message another batch still holds
    messages = [_Message(_envelope_json()) for _ in range(3)]
    unsettled = {in_flight.delivery_tag} | {m.delivery_tag for m in messages}
    await bus._handle_batch(spec, messages, unsettled)  # type: ignore[arg-type]
    assert [(m.acked, m.acked_multiple) for m in messages] == [(1, False)] * 3
    assert unsettled == {in_flight.delivery_tag}


async def test_a_failed_batch_is_handled_one_by_one_and_only_the_failure_retried() -> None:
    bodies = [_envelope_json() for _ in range(4)]
    poisoned = Envelope.model_validate_json(bodies[2]).event_id
    handled: list[Any] = []

    async def one(envelope: Envelope) -> None:
        if envelope.event_id == poisoned:
            raise RuntimeError("this one fails")
        handled.append(envelope.event_id)

    async def many(envelopes: Sequence[Envelope]) -> None:
        for envelope in envelopes:
            await one(envelope)  # the transaction would roll back: nothing is kept
        raise AssertionError("unreachable")

    bus, parked = _parking_bus()
    messages = [_Message(body) for body in bodies]
    unsettled = {m.delivery_tag for m in messages}
    spec = ConsumerSpec("test.q", ["x"], one, RetryPolicy(delays_ms=(1_000,)), batch_handler=many)
    await bus._handle_batch(spec, messages, unsettled)  # type: ignore[arg-type]
    await _settle(bus)
    handled_alone = handled[2:]  # the batch's own attempt got the first two, then failed
    assert sorted(map(str, handled_alone)) == sorted(
        str(Envelope.model_validate_json(b).event_id) for i, b in enumerate(bodies) if i != 2
    )
    assert parked == ["test.q.retry.1000"]
    assert [m.acked for m in messages] == [1] * 4  # three handled, one parked in a tier
    assert unsettled == set()


async def test_an_unparseable_message_in_a_batch_is_dead_lettered_alone() -> None:
    batches: list[int] = []

    async def many(envelopes: Sequence[Envelope]) -> None:
        batches.append(len(envelopes))

    async def one(_envelope: Envelope) -> None:
        raise AssertionError("not reached")

    bus = Bus("amqp://unused", "test")
    messages = [_Message(_envelope_json()), _Message(b"{not json"), _Message(_envelope_json())]
    unsettled = {m.delivery_tag for m in messages}
    spec = ConsumerSpec("test.q", ["x"], one, batch_handler=many)
    await bus._handle_batch(spec, messages, unsettled)  # type: ignore[arg-type]
    assert batches == [2] and messages[1].rejected
    assert [m.acked for m in messages] == [0, 0, 1] and messages[2].acked_multiple
    assert unsettled == set()


async def test_a_busy_consumer_lingers_for_company_an_idle_one_does_not() -> None:
    spec = ConsumerSpec("test.q", ["x"], _never, batch_linger=0.05)
    idle = _Inflow()
    idle.arrived(_Message(_envelope_json()))  # alone after a long silence
    assert len(await idle.next_batch(spec)) == 1  # taken at once

    busy = _Inflow()
    busy.arrived(_Message(_envelope_json()))
    assert len(await busy.next_batch(spec)) == 1
    busy.arrived(_Message(_envelope_json()))  # right after the previous one: busy
    later = asyncio.get_running_loop().call_later(0.01, busy.arrived, _Message(_envelope_json()))
    try:
        assert len(await busy.next_batch(spec)) == 2  # waited for the next one
    finally:
        later.cancel()


async def _never(_envelope: Envelope) -> None:
    raise AssertionError("not called")
