"""Assembly only: settings, runtime, consumers, routes."""

from fastapi import FastAPI

from bos_common.app import ServiceRuntime
from catalog import consumers, models
from catalog.api import FAST_ROUTES, internal_router, router
from catalog.settings import CatalogSettings


def build_runtime(settings: CatalogSettings | None = None) -> ServiceRuntime:
    runtime = ServiceRuntime(settings or CatalogSettings(), metadata=models.metadata)
    consumers.register(runtime)
    return runtime


def create_app(runtime: ServiceRuntime | None = None) -> FastAPI:
    runtime = runtime or build_runtime()
    app = runtime.create_app(router, internal_router)
    runtime.install_fast_paths(app, routes=FAST_ROUTES)  # see api.FAST_ROUTES
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn catalog.app:app` builds the app on first access, so importing this module
    # (tests, migrations) does not read the environment.
    if name == "app":
        return create_app()
    raise AttributeError(name)
