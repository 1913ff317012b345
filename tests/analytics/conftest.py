"""Analytics tests use the shared real-PostgreSQL fixtures (tests/plugins/pg.py): ``pg_dsn``
(a fresh migrated database per test) and ``store``; ``conn`` adds a plain connection to the
same database, on which tests SET kubeinv.now to evaluate the views at a pretend time."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import pytest


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(pg_dsn)
    await c.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    try:
        yield c
    finally:
        await c.close()
