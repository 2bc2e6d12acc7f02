"""Cursor pagination of the API's lists (docs/api.md "Pagination"): newest first, the next
page starting after the id of the last item of the previous one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, Table, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession


async def newest_first_page(
    session: AsyncSession,
    table: Table,
    stmt: Select[Any],
    org_id: str,
    limit: int,
    starting_after: str | None,
) -> tuple[list[dict[str, Any]], bool]:
    """A page of `stmt` over `table` (which has `id`, `org_id` and `created_at`), as dicts,
    and whether more follow. An unknown cursor, or another organization's, is an empty page."""
    if starting_after:
        cursor = (
            await session.execute(
                select(table.c.created_at, table.c.id).where(
                    table.c.id == starting_after, table.c.org_id == org_id
                )
            )
        ).first()
        if cursor is None:
            return [], False
        stmt = stmt.where(tuple_(table.c.created_at, table.c.id) < tuple_(cursor[0], cursor[1]))
    stmt = stmt.order_by(table.c.created_at.desc(), table.c.id.desc()).limit(limit + 1)
    rows = [dict(r) for r in (await session.execute(stmt)).mappings()]
    return rows[:limit], len(rows) > limit
