"""Assembly only: settings, runtime, worker, routes."""

from fastapi import FastAPI
from starlette.middleware import Middleware

from webhooks.api import router
from webhooks.endpoints import consumers as endpoint_consumers
from webhooks.endpoints.api import router as endpoints_router
from webhooks.fastpath import StripeWebhookFastPath
from webhooks.runtime import WebhooksRuntime
from webhooks.settings import WebhooksSettings
from webhooks.worker import reconcile_forever


def build_runtime(settings: WebhooksSettings | None = None) -> WebhooksRuntime:
    runtime = WebhooksRuntime(settings or WebhooksSettings())

    @runtime.worker
    async def reconcile() -> None:
        await reconcile_forever(runtime)

    endpoint_consumers.register(runtime, runtime.merchant)
    runtime.worker(runtime.merchant.run_forever)
    runtime.worker(runtime.merchant.watch_backlog_forever)
    runtime.worker(runtime.merchant.notifier.run_forever)
    return runtime


def create_app(runtime: WebhooksRuntime | None = None) -> FastAPI:
    runtime = runtime or build_runtime()
    app = runtime.create_app(router, endpoints_router)
    runtime.install_fast_paths(app, middleware=[Middleware(StripeWebhookFastPath, runtime=runtime)])
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn webhooks.app:app` builds the app on first access, so importing this module
    # (tests, migrations) does not read the environment.
    if name == "app":
        return create_app()
    raise AttributeError(name)
