"""The offers engine's runtime side against PostgreSQL: rules and places reloaded only when they
change (a reload restarts every car's geofence visits, so the polling backstop must not), and
triggers appended to the outbox."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from api.offers.seed import seed_offers
from diagnostics.offers.geo_index import GeofenceIndex
from diagnostics.offers.stream_service import OfferStream
from diagnostics.offers.triggers import TriggerEngine

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


async def test_an_unchanged_configuration_keeps_the_geofence_visits(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await seed_offers(conn, now=NOW)
    engine = TriggerEngine([], GeofenceIndex([]))
    stream = OfferStream(pool, engine)
    await stream.reload()
    tracker = engine._tracker
    await stream.reload()  # the polling backstop: nothing changed
    assert engine._tracker is tracker

    async with pool.acquire() as conn:  # a rule edit: rules reloaded, visits kept
        await conn.execute(
            "UPDATE offer_rules SET enabled = false, version = version + 1"
            " WHERE id = 'heated-seats-trial'"
        )
    await stream.reload()
    assert engine._tracker is tracker

    async with pool.acquire() as conn:  # a place edit: a new index, visits start afresh
        await conn.execute("UPDATE offer_places SET name = 'Renamed' WHERE id = 'fuel-004'")
    await stream.reload()
    assert engine._tracker is not tracker
