"""Assembly only: settings, runtime, consumers, routes."""

from fastapi import FastAPI

from bos_common.app import ServiceRuntime

from subscriptions import consumers, models
from subscriptions.api import router
from subscriptions.settings import SubscriptionsSettings


def build_runtime(settings: SubscriptionsSettings | None = None) -> ServiceRuntime:
    runtime = ServiceRuntime(settings or SubscriptionsSettings(), metadata=models.metadata)
    consumers.register(runtime)
    return runtime


def create_app(runtime: ServiceRuntime | None = None) -> FastAPI:
    return (runtime or build_runtime()).create_app(router)


def __getattr__(name: str) -> FastAPI:
    # `uvicorn subscriptions.app:app` builds the app on first access, so importing this module
    # (tests, migrations) does not read the environment.
    if name == "app":
        return create_app()
    raise AttributeError(name)
