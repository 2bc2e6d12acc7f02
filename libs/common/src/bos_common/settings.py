"""Service settings: environment only, one class per service, fail fast on missing values."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """What every BOS process needs. Required fields have no default, so a missing
    variable stops the process at start with a message naming it."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    service_name: ClassVar[str] = "bos"

    internal_secret: str = Field(validation_alias="BOS_INTERNAL_SECRET", min_length=16)
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    log_json: bool = Field(default=True, validation_alias="LOG_JSON")


class ServiceSettings(CommonSettings):
    """A service that owns a Postgres schema and talks to the bus."""

    database_url: str = Field(validation_alias="DATABASE_URL")
    amqp_url: str = Field(validation_alias="AMQP_URL")
    db_pool_size: int = Field(default=10, validation_alias="DB_POOL_SIZE", ge=1, le=100)
    bus_prefetch: int = Field(default=32, validation_alias="BUS_PREFETCH", ge=1, le=1000)
    run_workers: bool = Field(default=True, validation_alias="RUN_WORKERS")

    @property
    def db_schema(self) -> str:
        return self.service_name
