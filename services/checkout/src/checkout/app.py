"""Assembly only: settings, runtime, consumers, workers, routes."""

from fastapi import FastAPI

from checkout import backfill, consumers, worker
from checkout.api import router
from checkout.page import router as page_router
from checkout.runtime import CheckoutRuntime
from checkout.settings import CheckoutSettings


def build_runtime(settings: CheckoutSettings | None = None) -> CheckoutRuntime:
    runtime = CheckoutRuntime(settings or CheckoutSettings())
    consumers.register(runtime)

    @runtime.worker
    async def expire_checkouts() -> None:
        await worker.every(
            runtime.settings.expiry_sweep_seconds, "expiry", lambda: worker.expire_once(runtime)
        )

    @runtime.worker
    async def backfill_subscription_projection() -> None:
        await backfill.until_backfilled(runtime)

    @runtime.worker
    async def release_transfers() -> None:
        await worker.every(
            runtime.settings.transfer_sweep_seconds,
            "transfers",
            lambda: worker.release_transfers_once(runtime),
        )

    @runtime.worker
    async def settle_orphaned_payments() -> None:
        await worker.every(
            runtime.settings.recovery_sweep_seconds,
            "recovery",
            lambda: worker.settle_orphaned_payments_once(runtime),
        )

    return runtime


def create_app(runtime: CheckoutRuntime | None = None) -> FastAPI:
    return (runtime or build_runtime()).create_app(router, page_router)


def __getattr__(name: str) -> FastAPI:
    # `uvicorn checkout.app:app` builds the app on first access, so importing this module
    # (tests, migrations) does not read the environment.
    if name == "app":
        return create_app()
    raise AttributeError(name)
