"""Assembly only: settings, runtime, consumers, workers, routes."""

from fastapi import FastAPI

from subscriptions import consumers
from subscriptions.api import router
from subscriptions.clock import Clock
from subscriptions.notifications import notification_loop
from subscriptions.runtime import SubscriptionsRuntime
from subscriptions.scheduler import scheduler_loop
from subscriptions.settings import SubscriptionsSettings


def build_runtime(
    settings: SubscriptionsSettings | None = None, *, clock: Clock | None = None
) -> SubscriptionsRuntime:
    runtime = SubscriptionsRuntime(
        # The environment gives the required fields (pydantic-settings).
        settings or SubscriptionsSettings(),  # type: ignore[call-arg, unused-ignore]
        clock=clock,
    )
    consumers.register(runtime)

    @runtime.worker
    async def billing_scheduler() -> None:
        await scheduler_loop(runtime)

    @runtime.worker
    async def customer_notifications() -> None:
        await notification_loop(runtime)

    return runtime


def create_app(runtime: SubscriptionsRuntime | None = None) -> FastAPI:
    return (runtime or build_runtime()).create_app(router)


def __getattr__(name: str) -> FastAPI:
    # `uvicorn subscriptions.app:app` builds the app on first access, so importing this module
    # (tests, migrations) does not read the environment.
    if name == "app":
        return create_app()
    raise AttributeError(name)
