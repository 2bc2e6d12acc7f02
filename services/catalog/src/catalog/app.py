"""Assembly only: settings, runtime, consumers, routes."""

from fastapi import FastAPI

from bos_common.app import ServiceRuntime
from catalog import consumers, models
from catalog.api import FAST_ROUTES, internal_router, router
from catalog.repository import ReadPool
from catalog.settings import CatalogSettings


class CatalogRuntime(ServiceRuntime):
    """The common runtime plus the asyncpg pool of the hot reads (repository.ReadPool)."""

    def __init__(self, settings: CatalogSettings) -> None:
        super().__init__(settings, metadata=models.metadata)
        self.reads = ReadPool(settings.database_url, settings.db_schema, settings.db_pool_size)

    async def stop(self) -> None:
        await self.reads.close()
        await super().stop()


def build_runtime(settings: CatalogSettings | None = None) -> CatalogRuntime:
    runtime = CatalogRuntime(settings or CatalogSettings())
    consumers.register(runtime)
    return runtime


def create_app(runtime: CatalogRuntime | None = None) -> FastAPI:
    app = (runtime or build_runtime()).create_app(router, internal_router)
    # First in line: the router tries its routes in order (see api.FAST_ROUTES).
    app.router.routes[0:0] = FAST_ROUTES
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn catalog.app:app` builds the app on first access, so importing this module
    # (tests, migrations) does not read the environment.
    if name == "app":
        return create_app()
    raise AttributeError(name)
