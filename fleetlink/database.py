"""The asyncpg pool: created by the composition root, passed into every package."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

log = logging.getLogger(__name__)


class DatabaseUnavailableError(RuntimeError):
    code = "database_unavailable"


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    connect_timeout_s: float = 60.0,
    command_timeout_s: float = 30.0,
) -> asyncpg.Pool:
    """A pool, retrying while the server comes up (containers start in any order)."""
    deadline = asyncio.get_running_loop().time() + connect_timeout_s
    delay = 0.2
    while True:
        try:
            pool: asyncpg.Pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                command_timeout=command_timeout_s,
                timeout=10,
            )
            return pool
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            if asyncio.get_running_loop().time() + delay > deadline:
                raise DatabaseUnavailableError(
                    f"cannot connect to PostgreSQL within {connect_timeout_s:.0f} s: {exc}"
                ) from exc
            log.warning("database not reachable yet (%s); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
