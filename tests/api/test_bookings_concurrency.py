"""No double booking under concurrency: 20 parallel requests for the last free slot make
exactly one booking, through the app and, bypassing it, straight into the table."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from tests.api.customer_platform import running_platform
from tests.api.test_service_support import book, centre, local, owner_of, pin_clock, register

PARALLEL = 20
pytestmark = pytest.mark.integration


def vin(n: int) -> str:
    return f"WVWZZZ1JZXW{n:06d}"


@pytest.fixture
async def wide_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """Enough connections for every request to be in the database at the same time."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        database_url, min_size=PARALLEL + 2, max_size=PARALLEL + 2
    )
    yield pool
    await pool.close()


async def test_twenty_requests_for_the_last_free_slot_make_one_booking(
    wide_pool: asyncpg.Pool,
) -> None:
    async with running_platform(wide_pool) as platform:
        now = pin_clock(platform)
        await centre(platform, "centre-x", bays=2)
        slot = local(now + timedelta(days=1), 10)
        _, first_headers = await owner_of(platform, "first@example.com", vin(100))
        await book(platform, first_headers, vin(100), slot)  # one bay left
        customers = [
            (await owner_of(platform, f"c{n}@example.com", vin(n)))[1] for n in range(PARALLEL)
        ]
        responses = await asyncio.gather(
            *(
                platform.http.post(
                    "/v1/me/bookings",
                    json={"vin": vin(n), "centre_id": "centre-x", "slot_start": slot.isoformat()},
                    headers=headers,
                )
                for n, headers in enumerate(customers)
            )
        )
        outcomes = Counter(
            (r.status_code, r.json().get("code") if r.status_code != 201 else None)
            for r in responses
        )
        assert outcomes == {(201, None): 1, (409, "slot_full"): PARALLEL - 1}
        booked = await wide_pool.fetchval(
            "SELECT count(*) FROM bookings WHERE slot_start = $1 AND status = 'requested'", slot
        )
        assert booked == 2
        events = await wide_pool.fetchval(
            "SELECT count(*) FROM outbox WHERE topic = 'booking.requested'"
        )
        assert events == 2  # refused attempts leave no event behind


@pytest.mark.parametrize("isolation", ["read_committed", "repeatable_read", "serializable"])
async def test_the_table_itself_refuses_a_second_booking_of_a_one_bay_slot(
    wide_pool: asyncpg.Pool, isolation: str
) -> None:
    """Writers that bypass the API (a script, another service) are held to the same capacity,
    whatever their isolation level."""
    async with running_platform(wide_pool) as platform:
        now = pin_clock(platform)
        await centre(platform, "centre-x", bays=1)
        for n in range(PARALLEL):
            await register(platform, vin(n))
    slot = local(now + timedelta(days=1), 10)
    start = asyncio.Event()

    async def attempt(n: int) -> str:
        async with wide_pool.acquire() as conn:
            try:
                async with conn.transaction(isolation=isolation):
                    await conn.fetchval("SELECT 1")  # take the snapshot before the race
                    await start.wait()
                    await conn.execute(
                        "INSERT INTO bookings (vin, centre_id, slot_start, slot_end, source,"
                        " requested_at, updated_at)"
                        " VALUES ($1, 'centre-x', $2, $3, 'admin', $4, $4)",
                        vin(n),
                        slot,
                        slot + timedelta(hours=1),
                        now,
                    )
            except asyncpg.PostgresError as exc:
                return str(exc.sqlstate)
            return "booked"

    tasks = [asyncio.create_task(attempt(n)) for n in range(PARALLEL)]
    await asyncio.sleep(0.2)
    start.set()
    outcomes = Counter(await asyncio.gather(*tasks))
    assert outcomes["booked"] == 1
    # The rest: slot full (FLB01) or, above READ COMMITTED, a serialisation failure (40001).
    assert set(outcomes) - {"booked"} <= {"FLB01", "40001"}
    assert await wide_pool.fetchval("SELECT count(*) FROM bookings") == 1
