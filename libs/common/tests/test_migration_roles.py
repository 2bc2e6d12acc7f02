"""Migrations run as their own role; the services' runtime role gets row access only."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from bos_common import migrations
from bos_common.testing import Infra


def test_grants_give_row_access_and_take_schema_creation() -> None:
    statements = migrations.grant_statements("catalog", "bos_app")
    assert 'GRANT USAGE ON SCHEMA "catalog" TO "bos_app"' in statements
    assert 'REVOKE CREATE ON SCHEMA "catalog" FROM "bos_app"' in statements
    assert not any("ALL PRIVILEGES" in s or "GRANT CREATE" in s for s in statements)


@pytest.mark.parametrize("role", ['bos"; DROP SCHEMA catalog; --', "Bos", "", "1bos"])
def test_a_role_name_that_would_need_quoting_is_refused(role: str) -> None:
    with pytest.raises(ValueError):
        migrations.grant_statements("catalog", role)


def test_main_prefers_the_migrations_url_and_grants_the_runtime_role(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    done: list[tuple[str, str, str]] = []
    monkeypatch.setattr(migrations, "upgrade", lambda s, url: done.append(("upgrade", s, url)))
    monkeypatch.setattr(
        migrations,
        "grant_runtime_role",
        lambda s, url, role: done.append(("grant", s, f"{url} {role}")),
    )
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://app@db/bos")
    monkeypatch.setenv("MIGRATIONS_DATABASE_URL", "postgresql+asyncpg://migrator@db/bos")
    monkeypatch.setenv("BOS_RUNTIME_DB_ROLE", "bos_app")
    assert migrations.main(["catalog"]) == 0
    assert done == [
        ("upgrade", "catalog", "postgresql+asyncpg://migrator@db/bos"),
        ("grant", "catalog", "postgresql+asyncpg://migrator@db/bos bos_app"),
    ]


def test_main_without_a_runtime_role_only_migrates(monkeypatch: pytest.MonkeyPatch) -> None:
    done: list[str] = []
    monkeypatch.setattr(migrations, "upgrade", lambda s, url: done.append(url))
    monkeypatch.setattr(migrations, "grant_runtime_role", lambda *a: pytest.fail("granted"))
    monkeypatch.delenv("MIGRATIONS_DATABASE_URL", raising=False)
    monkeypatch.delenv("BOS_RUNTIME_DB_ROLE", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://bos@db/bos")
    assert migrations.main(["catalog"]) == 0
    assert done == ["postgresql+asyncpg://bos@db/bos"]


def test_main_refuses_a_bad_runtime_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migrations, "upgrade", lambda *a: pytest.fail("migrated"))
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://bos@db/bos")
    monkeypatch.setenv("BOS_RUNTIME_DB_ROLE", "x; drop")
    assert migrations.main([]) == 2


# ---------------------------------------------------------------- against real Postgres
async def _execute(url: str, *statements: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
def roles(infra: Infra) -> Iterator[tuple[str, str, str]]:
    """A migrator role owning a fresh database, and a runtime role that may only log in."""
    suffix = uuid.uuid4().hex[:8]
    migrator, runtime, database = f"mig_{suffix}", f"app_{suffix}", f"db_{suffix}"
    admin = make_url(infra.database_url)
    admin_url = admin.render_as_string(hide_password=False)
    asyncio.run(
        _execute(
            admin_url,
            f"CREATE ROLE {migrator} LOGIN PASSWORD 'pw'",
            f"CREATE ROLE {runtime} LOGIN PASSWORD 'pw'",
        )
    )
    engine_url = admin.set(database=database)

    async def create_db() -> None:
        engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as connection:
            await connection.execute(text(f"CREATE DATABASE {database} OWNER {migrator}"))
            await connection.execute(text(f"REVOKE ALL ON DATABASE {database} FROM PUBLIC"))
            await connection.execute(text(f"GRANT CONNECT ON DATABASE {database} TO {runtime}"))
        await engine.dispose()

    asyncio.run(create_db())
    as_role = lambda role: engine_url.set(username=role, password="pw").render_as_string(  # noqa: E731
        hide_password=False
    )
    yield as_role(migrator), as_role(runtime), runtime

    async def drop() -> None:
        engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as connection:
            await connection.execute(text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
            await connection.execute(text(f"DROP ROLE IF EXISTS {migrator}"))
            await connection.execute(text(f"DROP ROLE IF EXISTS {runtime}"))
        await engine.dispose()

    asyncio.run(drop())


@pytest.mark.integration
def test_the_runtime_role_writes_rows_but_cannot_change_the_schema(
    roles: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    migrator_url, runtime_url, runtime = roles
    monkeypatch.setenv("MIGRATIONS_DATABASE_URL", migrator_url)
    monkeypatch.setenv("DATABASE_URL", runtime_url)
    monkeypatch.setenv("BOS_RUNTIME_DB_ROLE", runtime)
    assert migrations.main(["catalog"]) == 0

    # rows: yes (a sequence-backed insert included)
    asyncio.run(
        _execute(
            runtime_url,
            "INSERT INTO catalog.outbox (event_id, event_type, envelope) "
            "VALUES (gen_random_uuid(), 't', '{}')",
            "UPDATE catalog.outbox SET attempts = 1",
            "DELETE FROM catalog.outbox",
        )
    )
    # DDL: no
    for ddl in (
        "CREATE TABLE catalog.intruder (id int)",
        "ALTER TABLE catalog.outbox ADD COLUMN intruder int",
        "DROP TABLE catalog.inbox",
        "CREATE SCHEMA intruder",
    ):
        with pytest.raises(DBAPIError, match="permission denied|must be owner"):
            asyncio.run(_execute(runtime_url, ddl))
    # a second run (the next release) migrates and grants again without error
    assert migrations.main(["catalog"]) == 0
