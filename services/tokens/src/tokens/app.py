"""Assembly only: settings, runtime, workers, routes."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware import Middleware

from bos_common.app import ServiceRuntime
from tokens import internal_api, models, worker
from tokens.api import router
from tokens.fastpath import SessionTokenFastPath
from tokens.settings import TokensSettings
from tokens.token_store import SessionTokenStore


def build_runtime(settings: TokensSettings | None = None) -> ServiceRuntime:
    settings = settings or TokensSettings()
    settings.session_keys()  # fail at start on a malformed BOS_SESSION_SECRETS
    runtime = ServiceRuntime(settings, metadata=models.metadata)
    worker.register(runtime)
    return runtime


def create_app(runtime: ServiceRuntime | None = None) -> FastAPI:
    runtime = runtime or build_runtime()
    app = runtime.create_app(router, internal_api.router)
    settings = runtime.settings
    assert isinstance(settings, TokensSettings)
    store = SessionTokenStore(runtime.db)
    app.state.session_token_store = store
    runtime.install_fast_paths(
        app,
        middleware=[
            Middleware(
                SessionTokenFastPath,
                store=store,
                keys=settings.session_keys(),
                secret=settings.internal_secret,
            )
        ],
    )
    service_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_lifespan(app):
            try:
                yield
            finally:
                await store.close()

    app.router.lifespan_context = lifespan
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn tokens.app:app` builds the app on first access, so importing this module
    # (tests, migrations) does not read the environment.
    if name == "app":
        return create_app()
    raise AttributeError(name)
