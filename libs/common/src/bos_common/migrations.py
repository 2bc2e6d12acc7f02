"""Alembic support shared by every service: one schema per service, the version table
inside it, and the infrastructure tables (outbox, inbox, idempotency keys) as frozen,
versioned migration steps so an old migration never changes under a later edit."""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from alembic.operations import Operations
from sqlalchemy import MetaData, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

SERVICES_WITH_SCHEMA = ("tokens", "catalog", "checkout", "subscriptions", "webhooks")


def create_infrastructure_tables_v1(op: Operations, schema: str) -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("org_id", sa.String(64)),
        sa.Column("envelope", postgresql.JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
        schema=schema,
    )
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["id"],
        schema=schema,
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(200), nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox"),
        schema=schema,
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("headers", postgresql.JSONB),
        sa.Column("body", sa.LargeBinary),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("principal", "key", name="pk_idempotency_keys"),
        schema=schema,
    )


def run_env(target_metadata: MetaData, schema: str) -> None:
    """Body of every service's `migrations/env.py` (online mode, asyncpg)."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is not configured"

    def do_run(connection: Connection) -> None:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        connection.execute(text(f'SET search_path TO "{schema}"'))
        connection.commit()
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table_schema=schema,
            # Autogenerate looks at this service's schema only, never another's.
            include_schemas=True,
            include_name=lambda name, type_, _: type_ != "schema" or name == schema,
            compare_type=True,
        )
        with context.begin_transaction():
            # Two replicas migrating at once must not both run a step.
            context.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))").bindparams(s=schema))
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(url)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    asyncio.run(run())


def migrations_dir(service: str) -> Path:
    """services/<name>/migrations, found from the installed (editable) package."""
    module = importlib.import_module(service)
    assert module.__file__
    return Path(module.__file__).resolve().parents[2] / "migrations"


def alembic_config(service: str, database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir(service)))
    cfg.set_main_option("sqlalchemy.url", database_url)
    return cfg


def upgrade(service: str, database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(service, database_url), revision)


# A role name the grant statements may quote: what Postgres accepts unquoted, no more.
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_$]{0,62}$")


def grant_statements(schema: str, role: str) -> list[str]:
    """What the services' runtime role may do in a schema migrated by another role: read
    and write rows, use sequences, never create, alter or drop (no CREATE on the schema,
    not the owner of its tables)."""
    if not _ROLE_NAME.fullmatch(role):
        raise ValueError(f"not a plain role name: {role!r}")
    return [
        f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"',
        f'REVOKE CREATE ON SCHEMA "{schema}" FROM "{role}"',
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"',
        f'GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA "{schema}" TO "{role}"',
    ]


def grant_runtime_role(service: str, database_url: str, role: str) -> None:
    statements = grant_statements(service, role)

    async def run() -> None:
        engine = create_async_engine(database_url)
        async with engine.begin() as connection:
            for statement in statements:
                await connection.execute(text(statement))
        await engine.dispose()

    asyncio.run(run())


def main(argv: list[str]) -> int:
    """Migrates with MIGRATIONS_DATABASE_URL (the role that owns the schemas) when set,
    else DATABASE_URL; with BOS_RUNTIME_DB_ROLE set, then grants that role row access only
    (the role in the services' DATABASE_URL, which then has no DDL rights)."""
    url = os.environ.get("MIGRATIONS_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not url:
        print("MIGRATIONS_DATABASE_URL (or DATABASE_URL) is not set", file=sys.stderr)
        return 2
    runtime_role = os.environ.get("BOS_RUNTIME_DB_ROLE")
    if runtime_role and not _ROLE_NAME.fullmatch(runtime_role):
        print(f"BOS_RUNTIME_DB_ROLE is not a plain role name: {runtime_role!r}", file=sys.stderr)
        return 2
    services = list(SERVICES_WITH_SCHEMA) if argv in ([], ["all"]) else argv
    for service in services:
        upgrade(service, url)
        if runtime_role:
            grant_runtime_role(service, url, runtime_role)
        print(f"migrated {service}" + (f", granted {runtime_role}" if runtime_role else ""))
    return 0
