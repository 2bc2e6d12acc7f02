"""Assembly only: settings, runtime, workers, routes."""

from fastapi import FastAPI

from bos_common.app import ServiceRuntime
from tokens import internal_api, models, worker
from tokens.api import router
from tokens.settings import TokensSettings


def build_runtime(settings: TokensSettings | None = None) -> ServiceRuntime:
    settings = settings or TokensSettings()
    settings.session_keys()  # fail at start on a malformed BOS_SESSION_SECRETS
    runtime = ServiceRuntime(settings, metadata=models.metadata)
    worker.register(runtime)
    return runtime


def create_app(runtime: ServiceRuntime | None = None) -> FastAPI:
    return (runtime or build_runtime()).create_app(router, internal_api.router)


def __getattr__(name: str) -> FastAPI:
    # `uvicorn tokens.app:app` builds the app on first access, so importing this module
    # (tests, migrations) does not read the environment.
    if name == "app":
        return create_app()
    raise AttributeError(name)
