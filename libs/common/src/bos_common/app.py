"""Assembly of a BOS service: settings, database, bus, outbox relay, consumers,
workers, middleware and the operational endpoints (`/healthz`, `/readyz`,
`/healthz/details`, `/metrics`; what each means: `bos_common.health`).

A service declares its tables on `runtime.metadata`, its event handlers with
`@runtime.on_event(...)`, its background loops with `@runtime.worker`, and builds its
FastAPI app with `runtime.create_app(router)`. Nothing here knows a domain.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from bos_common.auth import Identity, request_identity
from bos_common.bus import Bus, ConsumerSpec, RetryPolicy
from bos_common.context import RequestContextMiddleware
from bos_common.db import Database
from bos_common.errors import ServiceUnavailable, install_error_handlers
from bos_common.events import Envelope, Event
from bos_common.health import DependencyMonitor
from bos_common.idempotency import IdempotencyMiddleware
from bos_common.inbox import (
    SessionHandler,
    SetHandler,
    each,
    idempotent,
    idempotent_batch,
    set_based,
)
from bos_common.logging import configure_logging
from bos_common.openapi import install as document_errors_of
from bos_common.outbox import OutboxRelay, add_event
from bos_common.settings import ServiceSettings
from bos_common.telemetry import (
    FASTAPI_TELEMETRY,
    ServerTelemetryMiddleware,
    instrument_clients,
    metrics_response,
    setup_tracing,
)
from bos_common.text_guard import TextGuardMiddleware

log = logging.getLogger("bos.app")

Worker = Callable[[], Coroutine[Any, Any, None]]


class ServiceRuntime:
    def __init__(self, settings: ServiceSettings, *, metadata: MetaData) -> None:
        """`metadata` is the service's (models.py), which declares the outbox, inbox
        and idempotency tables next to its own."""
        self.settings = settings
        self.name = settings.service_name
        self.metadata = metadata
        schema = settings.db_schema
        self.outbox = metadata.tables[f"{schema}.outbox"]
        self.inbox = metadata.tables[f"{schema}.inbox"]
        self.idempotency = metadata.tables[f"{schema}.idempotency_keys"]
        self.db = Database(
            settings.database_url, settings.db_schema, pool_size=settings.db_pool_size
        )
        self.bus = Bus(settings.amqp_url, self.name)
        self.relay = OutboxRelay(self.db, self.outbox, self.bus, service=self.name)
        self.consumers: list[ConsumerSpec] = []
        self.workers: list[Worker] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self.dependencies = DependencyMonitor(
            self.name, {"database": self._database_up, "rabbitmq": self._broker_up}
        )
        # Set once the bus has connected (and declared this service's queues) a first
        # time: before that, events published would find no queue to land in.
        self.started = asyncio.Event()

    # --- declaration ----------------------------------------------------------------

    def on_event(
        self,
        purpose: str,
        *event_types: str,
        retry: RetryPolicy | None = None,
        batch: bool = True,
    ) -> Callable[[SessionHandler], SessionHandler]:
        """Register an idempotent handler of one event on queue `<service>.<purpose>`.

        With `batch` (the default), events already waiting are handled together in one
        transaction (`bos_common.inbox.idempotent_batch`), the handler called once per
        event. Turn it off for a handler that calls out (e.g. charges a card on Stripe): a
        batch that rolls back because of another event would make that call again, and
        holds its transaction open during it.
        """

        def decorator(fn: SessionHandler) -> SessionHandler:
            queue = f"{self.name}.{purpose}"
            self._register(queue, event_types, each(fn, queue), retry, batch)
            return fn

        return decorator

    def on_events(
        self,
        purpose: str,
        *event_types: str,
        retry: RetryPolicy | None = None,
        batch_linger: float | None = None,
    ) -> Callable[[SetHandler], SetHandler]:
        """`on_event` for a set-based handler: called with all the new events of a batch
        at once (one event when it came alone), so it can do its work for all of them in
        a few statements instead of a few per event. `batch_linger` (seconds): how long a
        busy queue's batch waits for more events (`ConsumerSpec.batch_linger` otherwise),
        for a handler whose cost is mostly per batch and whose events can wait that long."""

        def decorator(fn: SetHandler) -> SetHandler:
            queue = f"{self.name}.{purpose}"
            self._register(
                queue, event_types, set_based(fn, queue), retry, batch=True, linger=batch_linger
            )
            return fn

        return decorator

    def retire_queue(self, purpose: str) -> None:
        """Queue `<service>.<purpose>` lost its consumer: it is deleted when the bus
        connects (`Bus.retire`), so existing deployments stop filling it."""
        self.bus.retire(f"{self.name}.{purpose}")

    def _register(
        self,
        queue: str,
        event_types: Sequence[str],
        handler: SetHandler,
        retry: RetryPolicy | None,
        batch: bool,
        linger: float | None = None,
    ) -> None:
        spec = ConsumerSpec(
            queue=queue,
            routing_keys=event_types,
            handler=idempotent(self.db, self.inbox, queue, handler),
            retry=retry or RetryPolicy(),
            prefetch=self.settings.bus_prefetch,
            batch_handler=(
                idempotent_batch(self.db, self.inbox, queue, handler) if batch else None
            ),
        )
        if linger is not None:
            spec.batch_linger = linger
        self.consumers.append(spec)

    def worker(self, fn: Worker) -> Worker:
        self.workers.append(fn)
        return fn

    async def publish(
        self, session: AsyncSession, event: Event, *, org_id: str | None = None
    ) -> Envelope:
        """Record an event in the caller's transaction (the outbox relays it)."""
        return await add_event(session, self.outbox, event, producer=self.name, org_id=org_id)

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        for spec in self.consumers:
            await self.bus.consume(spec)
        self.bus.start()
        self._tasks.append(asyncio.create_task(self._mark_started(), name=f"{self.name}-started"))
        self.dependencies.start()
        self._tasks.append(asyncio.create_task(self.relay.run(), name=f"{self.name}-outbox"))
        if self.settings.run_workers:
            for worker in self.workers:
                self._tasks.append(asyncio.create_task(worker(), name=worker.__name__))

    async def _mark_started(self) -> None:
        await self.bus.wait_connected()
        self.started.set()

    async def stop(self) -> None:
        await self.dependencies.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.relay.close()
        await self.bus.close()
        await self.db.dispose()

    async def _database_up(self) -> bool:
        await self.db.ping()
        return True

    async def _broker_up(self) -> bool:
        return self.bus.is_connected

    async def readiness(self) -> dict[str, str]:
        """What serving this service's own requests needs: its database, checked now, and
        a first connection to the broker at startup. Not the broker afterwards: while it
        is away the outbox keeps the events (bos_common.health)."""
        checks = {"database": "ok", "startup": "ok" if self.started.is_set() else "pending"}
        try:
            await asyncio.wait_for(self.db.ping(), timeout=2)
        except Exception:  # noqa: BLE001 - any failure means not ready
            checks["database"] = "down"
        return checks

    # --- the app ---------------------------------------------------------------------

    def create_app(self, *routers: APIRouter, title: str | None = None) -> FastAPI:
        configure_logging(self.name, self.settings.log_level, json=self.settings.log_json)
        instrument_clients(setup_tracing(self.name))

        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await self.start()
            yield
            await self.stop()

        app = FastAPI(
            title=title or f"BOS {self.name}",
            lifespan=lifespan,
            telemetry=FASTAPI_TELEMETRY,
            # operationId = the route function's name (`create_checkout_session`): stable,
            # and what a generated client names its methods.
            generate_unique_id_function=lambda route: route.name,
        )
        app.include_router(self.operations_router())
        for router in routers:
            app.include_router(router)
        install_error_handlers(app)
        document_errors_of(app)
        # Outermost first: request id, then the server span and the duration metric,
        # then the refusal of text PostgreSQL cannot store (before anything stores an
        # Idempotency-Key or a service's fast path reads the body), then idempotency
        # around the routes. Fast paths (install_fast_paths) come innermost.
        app.add_middleware(
            IdempotencyMiddleware,
            db=self.db,
            table=self.idempotency,
            secret=self.settings.internal_secret,
        )
        app.add_middleware(TextGuardMiddleware)
        app.add_middleware(ServerTelemetryMiddleware, service=self.name)
        app.add_middleware(RequestContextMiddleware)
        app.state.runtime = self
        return app

    def install_fast_paths(
        self,
        app: FastAPI,
        *,
        routes: Sequence[BaseRoute] = (),
        middleware: Sequence[Middleware] = (),
    ) -> None:
        """Hot paths served without FastAPI's per-request work (dependency solving,
        response validation), installed one way in every service. `routes`: plain
        Starlette routes tried before the app's own, whose FastAPI twins stay what the
        OpenAPI documents; `middleware`: innermost (appended, where add_middleware
        prepends), inside the request id, telemetry, text guard and Idempotency-Key
        middleware, right before the router, for a path answered from the raw request.
        Each must answer as the route it stands in for does: a parity test says so
        (`bos_common.testing.without_fast_paths` takes them out again for it)."""
        app.router.routes[0:0] = list(routes)
        app.user_middleware.extend(middleware)
        installed: list[BaseRoute | Middleware] = getattr(app.state, "fast_paths", [])
        app.state.fast_paths = [*installed, *routes, *middleware]

    def operations_router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)

        @router.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok", "service": self.name}

        @router.get("/readyz")
        async def readyz() -> dict[str, Any]:
            checks = await self.readiness()
            if any(v != "ok" for v in checks.values()):
                raise ServiceUnavailable(
                    "not_ready",
                    f"{self.name} is not ready: "
                    + ", ".join(k for k, v in checks.items() if v != "ok"),
                )
            return {"status": "ok", "service": self.name, "checks": checks}

        @router.get("/healthz/details")
        async def health_details() -> dict[str, Any]:
            """Internal: each dependency's state, checked now (200 even when degraded)."""
            await self.dependencies.check()
            ready = all(v == "ok" for v in (await self.readiness()).values())
            return self.dependencies.details(ready=ready)

        @router.get("/metrics")
        async def metrics() -> Response:
            return metrics_response()

        return router


# --- request-scoped dependencies for routes (the runtime lives on app.state) -----------


# Async on purpose: a plain `def` dependency runs in the thread pool, two hops per request.
async def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    runtime: ServiceRuntime = request.app.state.runtime
    async with runtime.db.transaction() as session:
        yield session


async def _identity(request: Request) -> Identity:
    runtime: ServiceRuntime = request.app.state.runtime
    return request_identity(request, runtime.settings.internal_secret)


Runtime = Annotated[ServiceRuntime, Depends(_runtime)]
# The transaction commits when the route returns and before the response is sent
# (scope="function"), so a failed commit is an error response, never a false success.
Session = Annotated[AsyncSession, Depends(_session, scope="function")]
CurrentIdentity = Annotated[Identity, Depends(_identity)]
