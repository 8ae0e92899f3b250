"""Per-package SQL migrations (``<package>/migrations/NNN_name.sql``), applied in order.

Each package owns its tables and migrations. Applied migrations are recorded with a checksum:
a recorded migration whose file changed afterwards stops start-up (editing history silently is
how production schemas drift). An advisory lock serialises concurrent starters, so N ingest
workers starting together apply each migration exactly once.

All pending migrations run in one transaction (each in a savepoint of its own), so a migration
must be transactional DDL. That rules out CREATE INDEX CONCURRENTLY, and TimescaleDB's
CREATE MATERIALIZED VIEW ... WITH (timescaledb.continuous) WITH DATA (the default) and
refresh_continuous_aggregate(): continuous aggregates are created WITH NO DATA (allowed in a
transaction and in DO blocks) and left to their refresh policy, with real-time aggregation
answering for what is not materialized yet (see ingest/migrations/003_timescale_policies.sql).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)

#: Order matters: later packages may reference earlier packages' tables.
MIGRATING_PACKAGES: tuple[str, ...] = ("ingest", "diagnostics", "ota", "api")
_FILE_RE = re.compile(r"(\d{3})_([a-z0-9_]+)\.sql")
_LOCK_KEY = 0x464C_4D49  # "FLMI": any constant shared by all FleetLink processes


class MigrationError(RuntimeError):
    code = "migration_failed"

    def __init__(self, message: str, *, package: str, version: int) -> None:
        super().__init__(message)
        self.package = package
        self.version = version


@dataclass(frozen=True)
class Migration:
    package: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(packages: tuple[str, ...] = MIGRATING_PACKAGES) -> list[Migration]:
    found: list[Migration] = []
    for package in packages:
        folder = resources.files(package) / "migrations"
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            match = _FILE_RE.fullmatch(entry.name)
            if match is None:
                continue
            found.append(
                Migration(package, int(match[1]), match[2], entry.read_text(encoding="utf-8"))
            )
    return found


_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS fleetlink_migrations (
    package    text        NOT NULL,
    version    integer     NOT NULL,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (package, version)
)
"""


async def migrate(conn: asyncpg.Connection, migrations: list[Migration] | None = None) -> int:
    """Apply what is missing; returns how many migrations were applied."""
    migrations = discover() if migrations is None else migrations
    applied_count = 0
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(_BOOKKEEPING)
        rows = await conn.fetch("SELECT package, version, checksum FROM fleetlink_migrations")
        applied = {(r["package"], r["version"]): r["checksum"] for r in rows}
        for migration in migrations:
            key = (migration.package, migration.version)
            if key in applied:
                if applied[key] != migration.checksum:
                    raise MigrationError(
                        f"{migration.package}/migrations/{migration.version:03d}_{migration.name}"
                        ".sql changed after it was applied; add a new migration instead",
                        package=migration.package,
                        version=migration.version,
                    )
                continue
            log.info("applying migration %s %03d_%s", *key, migration.name)
            try:
                async with conn.transaction():
                    await conn.execute(migration.sql)
            except asyncpg.PostgresError as exc:
                raise MigrationError(
                    f"{migration.package} {migration.version:03d}_{migration.name}: {exc}",
                    package=migration.package,
                    version=migration.version,
                ) from exc
            await conn.execute(
                "INSERT INTO fleetlink_migrations (package, version, name, checksum)"
                " VALUES ($1, $2, $3, $4)",
                migration.package,
                migration.version,
                migration.name,
                migration.checksum,
            )
            applied_count += 1
    return applied_count
