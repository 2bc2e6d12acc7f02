"""Row access and the bulk writes (COPY, one UPDATE per batch) the aggregates'
repositories share."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from subscriptions.rows import Row


def all_rows(result: Any) -> list[Row]:
    """A result's records as dicts (projections; entities are built by their `from_row`)."""
    return [dict(r._mapping) for r in result.all()]


# --- bulk paths of the scheduler (COPY and one UPDATE per batch, on the session's own
# asyncpg connection, so still inside its transaction) ------------------------------------

_PG_TYPES = {
    "VARCHAR": "text",
    "TEXT": "text",
    "BOOLEAN": "boolean",
    "BIGINT": "bigint",
    "BIGINTEGER": "bigint",  # sqlalchemy.BigInteger
    "INTEGER": "integer",
    "JSONB": "jsonb",
    "UUID": "uuid",
}


def pg_type(column: Any) -> str:
    name = type(column.type).__name__.upper()
    if name == "DATETIME":
        return "timestamptz"
    if name == "STRING":
        return "text"
    return _PG_TYPES.get(name, "text")


def json_value(value: Any) -> Any:
    return None if value is None else orjson.dumps(value).decode()


async def driver_connection(session: AsyncSession) -> Any:
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def copy_rows(session: AsyncSession, table: Any, rows: list[Row]) -> None:
    """COPY rows into `table` (JSONB values as Python objects)."""
    if not rows:
        return
    columns = list(rows[0])
    json_cols = {c for c in columns if pg_type(table.c[c]) == "jsonb"}
    records = [tuple(json_value(r[c]) if c in json_cols else r[c] for c in columns) for r in rows]
    driver = await driver_connection(session)
    await driver.copy_records_to_table(
        table.name, schema_name=table.schema, columns=columns, records=records
    )


async def update_rows(session: AsyncSession, table: Any, rows: list[Row]) -> None:
    """One `UPDATE ... FROM unnest(...)` per set of changed columns (rows carry "id")."""
    groups: dict[tuple[str, ...], list[Row]] = {}
    for row in rows:
        cols = tuple(sorted(k for k in row if k != "id"))
        if cols:
            groups.setdefault(cols, []).append(row)
    driver = await driver_connection(session) if groups else None
    for cols, group in groups.items():
        names = ("id", *cols)
        types = [pg_type(table.c[c]) for c in names]
        sets = ", ".join(f'"{c}" = v."{c}"' for c in cols)
        args = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(types))
        alias = ", ".join(f'"{c}"' for c in names)
        sql = (
            f'UPDATE "{table.schema}"."{table.name}" AS t SET {sets} '
            f"FROM unnest({args}) AS v({alias}) WHERE t.id = v.id"
        )
        arrays = [
            [(json_value(r.get(c)) if types[i] == "jsonb" else r.get(c)) for r in group]
            for i, c in enumerate(names)
        ]
        assert driver is not None
        await driver.execute(sql, *arrays)
