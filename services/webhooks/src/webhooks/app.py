"""Assembly only: settings, runtime, consumers, routes."""

from fastapi import FastAPI

from bos_common.app import ServiceRuntime

from webhooks import models
from webhooks.api import router
from webhooks.settings import WebhooksSettings


def build_runtime(settings: WebhooksSettings | None = None) -> ServiceRuntime:
    return ServiceRuntime(settings or WebhooksSettings(), metadata=models.metadata)


def create_app(runtime: ServiceRuntime | None = None) -> FastAPI:
    return (runtime or build_runtime()).create_app(router)


def __getattr__(name: str) -> FastAPI:
    # `uvicorn webhooks.app:app` builds the app on first access, so importing this module
    # (tests, migrations) does not read the environment.
    if name == "app":
        return create_app()
    raise AttributeError(name)
