"""Event messages: validated whole, stored once per (VIN, seq) with unknown fields kept, bad ones
dead-lettered with a reason, and their seq counted with telemetry's (one counter per car)."""

from __future__ import annotations

import json

import asyncpg
import pytest

from ingest.consumer import IngestWorker
from ingest.errors import RejectReason
from ingest.events import VehicleEvent, validate_event
from ingest.store import TelemetryStore
from ingest.validation import Rejection, ValidationLimits
from protocol.topics import events_topic, telemetry_topic
from tests.ingest.test_worker import VIN_A, now_ms, running, settings, telemetry, vehicle, wait_for

NOW = 1_763_892_000_000
LIMITS = ValidationLimits()


def event(**fields: object) -> bytes:
    return json.dumps({"seq": 5, "ts": NOW, "type": "dtc", **fields}).encode()


def test_a_good_event_keeps_its_unknown_fields() -> None:
    result = validate_event(event(code="P0217", active=True, ecu="ECM"), now_ms=NOW, limits=LIMITS)
    assert isinstance(result, VehicleEvent)
    assert (result.seq, result.ts_ms, result.type, result.code, result.active) == (
        5,
        NOW,
        "dtc",
        "P0217",
        True,
    )
    assert json.loads(result.body)["ecu"] == "ECM"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"x" * (LIMITS.max_payload_bytes + 1), RejectReason.PAYLOAD_TOO_LARGE),
        (b'{"seq": 1, "ts": \xff}', RejectReason.INVALID_ENCODING),
        (b'{"seq": 1, "ts": ', RejectReason.MALFORMED_JSON),
        (b'{"seq": 1, "ts": 1763892000000}', RejectReason.INVALID_ENVELOPE),  # no type
        (event(type=""), RejectReason.INVALID_ENVELOPE),
        (event(seq=-1), RejectReason.INVALID_ENVELOPE),
        (event(active="yes"), RejectReason.INVALID_ENVELOPE),
        (event(code="P" * 33), RejectReason.INVALID_ENVELOPE),
        (event(ts=NOW + LIMITS.future_tolerance_ms + 1), RejectReason.TIMESTAMP_IN_FUTURE),
        (event(ts=NOW - LIMITS.max_age_ms - 1), RejectReason.TIMESTAMP_TOO_OLD),
        (event(note="a\u0000b"), RejectReason.INVALID_TEXT),
    ],
)
def test_bad_events_are_rejected_with_their_reason(payload: bytes, reason: RejectReason) -> None:
    result = validate_event(payload, now_ms=NOW, limits=LIMITS)
    assert isinstance(result, Rejection)
    assert result.reason is reason
    assert result.fragment == payload[:2000]


async def test_events_are_stored_once_and_share_the_cars_seq_counter(
    amqtt_broker, pool: asyncpg.Pool, test_vehicles
) -> None:
    worker = IngestWorker(TelemetryStore(pool), amqtt_broker.ingest_endpoint, settings())
    t = now_ms() - 5_000
    set_code = json.dumps(
        {"seq": 2, "ts": t + 1, "type": "dtc", "code": "C0750", "active": True, "ecu": "TPMS"}
    ).encode()
    async with running(worker), vehicle(amqtt_broker, VIN_A, test_vehicles.passwords[VIN_A]) as car:
        await car.publish(telemetry_topic(VIN_A), telemetry(1, (t, {"Vehicle.Speed": 5.0})), qos=1)
        await car.publish(events_topic(VIN_A), set_code, qos=1)
        await car.publish(events_topic(VIN_A), set_code, qos=1)  # a resend
        await car.publish(events_topic(VIN_A), b'{"seq": 3}', qos=1)  # bad: dead-lettered
        trip = {"seq": 4, "ts": t + 2, "type": "trip_end"}
        await car.publish(events_topic(VIN_A), json.dumps(trip).encode(), qos=1)
        await car.publish(
            telemetry_topic(VIN_A), telemetry(5, (t + 3, {"Vehicle.Speed": 0.0})), qos=1
        )

        async def settled() -> bool:
            return await pool.fetchval("SELECT count(*) FROM dead_letters") == 1 and (
                await pool.fetchval("SELECT count(*) FROM telemetry WHERE vin = $1", VIN_A) == 2
            )

        await wait_for(settled)
    rows = await pool.fetch(
        "SELECT seq, type, code, active, body ->> 'ecu' AS ecu FROM vehicle_events"
        " WHERE vin = $1 ORDER BY seq",
        VIN_A,
    )
    assert [tuple(r) for r in rows] == [
        (2, "dtc", "C0750", True, "TPMS"),
        (4, "trip_end", None, None, None),
    ]
    dead = await pool.fetchrow("SELECT topic, reason FROM dead_letters")
    assert dead is not None
    assert (dead["topic"], dead["reason"]) == (events_topic(VIN_A), "invalid_envelope")
    counts = await pool.fetchrow(
        "SELECT last_seq, gaps, duplicates FROM ingest_sequences WHERE vin = $1", VIN_A
    )
    assert counts is not None
    # seq 1..5 with 3 unreadable: one gap; the resent event: one duplicate.
    assert tuple(counts) == (5, 1, 1)
    assert worker.stats.events == 3  # messages accepted: the resend too, stored once
