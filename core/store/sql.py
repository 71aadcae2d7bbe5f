"""Small SQL helpers shared by the query modules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert(session: AsyncSession, table: Any) -> Any:
    """An INSERT for the session's database that supports ``on_conflict_do_nothing``."""
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


async def insert_many(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    skip_conflicts_on: Sequence[str] | None = None,
) -> int:
    """Insert ``rows`` (dicts with the same keys) in one statement; with
    ``skip_conflicts_on`` a row that would break that unique key is left out. Returns how
    many rows were added.

    On PostgreSQL the values travel as one array per column, unnested by the server: for
    thousands of rows this is several times faster than a statement per row.
    """
    if not rows:
        return 0
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        statement = sqlite.insert(table)
        if skip_conflicts_on:
            statement = statement.on_conflict_do_nothing(index_elements=skip_conflicts_on)
        result = await connection.execute(statement.returning(table.c[next(iter(rows[0]))]), rows)
        return len(result.all())
    columns = list(rows[0])
    unnested = [
        func.unnest(
            bindparam(
                f"{column}_values",
                value=[row[column] for row in rows],
                type_=postgresql.ARRAY(table.c[column].type),
            )
        ).label(column)
        for column in columns
    ]
    statement = postgresql.insert(table).from_select(columns, select(*unnested))
    if skip_conflicts_on:
        statement = statement.on_conflict_do_nothing(index_elements=skip_conflicts_on)
    result = await connection.execute(statement.execution_options(preserve_rowcount=True))
    return result.rowcount
