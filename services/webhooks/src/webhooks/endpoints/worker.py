"""The delivery worker: claims due deliveries (endpoints locked with SKIP LOCKED while
claiming, each delivery leased, so replicas share the work), posts each signed per
Standard Webhooks, records the outcome and schedules the retry. Bounded: requests in
flight per endpoint (counted across replicas by the claim) and in all (per replica), each
with a timeout; it runs beside the service's consumers and never holds a transaction
during a request, so a slow merchant slows only its own deliveries."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter as Tally
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from prometheus_client import Counter, Gauge, Histogram
from standardwebhooks.webhooks import Webhook

from bos_common.auth import Identity
from bos_common.batching import GroupCommit
from bos_common.errors import BOSError
from bos_common.internal import InternalClient
from webhooks.endpoints import catalogue, repository, service
from webhooks.endpoints.addresses import PublicOnlyResolver, RefusedAddress, check_url
from webhooks.endpoints.notice import DisabledNotifier
from webhooks.endpoints.rows import ClaimedDelivery, SigningSecrets
from webhooks.settings import WebhooksSettings

log = logging.getLogger("webhooks.merchant")

ATTEMPTS = Counter(
    "bos_merchant_webhook_attempts_total",
    "Merchant webhook delivery attempts, by outcome: succeeded, retrying (failed, tried "
    "again later), failed (attempts exhausted).",
    ["outcome"],
)
PENDING = Gauge(
    "bos_merchant_webhook_pending",
    "Deliveries to enabled endpoints waiting: for their first attempt (state=new) or for a "
    "retry (state=retrying, the retry backlog).",
    ["state"],
)
OLDEST_PENDING = Gauge(
    "bos_merchant_webhook_oldest_pending_seconds",
    "Age of the oldest delivery never attempted yet: how far the worker is behind.",
)
LAG = Histogram(
    "bos_merchant_webhook_delivery_lag_seconds",
    "From the event to its successful delivery.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400),
)
DISABLED = Counter(
    "bos_merchant_webhook_endpoints_disabled_total", "Endpoints disabled after days of failures."
)
BACKLOG_INTERVAL_SECONDS = 15.0
# Past the request timeout, how long a claimed delivery stays away from other replicas.
LEASE_MARGIN_SECONDS = 30.0
# After a wake-up, how long the worker waits before claiming: the attempts that end and the
# deliveries planned meanwhile make one claim (a transaction of two statements) instead of
# one each.
CLAIM_LINGER_SECONDS = 0.01
# How soon a delivery whose object is not ready (catalogue.is_ready) looks again.
NOT_READY_RETRY_SECONDS = 0.5
# What is kept of a failing answer's body, for the merchant's deliveries list.
ERROR_EXCERPT = 200


def signature_header(
    signing: SigningSecrets, msg_id: str, at: datetime, payload: str, now: datetime
) -> str:
    """`v1,<sig>` with the current secret, and with the previous one while its overlap
    lasts (space-separated, as Standard Webhooks allows): either verifies."""
    secrets = [signing.secret]
    if signing.previous_secret and (signing.previous_secret_expires_at or now) > now:
        secrets.append(signing.previous_secret)
    return " ".join(Webhook(s).sign(msg_id, at, payload) for s in secrets)


class NotReady(Exception):
    """The event's object does not show the event's fact yet."""


class MerchantDelivery:
    def __init__(self, settings: WebhooksSettings, db: Any) -> None:
        self.settings = settings
        self.db = db
        self._wake = asyncio.Event()
        self._in_flight: Tally[str] = Tally()
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None
        # Successes that finish together are recorded by one statement.
        self._successes: GroupCommit[tuple[str, int, int], None] = GroupCommit(
            self._record_successes, writers=2, max_batch=256, name="merchant-webhook-successes"
        )
        self._services: dict[str, InternalClient] = {}
        for name, url in (
            ("checkout", settings.checkout_url),
            ("subscriptions", settings.subscriptions_url),
        ):
            if url:
                self._services[name] = InternalClient(
                    url, caller="webhooks", secret=settings.internal_secret
                )
        self.notifier = DisabledNotifier(
            db,
            InternalClient(settings.tokens_url, caller="webhooks", secret=settings.internal_secret),
            settings.smtp_url,
            settings.mail_from,
        )

    def wake(self) -> None:
        self._wake.set()

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            resolver = None if self.settings.allow_private_endpoints else PublicOnlyResolver()
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.settings.merchant_webhook_concurrency,
                    limit_per_host=self.settings.merchant_webhook_endpoint_concurrency,
                    resolver=resolver,
                ),
                timeout=aiohttp.ClientTimeout(total=self.settings.merchant_webhook_timeout_seconds),
            )
        return self._http

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self._successes.close()
        if self._http is not None:
            await self._http.close()
        for client in self._services.values():
            await client.close()
        await self.notifier.close()

    # --- the loop --------------------------------------------------------------------------

    async def run_forever(self) -> None:
        poll = self.settings.merchant_webhook_poll_seconds
        while True:
            # Cleared before claiming: a wake during the claim makes the next wait return.
            self._wake.clear()
            try:
                more = await self.claim_and_start()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - database down: try again after a pause
                log.warning("claiming merchant webhook deliveries failed: %s", exc)
                more = False
            if more:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=poll)
            except TimeoutError:
                continue
            await asyncio.sleep(CLAIM_LINGER_SECONDS)

    async def claim_and_start(self) -> bool:
        """Claims and starts what is due and has room; True when it filled every free slot
        (more may be due), False when it found less (what is due waits for a wake-up)."""
        settings = self.settings
        free = settings.merchant_webhook_concurrency - len(self._tasks)
        if free <= 0:
            return False
        per_endpoint = settings.merchant_webhook_endpoint_concurrency
        busy = [e for e, n in self._in_flight.items() if n >= per_endpoint]
        async with self.db.transaction() as session:
            rows = await repository.claim_due(
                session,
                limit=free,
                per_endpoint=per_endpoint,
                busy=busy,
                lease=settings.merchant_webhook_timeout_seconds * 2 + LEASE_MARGIN_SECONDS,
            )
        for row in rows:
            self._in_flight[row.endpoint_id] += 1
            task = asyncio.create_task(self._attempt_guarded(row))
            self._tasks.add(task)
            task.add_done_callback(self._done(row.endpoint_id))
        return len(rows) >= free

    def _done(self, endpoint_id: str) -> Any:
        def done(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            self._in_flight[endpoint_id] -= 1
            if self._in_flight[endpoint_id] <= 0:
                del self._in_flight[endpoint_id]
            self._wake.set()  # a slot is free

        return done

    async def _attempt_guarded(self, row: ClaimedDelivery) -> None:
        try:
            await self.attempt(row)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the lease expires and the delivery is tried again
            log.exception("merchant webhook delivery %s failed unexpectedly", row.id)

    # --- one attempt ----------------------------------------------------------------------

    async def attempt(self, row: ClaimedDelivery) -> None:
        started = time.monotonic()
        status_code: int | None = None
        try:
            payload = row.payload or await self._render(row)
            check_url(
                row.url,
                require_https=self.settings.is_production,
                allow_private=self.settings.allow_private_endpoints,
            )
            status_code, error = await self._post(row, payload)
        except NotReady:
            async with self.db.transaction() as session:
                await repository.postpone(session, row.id, NOT_READY_RETRY_SECONDS)
            return
        except RefusedAddress as exc:
            error = str(exc)
        except BOSError as exc:
            error = f"the event's object could not be read: {exc.code}"
        ok = status_code is not None and 200 <= status_code < 300
        duration_ms = int((time.monotonic() - started) * 1000)
        await self._record(row, ok, status_code, error, duration_ms)

    async def _render(self, row: ClaimedDelivery) -> str:
        """The event's body, made once (the first attempt of any of its deliveries) and
        stored, so every attempt sends the same bytes."""
        kind = row.object_kind
        if kind == "refund":
            obj = catalogue.refund_object(row.data)
        elif kind in catalogue.OBJECT_ROUTES:
            service_name, path = catalogue.OBJECT_ROUTES[kind]
            client = self._services.get(service_name)
            if client is None:
                raise BOSError("object_unavailable", f"{service_name} is not configured")
            # The organization's view of the object, as its API key would GET it.
            as_org = Identity(principal_type="api_key", principal_id="webhooks", org_id=row.org_id)
            _, obj = await client.request("GET", path.format(id=row.object_id), on_behalf_of=as_org)
            age = (datetime.now(UTC) - row.created_at).total_seconds()
            if not catalogue.is_ready(kind, obj) and age < catalogue.READY_WAIT_SECONDS:
                raise NotReady
        else:
            obj = row.data
        created = int(row.created_at.timestamp())
        payload = orjson.dumps(catalogue.body(row.event_id, row.type, created, obj)).decode()
        async with self.db.transaction() as session:
            return await repository.set_payload(session, row.event_id, payload)

    async def _post(self, row: ClaimedDelivery, payload: str) -> tuple[int | None, str | None]:
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": "BOS-Webhooks/1",
            "webhook-id": row.event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature_header(row.signing, row.event_id, now, payload, now),
        }
        try:
            async with self._client().post(
                row.url, data=payload.encode(), headers=headers, allow_redirects=False
            ) as resp:
                if 200 <= resp.status < 300:
                    return resp.status, None
                text = (await resp.content.read(ERROR_EXCERPT)).decode("utf-8", "replace")
                return resp.status, text or None
        except TimeoutError:
            return None, "timed out"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            # ValueError: a URL aiohttp cannot use (it was accepted at registration).
            return None, f"connection failed: {exc}"[:ERROR_EXCERPT]

    async def _record(
        self,
        row: ClaimedDelivery,
        ok: bool,
        status_code: int | None,
        error: str | None,
        duration_ms: int,
    ) -> None:
        now = datetime.now(UTC)
        if ok and status_code is not None:
            await self._successes.submit((row.id, status_code, duration_ms))
            ATTEMPTS.labels("succeeded").inc()
            LAG.observe(max(0.0, (now - row.created_at).total_seconds()))
            return
        attempts = row.attempts + 1
        async with self.db.transaction() as session:
            failing_since = await repository.endpoint_failed(session, row.endpoint_id)
            outcome = service.after_attempt(
                self.settings, ok=False, attempts=attempts, failing_since=failing_since, now=now
            )
            await repository.record_attempt(
                session,
                row.id,
                status=outcome.status,
                status_code=status_code,
                error=error,
                duration_ms=duration_ms,
                next_attempt_at=outcome.next_attempt_at,
                delivered=False,
            )
            disabled = None
            if outcome.disable_endpoint:
                disabled = await repository.disable_endpoint(
                    session,
                    row.endpoint_id,
                    f"every delivery failed since {failing_since:%Y-%m-%dT%H:%M:%SZ}",
                )
        ATTEMPTS.labels("retrying" if outcome.status == "pending" else "failed").inc()
        if disabled:
            DISABLED.inc()
            log.warning(
                "merchant webhook endpoint disabled after days of failures",
                extra={"endpoint_id": row.endpoint_id, "org_id": row.org_id},
            )
            self.notifier.wake()

    async def _record_successes(self, rows: list[tuple[str, int, int]]) -> list[None]:
        async with self.db.transaction() as session:
            await repository.record_successes(session, rows)
        return [None] * len(rows)

    # --- metrics --------------------------------------------------------------------------

    async def watch_backlog_forever(self) -> None:
        while True:
            try:
                async with self.db.transaction() as session:
                    fresh, retrying, age = await repository.backlog(session)
                PENDING.labels("new").set(fresh)
                PENDING.labels("retrying").set(retrying)
                OLDEST_PENDING.set(age)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - measured again next round
                log.warning("measuring the merchant webhook backlog failed: %s", exc)
            await asyncio.sleep(BACKLOG_INTERVAL_SECONDS)
