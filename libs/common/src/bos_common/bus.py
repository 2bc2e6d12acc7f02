"""The event bus on RabbitMQ (aio-pika).

Topology, all declared idempotently by whoever needs it:
- one durable topic exchange `bos.events`; the routing key is the event type;
- per consumer queue `<service>.<purpose>`: a durable quorum queue bound to the event
  types it handles, its dead-letter queue `<queue>.dlq`, and delayed retry tiers
  `<queue>.retry.<ms>` (classic queues with a message TTL that dead-letter back into the
  origin queue), so a failing message waits and comes back instead of spinning.

Delivery rules: publisher confirms on every publish; consumers ack manually, only after
their handler (which commits its own transaction) returns; a handler error re-publishes
the message to the next retry tier with `x-bos-attempt` incremented, and after
`max_attempts` to the DLQ, so a poison message never loops. A handler that raises
`NotReadyYet` (the event overtook the commit of the state it applies to: a race that
settles in milliseconds) is first retried in process after short pauses, the message still
unacked, before it takes the retry tiers like any failure.

Batches: a consumer with a `batch_handler` takes the messages that are already waiting
(up to `max_batch`) and hands them over together, so a burst costs one transaction, one
inbox claim and one commit instead of one of each per event (under load, those are
most of a consumer's cost and of Postgres'). An idle consumer handles
a lone message at once; a busy one (the previous message came less than `batch_linger`
ago) gives a lone message that long for company, since the next is about to arrive (as
Kafka's linger.ms: milliseconds of latency for a fraction of the CPU). A batch either
succeeds as a whole (then each message is acked) or leaves no trace (its transaction
rolled back), and then each of its messages is handled alone by the rules above, so only
the one that failed is retried and nothing is lost or done twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
)
from pamqp.commands import Basic
from prometheus_client import Counter, Histogram
from pydantic import ValidationError

from bos_common.events import Envelope

log = logging.getLogger("bos.bus")

EXCHANGE = "bos.events"
ATTEMPT_HEADER = "x-bos-attempt"
PERSISTENT = int(aio_pika.DeliveryMode.PERSISTENT)
ERROR_HEADER = "x-bos-last-error"

Handler = Callable[[Envelope], Awaitable[None]]
BatchHandler = Callable[[Sequence[Envelope]], Awaitable[None]]

CONSUMED = Counter(
    "bos_consumer_messages_total",
    "Messages handled by a consumer queue, by outcome.",
    ["service", "queue", "outcome"],
)

CONSUMER_OUTCOMES: Final = ("ok", "retry", "dead_letter", "dropped")

BATCH_SIZE = Histogram(
    "bos_consumer_batch_size",
    "Messages handled together by a batched consumer.",
    ["service", "queue"],
    buckets=(1, 2, 4, 8, 16, 32),
)


class NotReadyYet(Exception):  # noqa: N818 - a condition, not an error
    """Raised by a handler whose event arrived before what it applies to was committed
    (e.g. a payment webhook that overtook the confirm's own commit). Expected under load,
    not a fault: retried in process first, logged without a traceback."""


@dataclass(frozen=True)
class RetryPolicy:
    """Delays between attempts; attempts past the last tier reuse it."""

    delays_ms: tuple[int, ...] = (1_000, 5_000, 30_000)
    max_attempts: int = 5
    # In-process pauses before a `NotReadyYet` takes the tiers: the race usually settles
    # within one, and a trip through a retry queue (publish, confirm, TTL, redelivery,
    # a traceback in the log) cost several times the handler itself.
    not_ready_pauses_ms: tuple[int, ...] = (50, 150, 400)

    def delay_for(self, attempt: int) -> int:
        return self.delays_ms[min(attempt, len(self.delays_ms)) - 1]


@dataclass
class ConsumerSpec:
    queue: str
    routing_keys: Sequence[str]
    handler: Handler
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    prefetch: int = 32
    # A per-process queue (e.g. a gateway replica's cache invalidations): non-durable,
    # exclusive to its connection and deleted with it, so every replica gets its own copy
    # of each event. It has no DLQ or retry tiers: a failing handler's message is logged
    # and dropped, and whoever uses it reloads its state after every (re)connection
    # (`Bus.on_connected`), when events sent while it was away are gone.
    exclusive: bool = False
    # Set: messages already waiting are handled together (see the module docstring) by
    # `batch_workers` loops, each taking up to `max_batch`.
    batch_handler: BatchHandler | None = None
    max_batch: int = 16
    batch_workers: int = 4
    batch_linger: float = 0.005  # seconds; 0: never wait


class _Inflow:
    """The messages of one consumer channel on their way to the batch loops."""

    def __init__(self) -> None:
        self.waiting: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        # Delivery tags not acked or rejected yet (see `_ack_all`).
        self.unsettled: set[int] = set()
        # One loop at a time gathers a batch (the others handle theirs meanwhile): two
        # loops lingering side by side would each end up with half of it.
        self.gathering = asyncio.Lock()
        self.gap = float("inf")  # seconds between the last two arrivals
        self._last = float("-inf")

    def arrived(self, message: AbstractIncomingMessage) -> None:
        now = time.monotonic()
        self.gap, self._last = now - self._last, now
        if message.delivery_tag is not None:
            self.unsettled.add(message.delivery_tag)
        self.waiting.put_nowait(message)  # bounded by the prefetch

    async def next_batch(self, spec: ConsumerSpec) -> list[AbstractIncomingMessage]:
        async with self.gathering:
            messages = [await self.waiting.get()]
            if spec.batch_linger and self.waiting.empty() and self.gap < spec.batch_linger:
                await asyncio.sleep(spec.batch_linger)
            while len(messages) < spec.max_batch and not self.waiting.empty():
                messages.append(self.waiting.get_nowait())
            return messages


def retry_queue_name(queue: str, delay_ms: int) -> str:
    return f"{queue}.retry.{delay_ms}"


def _settled(unsettled: set[int], message: AbstractIncomingMessage) -> None:
    if message.delivery_tag is not None:
        unsettled.discard(message.delivery_tag)


async def _ack_all(messages: list[AbstractIncomingMessage], unsettled: set[int]) -> None:
    """Ack a batch with one `multiple` frame when no older message of the channel is still
    unsettled (another batch in flight), else one frame each: every frame is a write to
    the broker's socket, a cost per message comparable to the handler's own."""
    tags = {m.delivery_tag for m in messages if m.delivery_tag is not None}
    newest = max(messages, key=lambda m: m.delivery_tag or 0)
    if len(tags) == len(messages) and all(t in tags for t in unsettled if t <= max(tags)):
        await newest.ack(multiple=True)
    else:
        for message in messages:
            await message.ack()
    unsettled.difference_update(tags)


class Bus:
    """One connection per process, supervised: when the broker goes away the supervisor
    reconnects with backoff and declares the topology and consumers again. (aio-pika's
    robust connection was seen here leaving channels closed after a broker restart, so
    recovery is done explicitly.)"""

    def __init__(self, url: str, service: str) -> None:
        self.url = url
        self.service = service
        self._connection: AbstractConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        # aiormq's Channel itself: its basic_publish takes `wait` (publish_raw), its
        # abstract base's does not say so.
        self._publish_underlay: aiormq.Channel | None = None
        self._connected = asyncio.Event()
        self._consumers: list[ConsumerSpec] = []
        self._retired: list[str] = []
        self._supervisor: asyncio.Task[None] | None = None
        self._on_connected: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._callback_tasks: set[asyncio.Task[None]] = set()
        # Batch loops and the messages handled alone after a failed batch: tied to the
        # connection their messages came on (an ack is only valid on that channel).
        self._consumer_tasks: set[asyncio.Task[None]] = set()

    # --- connection ---------------------------------------------------------------

    def start(self) -> None:
        if self._supervisor is None:
            self._supervisor = asyncio.create_task(self._supervise(), name=f"{self.service}-bus")

    async def connect(self, timeout: float = 30.0) -> None:
        """Start the supervisor and wait until the first connection is up."""
        self.start()
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def _supervise(self) -> None:
        delay = 0.2
        while True:
            try:
                connection = await aio_pika.connect(
                    self.url, client_properties={"connection_name": self.service}
                )
            except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as exc:
                log.warning("bus connect failed, retrying in %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            closed = asyncio.Event()
            connection.close_callbacks.add(lambda *_, ev=closed: ev.set())
            try:
                self._connection = connection
                await self._open_publisher(connection)
                await self._delete_retired()
                for spec in self._consumers:
                    await self._start_consumer(connection, spec)
                self._connected.set()
                self._run_connected_callbacks()
                delay = 0.2
                log.info("bus connected", extra={"consumers": [c.queue for c in self._consumers]})
                await closed.wait()
                log.warning("bus connection lost; reconnecting")
            except (OSError, aio_pika.exceptions.AMQPError, RuntimeError) as exc:
                log.warning("bus setup failed: %s", exc)
            finally:
                self._connected.clear()
                self._exchange = None
                self._publish_underlay = None
                self._cancel_consumer_tasks()
                if not connection.is_closed:
                    with contextlib.suppress(Exception):
                        await connection.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _open_publisher(self, connection: AbstractConnection) -> None:
        self._publish_channel = await connection.channel(publisher_confirms=True)
        self._exchange = await self._publish_channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        underlay = await self._publish_channel.get_underlay_channel()
        assert isinstance(underlay, aiormq.Channel)
        self._publish_underlay = underlay

    def retire(self, queue: str) -> None:
        """`queue` had a consumer that is gone: delete it (and its retry queues) on every
        connection, so that the exchange stops routing events into a queue nobody reads.
        Its DLQ is kept for inspection."""
        self._retired.append(queue)

    async def _delete_retired(self) -> None:
        assert self._publish_channel is not None
        for queue in self._retired:
            for name in (queue, *(retry_queue_name(queue, d) for d in RetryPolicy().delays_ms)):
                await self._publish_channel.queue_delete(name)

    def on_connected(self, callback: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `callback` (as a task) after every (re)connection, once the consumers are
        declared and consuming: the place to reload state an exclusive queue may have
        missed while disconnected."""
        self._on_connected.append(callback)

    def _run_connected_callbacks(self) -> None:
        for callback in self._on_connected:
            task = asyncio.create_task(callback(), name=f"{self.service}-bus-connected")
            self._callback_tasks.add(task)
            task.add_done_callback(self._callback_done)

    def _callback_done(self, task: asyncio.Task[None]) -> None:
        self._callback_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("bus on_connected callback failed", exc_info=task.exception())

    @property
    def is_connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        await self._connected.wait()

    async def close(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        for task in list(self._callback_tasks):
            task.cancel()
        self._cancel_consumer_tasks()
        if self._connection is not None and not self._connection.is_closed:
            await self._connection.close()
        self._connection = None
        self._connected.clear()

    # --- publishing ---------------------------------------------------------------

    async def publish(self, envelope: Envelope, *, body: bytes | None = None) -> None:
        """Publish and wait for the broker's confirm (raises if not confirmed)."""
        await self.publish_raw(
            str(envelope.event_id),
            envelope.event_type,
            body if body is not None else envelope.model_dump_json().encode(),
            traceparent=envelope.traceparent,
        )

    async def publish_raw(
        self, event_id: str, event_type: str, body: bytes, *, traceparent: str | None = None
    ) -> None:
        """`publish` for a body that is already an envelope's JSON (the outbox relay's
        rows), without parsing and serializing it again."""
        if self._exchange is None or self._connection is None:
            raise ConnectionError("bus is not connected")
        if self._publish_channel is None or self._publish_channel.is_closed:
            await self._open_publisher(self._connection)
        assert self._publish_underlay is not None
        headers: dict[str, Any] = {ATTEMPT_HEADER: 1}
        if traceparent:
            headers["traceparent"] = traceparent
        # On aiormq's channel under aio-pika's, because aio-pika's Message and
        # Exchange.publish cost as much again as the publish itself and the relays publish
        # every event. Same frames and semantics as aio-pika's: persistent, confirmed (a
        # Basic.Nack raises DeliveryError), not mandatory (the broker drops an event
        # nobody subscribes to). `wait=False`: the frame is handed to the connection's
        # writer and the channel's lock released at once, instead of held until that frame
        # was written out, so a relay's batch goes out together rather than one message
        # per turn of a busy event loop. It still returns only after the broker's confirm.
        await self._publish_underlay.basic_publish(
            body,
            exchange=EXCHANGE,
            routing_key=event_type,
            properties=Basic.Properties(
                message_id=event_id,
                message_type=event_type,
                content_type="application/json",
                delivery_mode=PERSISTENT,
                headers=headers,
            ),
            wait=False,
        )

    async def _publish_to_queue(
        self, queue: str, message: AbstractIncomingMessage, headers: dict[str, Any]
    ) -> None:
        assert self._publish_channel is not None
        copy = aio_pika.Message(
            body=message.body,
            message_id=message.message_id,
            type=message.type,
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers={**(message.headers or {}), **headers},
        )
        await self._publish_channel.default_exchange.publish(copy, routing_key=queue)

    # --- topology and consuming ---------------------------------------------------

    async def declare_topology(self, spec: ConsumerSpec) -> None:
        channel = self._publish_channel
        assert channel is not None
        if spec.exclusive:
            exclusive = await channel.declare_queue(
                spec.queue, durable=False, exclusive=True, auto_delete=True
            )
            for key in spec.routing_keys:
                await exclusive.bind(EXCHANGE, routing_key=key)
            return
        await channel.declare_queue(
            f"{spec.queue}.dlq", durable=True, arguments={"x-queue-type": "quorum"}
        )
        for delay in sorted(set(spec.retry.delays_ms)):
            await channel.declare_queue(
                retry_queue_name(spec.queue, delay),
                durable=True,
                arguments={
                    "x-message-ttl": delay,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": spec.queue,
                },
            )
        queue = await channel.declare_queue(
            spec.queue,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                # A message rejected without requeue (unparseable) goes to the DLQ.
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": f"{spec.queue}.dlq",
                # Safety net for a consumer that crashes mid-message again and again.
                "x-delivery-limit": spec.retry.max_attempts * 2,
            },
        )
        for key in spec.routing_keys:
            await queue.bind(EXCHANGE, routing_key=key)

    async def consume(self, spec: ConsumerSpec) -> None:
        """Consume `spec.queue` now (when connected) and after every reconnect."""
        self._consumers.append(spec)
        # Every outcome's series exists from the start, at 0: an alert on the first dead
        # letter then sees an increase, not a series that appears at 1.
        for outcome in CONSUMER_OUTCOMES:
            CONSUMED.labels(self.service, spec.queue, outcome)
        if self._connection is not None and self.is_connected:
            await self._start_consumer(self._connection, spec)

    async def _start_consumer(self, connection: AbstractConnection, spec: ConsumerSpec) -> None:
        await self.declare_topology(spec)
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=spec.prefetch)
        queue = await channel.get_queue(spec.queue, ensure=False)
        if spec.batch_handler is not None and not spec.exclusive:
            inflow = _Inflow()
            for n in range(spec.batch_workers):
                self._spawn(self._batch_loop(spec, inflow), f"{spec.queue}-batch-{n}")

            async def enqueue(message: AbstractIncomingMessage) -> None:
                inflow.arrived(message)

            await queue.consume(enqueue, no_ack=False)
            return

        async def on_message(message: AbstractIncomingMessage) -> None:
            await self._handle(spec, message)

        await queue.consume(on_message, no_ack=False)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._consumer_tasks.add(task)
        task.add_done_callback(self._consumer_tasks.discard)

    def _cancel_consumer_tasks(self) -> None:
        # Their messages are unacked: the broker redelivers them on the next connection.
        for task in list(self._consumer_tasks):
            task.cancel()
        self._consumer_tasks.clear()

    async def _batch_loop(self, spec: ConsumerSpec, inflow: _Inflow) -> None:
        while True:
            messages = await inflow.next_batch(spec)
            BATCH_SIZE.labels(self.service, spec.queue).observe(len(messages))
            await self._handle_batch(spec, messages, inflow.unsettled)

    async def _handle_batch(
        self,
        spec: ConsumerSpec,
        messages: list[AbstractIncomingMessage],
        unsettled: set[int],
    ) -> None:
        """`unsettled`: the delivery tags of this channel not acked or rejected yet."""
        parsed = []
        for message in messages:
            envelope = await self._parse(spec, message)
            if envelope is not None:
                parsed.append((message, envelope))
            else:
                _settled(unsettled, message)
        if len(parsed) > 1:
            assert spec.batch_handler is not None
            try:
                await spec.batch_handler([envelope for _, envelope in parsed])
            except Exception as exc:  # noqa: BLE001 - each message is then handled alone
                log.debug(
                    "batch of %d failed, handling its messages one by one",
                    len(parsed),
                    extra={"queue": spec.queue, "error": f"{type(exc).__name__}: {exc}"[:300]},
                )
            else:
                await _ack_all([message for message, _ in parsed], unsettled)
                CONSUMED.labels(self.service, spec.queue, "ok").inc(len(parsed))
                return
            # Alone and concurrently, so this loop goes on with the next batch while one
            # of them waits out its in-process retries.
            for message, envelope in parsed:
                self._spawn(
                    self._handle_settling(spec, message, envelope, unsettled),
                    f"{spec.queue}-one",
                )
            return
        for message, envelope in parsed:
            await self._handle_settling(spec, message, envelope, unsettled)

    async def _handle_settling(
        self,
        spec: ConsumerSpec,
        message: AbstractIncomingMessage,
        envelope: Envelope,
        unsettled: set[int],
    ) -> None:
        try:
            await self._handle_parsed(spec, message, envelope)
        finally:
            _settled(unsettled, message)

    async def _parse(self, spec: ConsumerSpec, message: AbstractIncomingMessage) -> Envelope | None:
        try:
            return Envelope.model_validate_json(message.body)
        except ValidationError:
            log.error("unparseable message dead-lettered", extra={"queue": spec.queue})
            CONSUMED.labels(self.service, spec.queue, "dead_letter").inc()
            await message.reject(requeue=False)
            return None

    async def _handle(self, spec: ConsumerSpec, message: AbstractIncomingMessage) -> None:
        envelope = await self._parse(spec, message)
        if envelope is not None:
            await self._handle_parsed(spec, message, envelope)

    async def _handle_parsed(
        self, spec: ConsumerSpec, message: AbstractIncomingMessage, envelope: Envelope
    ) -> None:
        raw_attempt = (message.headers or {}).get(ATTEMPT_HEADER)
        attempt = int(raw_attempt) if isinstance(raw_attempt, int | str) and raw_attempt else 1
        try:
            await self._run_handler(spec, envelope)
        except Exception as exc:  # noqa: BLE001 - any handler failure is retried, never lost
            if spec.exclusive:
                log.warning(
                    "handler failed on an exclusive queue; message dropped",
                    exc_info=exc,
                    extra={"queue": spec.queue},
                )
                await message.ack()
                CONSUMED.labels(self.service, spec.queue, "dropped").inc()
                return
            await self._retry_or_dead_letter(spec, message, envelope, attempt, exc)
            return
        await message.ack()
        CONSUMED.labels(self.service, spec.queue, "ok").inc()

    async def _run_handler(self, spec: ConsumerSpec, envelope: Envelope) -> None:
        for pause_ms in spec.retry.not_ready_pauses_ms:
            try:
                await spec.handler(envelope)
                return
            except NotReadyYet:
                # Unacked meanwhile: a crash here means a redelivery, never a loss.
                await asyncio.sleep(pause_ms / 1000)
        await spec.handler(envelope)

    async def _retry_or_dead_letter(
        self,
        spec: ConsumerSpec,
        message: AbstractIncomingMessage,
        envelope: Envelope,
        attempt: int,
        exc: Exception,
    ) -> None:
        error = f"{type(exc).__name__}: {exc}"[:500]
        if attempt >= spec.retry.max_attempts:
            target, outcome = f"{spec.queue}.dlq", "dead_letter"
            log.error(
                "message dead-lettered after %d attempts",
                attempt,
                extra={"queue": spec.queue, "event_id": str(envelope.event_id), "error": error},
            )
        else:
            target = retry_queue_name(spec.queue, spec.retry.delay_for(attempt))
            outcome = "retry"
            log.warning(
                "handler failed, retrying",
                exc_info=None if isinstance(exc, NotReadyYet) else exc,
                extra={"queue": spec.queue, "event_id": str(envelope.event_id), "attempt": attempt},
            )
        try:
            await self._publish_to_queue(
                target, message, {ATTEMPT_HEADER: attempt + 1, ERROR_HEADER: error}
            )
        except Exception:  # noqa: BLE001
            # Could not park it: leave it unacked so the broker redelivers it.
            log.exception("could not publish to %s; message will be redelivered", target)
            await message.nack(requeue=True)
            return
        await message.ack()
        CONSUMED.labels(self.service, spec.queue, outcome).inc()
