"""The migrations build exactly the tables models.py declares; organization.updated.v1 feeds
the seller name (newest version wins)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from bos_common.events import Envelope
from subscriptions import repository
from subscriptions.models import metadata

pytestmark = pytest.mark.integration


async def test_migrations_match_models(infra, schema):
    engine = create_async_engine(infra.database_url)

    def diff(conn):
        def include(name, type_, parent):
            if type_ == "schema":
                return name == "subscriptions"
            return not (type_ == "table" and name == "alembic_version")

        ctx = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_schemas": True,
                "target_metadata": metadata,
                "include_name": include,
            },
        )
        return compare_metadata(ctx, metadata)

    try:
        async with engine.connect() as conn:
            changes = await conn.run_sync(diff)
    finally:
        await engine.dispose()
    assert changes == [], changes


async def test_organization_updates_keep_the_newest_name(drv):
    spec = next(s for s in drv.rt.consumers if "organization.updated.v1" in s.routing_keys)

    def env(name, version):
        return Envelope(
            event_id=__import__("uuid").uuid4(),
            event_type="organization.updated.v1",
            occurred_at=datetime.now(UTC),
            producer="tokens",
            org_id=drv.org,
            data={
                "org_id": drv.org,
                "name": name,
                "version": version,
                "updated_at": datetime.now(UTC).isoformat(),
            },
        )

    await spec.handler(env("Acme", 2))
    await spec.handler(env("Old name", 1))  # late
    async with drv.rt.db.transaction() as session:
        assert await repository.organization_name(session, drv.org) == "Acme"
    await spec.handler(env("Acme Inc", 3))
    async with drv.rt.db.transaction() as session:
        assert await repository.organization_name(session, drv.org) == "Acme Inc"
