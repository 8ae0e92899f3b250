"""Rules and places in the database: load them for the engines, write them for the admin API.

Every rule edit writes the next version into ``offer_rules`` and appends it to
``offer_rule_versions`` in one transaction, so the history is complete. Places are upserted by
id (an import replaces what it names, and leaves the rest).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import ValidationError

from diagnostics.offers.geo import Circle, Geofence, Polygon
from diagnostics.offers.rules import OfferRule, OfferRuleSpec
from protocol.places import PlaceKind


class OfferConfigError(ValueError):
    code = "offer_config_invalid"


class RuleNotFoundError(LookupError):
    code = "offer_rule_not_found"

    def __init__(self, rule_id: str) -> None:
        super().__init__(f"no offer rule {rule_id!r}")
        self.rule_id = rule_id


class RuleExistsError(ValueError):
    code = "offer_rule_exists"

    def __init__(self, rule_id: str) -> None:
        super().__init__(f"offer rule {rule_id!r} exists already")
        self.rule_id = rule_id


class RuleVersionConflictError(ValueError):
    code = "offer_rule_version_conflict"

    def __init__(self, rule_id: str, expected: int, current: int) -> None:
        super().__init__(f"offer rule {rule_id!r} is at version {current}, not {expected}")
        self.rule_id, self.expected, self.current = rule_id, expected, current


def rule_from_row(rule_id: str, version: int, definition: str | dict[str, Any]) -> OfferRule:
    data = json.loads(definition) if isinstance(definition, str) else definition
    try:
        return OfferRule.model_validate({**data, "id": rule_id, "version": version})
    except ValidationError as exc:
        raise OfferConfigError(f"stored rule {rule_id!r} v{version} is invalid: {exc}") from exc


def _definition(spec: OfferRuleSpec) -> str:
    return spec.model_dump_json()


async def load_rules(conn: asyncpg.Connection) -> list[OfferRule]:
    rows = await conn.fetch(
        "SELECT id, version, definition::text AS d FROM offer_rules ORDER BY id"
    )
    return [rule_from_row(r["id"], r["version"], r["d"]) for r in rows]


async def get_rule(conn: asyncpg.Connection, rule_id: str) -> OfferRule:
    row = await conn.fetchrow(
        "SELECT version, definition::text AS d FROM offer_rules WHERE id = $1", rule_id
    )
    if row is None:
        raise RuleNotFoundError(rule_id)
    return rule_from_row(rule_id, row["version"], row["d"])


async def rule_versions(
    conn: asyncpg.Connection, rule_id: str
) -> list[tuple[OfferRule, datetime, str]]:
    rows = await conn.fetch(
        "SELECT version, definition::text AS d, created_at, created_by FROM offer_rule_versions"
        " WHERE rule_id = $1 ORDER BY version DESC",
        rule_id,
    )
    if not rows:
        raise RuleNotFoundError(rule_id)
    return [
        (rule_from_row(rule_id, r["version"], r["d"]), r["created_at"], r["created_by"])
        for r in rows
    ]


async def create_rule(
    conn: asyncpg.Connection, rule_id: str, spec: OfferRuleSpec, *, now: datetime, by: str
) -> OfferRule:
    async with conn.transaction():
        inserted = await conn.fetchval(
            "INSERT INTO offer_rules"
            " (id, version, kind, enabled, definition, updated_at, updated_by)"
            " VALUES ($1, 1, $2, $3, $4::jsonb, $5, $6) ON CONFLICT (id) DO NOTHING RETURNING 1",
            rule_id,
            spec.kind.value,
            spec.enabled,
            _definition(spec),
            now,
            by,
        )
        if inserted is None:
            raise RuleExistsError(rule_id)
        await _append_version(conn, rule_id=rule_id, version=1, spec=spec, now=now, by=by)
    return OfferRule.model_validate({**spec.model_dump(), "id": rule_id, "version": 1})


async def update_rule(
    conn: asyncpg.Connection,
    rule_id: str,
    spec: OfferRuleSpec,
    *,
    expected_version: int | None,
    now: datetime,
    by: str,
) -> OfferRule:
    """The next version of ``rule_id``; ``expected_version`` guards against lost updates."""
    async with conn.transaction():
        current = await conn.fetchval(
            "SELECT version FROM offer_rules WHERE id = $1 FOR UPDATE", rule_id
        )
        if current is None:
            raise RuleNotFoundError(rule_id)
        if expected_version is not None and expected_version != current:
            raise RuleVersionConflictError(rule_id, expected_version, current)
        version = current + 1
        await conn.execute(
            "UPDATE offer_rules SET version = $2, kind = $3, enabled = $4, definition = $5::jsonb,"
            " updated_at = $6, updated_by = $7 WHERE id = $1",
            rule_id,
            version,
            spec.kind.value,
            spec.enabled,
            _definition(spec),
            now,
            by,
        )
        await _append_version(conn, rule_id=rule_id, version=version, spec=spec, now=now, by=by)
    return OfferRule.model_validate({**spec.model_dump(), "id": rule_id, "version": version})


async def _append_version(
    conn: asyncpg.Connection,
    *,
    rule_id: str,
    version: int,
    spec: OfferRuleSpec,
    now: datetime,
    by: str,
) -> None:
    await conn.execute(
        "INSERT INTO offer_rule_versions (rule_id, version, definition, created_at, created_by)"
        " VALUES ($1, $2, $3::jsonb, $4, $5)",
        rule_id,
        version,
        _definition(spec),
        now,
        by,
    )


async def ensure_rules(
    conn: asyncpg.Connection, rules: Sequence[tuple[str, OfferRuleSpec]], *, now: datetime
) -> int:
    """Create the rules that do not exist yet (seed data); returns how many were created."""
    created = 0
    for rule_id, spec in rules:
        try:
            await create_rule(conn, rule_id, spec, now=now, by="seed")
        except RuleExistsError:
            continue
        created += 1
    return created


def _geofence(row: asyncpg.Record) -> Geofence:
    polygon = row["polygon"]
    if polygon is None:
        geometry: Circle | Polygon = Circle(row["lat"], row["lon"], row["radius_m"])
    else:
        rings = json.loads(polygon)
        exterior, *holes = (tuple((lat, lon) for lon, lat in ring) for ring in rings)
        geometry = Polygon(exterior, tuple(holes))
    return Geofence(
        id=row["id"],
        kind=PlaceKind(row["kind"]),
        name=row["name"],
        geometry=geometry,
        brand=row["brand"],
        partner_id=row["partner_id"],
    )


async def load_places(conn: asyncpg.Connection) -> list[Geofence]:
    rows = await conn.fetch(
        "SELECT id, kind, name, brand, partner_id, lat, lon, radius_m, polygon::text AS polygon"
        " FROM offer_places ORDER BY id"
    )
    return [_geofence(r) for r in rows]


def _place_row(fence: Geofence, now: datetime) -> tuple[Any, ...]:
    geometry = fence.geometry
    if isinstance(geometry, Circle):
        return (
            fence.id,
            fence.kind.value,
            fence.name,
            fence.brand,
            fence.partner_id,
            geometry.lat,
            geometry.lon,
            geometry.radius_m,
            None,
            now,
        )
    rings = [geometry.exterior, *geometry.holes]
    polygon = json.dumps([[[lon, lat] for lat, lon in ring] for ring in rings])
    return (
        fence.id,
        fence.kind.value,
        fence.name,
        fence.brand,
        fence.partner_id,
        None,
        None,
        None,
        polygon,
        now,
    )


async def upsert_places(
    conn: asyncpg.Connection, fences: Sequence[Geofence], *, now: datetime
) -> int:
    await conn.executemany(
        """
        INSERT INTO offer_places
            (id, kind, name, brand, partner_id, lat, lon, radius_m, polygon, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10)
        ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name,
            brand = excluded.brand, partner_id = excluded.partner_id, lat = excluded.lat,
            lon = excluded.lon, radius_m = excluded.radius_m, polygon = excluded.polygon,
            updated_at = excluded.updated_at
        """,
        [_place_row(f, now) for f in fences],
    )
    return len(fences)
