"""Assembly of the ASGI app (Starlette, the core FastAPI is built on: same routing, no import
cost of FastAPI's pydantic layer, which we do not use): routes, CORS for the fake Stripe.js,
lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute
from starlette.routing import Route as StarletteRoute

from . import api, controls
from .config import Config
from .resources import ROUTES
from .sim import Sim

EXPOSED_HEADERS = ["Request-Id", "Idempotency-Key", "Idempotent-Replayed", "Stripe-Version"]


def create_app(config: Config, sim: Sim | None = None) -> Starlette:
    sim = sim or Sim(config)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await sim.start()
        try:
            yield
        finally:
            await sim.stop()

    routes: list[BaseRoute] = [
        StarletteRoute(route.path, api.make_endpoint(sim, route), methods=[route.method])
        for route in ROUTES
    ]
    routes.extend(controls.routes(sim))
    routes.append(
        StarletteRoute(
            "/v1/{rest:path}",
            api.make_unknown_route(sim),
            methods=["GET", "POST", "DELETE", "PUT", "PATCH"],
        )
    )
    cors = Middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=EXPOSED_HEADERS,
    )
    app = Starlette(routes=routes, middleware=[cors], lifespan=lifespan)
    app.state.sim = sim
    return app
