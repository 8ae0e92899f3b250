"""``fleetlink bench ingest``: the load it generates (shape, wire format, report records), the
small MQTT client it publishes with, its options; and a smoke run of the real command with a tiny
load against the JSON contract."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import math
import random
from collections import defaultdict

import asyncpg
import pytest

from bench import mqtt_wire
from bench.audit import audit, expected_samples
from bench.ingest import DEFAULT_VEHICLES, IngestBenchOptions, format_table
from bench.publisher import (
    POOL_BUDGET_SAMPLES,
    LoadPublisher,
    LoadShape,
    PublisherConfig,
    SamplePool,
    assemble_payload,
    encode_signals,
    generate_pool,
    largest_payload,
    message_samples,
    payload_parts,
    pool_samples,
)
from fleetlink.cli import build_parser, main
from protocol.messages import MAX_SAMPLES_PER_MESSAGE, TelemetryMessage, encode
from simulator.fleet import build_fleet
from simulator.vehicle_model import VehicleModel

NOW_MS = 1_763_892_000_000

REQUIRED_KEYS = {
    "values_per_s",
    "copy_values_per_s",
    "ratio",
    "lost",
    "duplicates",
    "p99_latency_ms",
    "sample_hz",
    "upload_interval_s",
    "samples_per_message",
}


def _pool(size: int, spacing_ms: int, *, index: int = 0) -> SamplePool:
    profile = build_fleet(index + 1, 7)[index]
    model = VehicleModel(profile, random.Random(str(profile.vin)), NOW_MS - 3_600_000)
    return generate_pool(model, NOW_MS - size * spacing_ms, spacing_ms, size)


# --------------------------------------------------------------------------- load shape


def test_default_shape_is_a_data_logger_uploading_every_5_s() -> None:
    shape = LoadShape()
    assert (shape.sample_hz, shape.upload_interval_s) == (10, 5)
    assert shape.samples_per_message == 50
    assert shape.sample_spacing_ms == 100
    assert shape.upload_interval_ms == 5_000


def test_the_earlier_shape_is_still_reachable() -> None:
    shape = LoadShape(sample_hz=5, upload_interval_s=1)
    assert (shape.samples_per_message, shape.sample_spacing_ms) == (5, 200)


@pytest.mark.parametrize(
    ("sample_hz", "upload_interval_s", "message"),
    [
        (3, 1, "whole number of milliseconds"),  # 333.3 ms
        (2000, 1, "whole number of milliseconds"),  # 0.5 ms
        (0, 1, "must be positive"),
        (10, -1, "must be positive"),
        (math.nan, 1, "must be positive"),
        (10, 0.05, "0.5 samples per message"),
        (10, 360.1, "must be a whole number from 1"),
        (10, 361, "3610 samples per message"),
    ],
)
def test_invalid_shapes_are_refused(
    sample_hz: float, upload_interval_s: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        LoadShape(sample_hz, upload_interval_s)


def test_shape_limits() -> None:
    assert LoadShape(1000, 3.6).samples_per_message == MAX_SAMPLES_PER_MESSAGE
    assert LoadShape(0.5, 2).samples_per_message == 1
    assert LoadShape(0.5, 2).sample_spacing_ms == 2_000


def test_pools_hold_two_messages_unless_the_fleet_is_big() -> None:
    shape = LoadShape()
    assert pool_samples(shape, 5) == 100
    assert pool_samples(shape, DEFAULT_VEHICLES) == 50  # one message's worth: start-up < 20 s
    assert pool_samples(shape, 10 * POOL_BUDGET_SAMPLES) == 1


def test_bench_options_validate_the_shape_before_anything_starts() -> None:
    with pytest.raises(ValueError, match="whole number of milliseconds"):
        IngestBenchOptions(sample_hz=3)
    options = IngestBenchOptions()
    assert (options.sample_hz, options.upload_interval_s) == (10, 5)
    # Default load: about 40 values a sample -> about 2.5 million values a second.
    assert 2.3e6 < options.vehicles * options.sample_hz * 40 < 2.7e6


def test_cli_defaults_match_the_options_and_reach_the_publisher() -> None:
    args = build_parser().parse_args(["bench", "ingest"])
    defaults = IngestBenchOptions()
    assert args.vehicles == defaults.vehicles
    assert (args.sample_hz, args.upload_interval_s) == (defaults.sample_hz, 5)
    args = build_parser().parse_args(
        ["bench", "ingest", "--sample-hz", "5", "--upload-interval-s", "1"]
    )
    assert (args.sample_hz, args.upload_interval_s) == (5, 1)
    config = PublisherConfig("127.0.0.1", 1883, ["pw"], 1, 3.0, 20.0, 0.5, 262_144)
    assert PublisherConfig.from_json(config.to_json()) == config


def test_cli_refuses_a_bad_shape(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["bench", "ingest", "--sample-hz", "0"])
    assert exited.value.code == 2
    code = main(["bench", "ingest", "--sample-hz", "3", "--seconds", "1"], out=io.StringIO())
    assert code == 1
    assert "whole number of milliseconds" in capsys.readouterr().err


# --------------------------------------------------------------------------- payloads


def test_an_assembled_payload_is_wire_contract_v1() -> None:
    spacing = 100
    pool = _pool(100, spacing)
    tails, counts = pool.cyclic(70, 50)  # wraps around the end of the pool
    payload = assemble_payload(tails, seq=17, newest_ms=NOW_MS, spacing_ms=spacing)

    message = TelemetryMessage.model_validate_json(payload)
    assert message.seq == 17
    times = [s.ts for s in message.samples]
    assert times[-1] == NOW_MS
    assert [b - a for a, b in itertools.pairwise(times)] == [spacing] * 49
    assert [len(s.signals) for s in message.samples] == counts
    assert message.samples[0].signals == json.loads(pool.tails[70][len(b',"signals":') : -1])
    assert message.samples[30].signals == json.loads(pool.tails[0][len(b',"signals":') : -1])
    # Byte for byte what the protocol package itself would send.
    assert encode(message) == payload
    assert b"".join(payload_parts(tails, seq=17, newest_ms=NOW_MS, spacing_ms=spacing)) == payload


def test_single_sample_messages() -> None:
    pool = _pool(2, 1000)
    payload = assemble_payload(pool.tails[:1], seq=0, newest_ms=NOW_MS, spacing_ms=1000)
    message = TelemetryMessage.model_validate_json(payload)
    assert [s.ts for s in message.samples] == [NOW_MS]


def test_pool_samples_are_realistic_and_shared_when_equal() -> None:
    pool = _pool(40, 100, index=3)
    assert len(pool) == 40
    assert all(30 <= n <= 60 for n in pool.counts)
    for tail in pool.tails:
        assert tail.startswith(b',"signals":{"Vehicle.') and tail.endswith(b"}}")
    by_value: dict[bytes, int] = {}
    for tail in pool.tails:  # equal readings are one object
        assert by_value.setdefault(tail, id(tail)) == id(tail)


def test_the_publisher_refuses_messages_ingest_would_dead_letter() -> None:
    config = PublisherConfig("127.0.0.1", 1, ["pw"], 1, 1.0, 10.0, 1.0, max_payload_bytes=10_000)
    with pytest.raises(ValueError, match="FLEETLINK_INGEST_MAX_PAYLOAD_BYTES"):
        LoadPublisher(config).generate()  # 10 samples of ~2 KB


def test_non_finite_values_are_refused() -> None:
    with pytest.raises(ValueError, match="not a JSON number"):
        encode_signals({"Vehicle.Speed": math.nan})
    assert encode_signals({"Vehicle.Speed": 1.5, "Vehicle.IsMoving": True}) == (
        b'{"Vehicle.Speed":1.5,"Vehicle.IsMoving":true}'
    )


@pytest.mark.parametrize(("size", "count"), [(100, 50), (48, 50), (7, 3), (1, 50)])
def test_largest_payload_bounds_every_message_a_car_sends(size: int, count: int) -> None:
    pool = _pool(size, 100, index=1)
    sizes = []
    for seq in range(size):
        tails, _counts = pool.cyclic((seq * count) % size, count)
        sizes.append(len(assemble_payload(tails, seq=seq, newest_ms=NOW_MS, spacing_ms=100)))
    bound = largest_payload(pool, count)
    assert max(sizes) <= bound <= max(sizes) + 19 + count  # only the digits are estimated


# --------------------------------------------------------------------------- report records


def test_report_records_rebuild_every_sample() -> None:
    record = [1, 4, NOW_MS, 40, 41, 42]
    assert list(message_samples(record, 250)) == [
        (NOW_MS - 500, 40),
        (NOW_MS - 250, 41),
        (NOW_MS, 42),
    ]
    vins = ["VIN0", "VIN1"]
    assert list(expected_samples(vins, [record, [0, 1, NOW_MS, 7]], 250)) == [
        ("VIN1", NOW_MS - 500, 40),
        ("VIN1", NOW_MS - 250, 41),
        ("VIN1", NOW_MS, 42),
        ("VIN0", NOW_MS, 7),
    ]


_AUDIT_STAND_INS = """
CREATE TABLE telemetry_values (vin text, signal text, ts timestamptz);
CREATE TABLE ingest_sequences (duplicates bigint, gaps bigint);
CREATE TABLE dead_letters (id integer);
INSERT INTO ingest_sequences VALUES (1, 2);
"""


@pytest.mark.integration
async def test_audit_counts_what_the_database_holds_against_the_records(
    empty_database_url: str,
) -> None:
    """The audit's SQL against stand-ins for the tables it reads (the telemetry layout is
    ingest's business; the audit only needs the ``telemetry_values`` view's columns)."""
    t = NOW_MS
    stored = [
        ("A", "s1", t - 100),  # A's first sample: complete, and one value twice
        ("A", "s2", t - 100),
        ("A", "s1", t - 100),
        ("A", "s1", t),  # A's second sample: one of its 3 values missing
        ("A", "s2", t),
        # B's acknowledged sample (2 values) is missing entirely
        ("B", "s1", t + 1_000),  # unconfirmed: counts neither way
        ("A", "s1", t + 9_000),  # nobody sent that
    ]
    conn = await asyncpg.connect(empty_database_url)
    try:
        await conn.execute(_AUDIT_STAND_INS)
        await conn.executemany(
            "INSERT INTO telemetry_values VALUES ($1, $2, to_timestamp($3::bigint / 1000.0))",
            stored,
        )
        result = await audit(
            conn,
            ["A", "B"],
            [[0, 1, t, 2, 3], [1, 1, t, 2]],
            [[1, 2, t + 1_000, 1], [0, 2, t + 5_000, 1]],
            spacing_ms=100,
        )
    finally:
        await conn.close()
    assert (result.messages_sent, result.samples_sent, result.values_sent) == (2, 3, 7)
    assert result.rows == 7
    assert (result.lost_values, result.lost_samples) == (3, 2)
    assert result.unexpected_rows == 2  # the unsent sample and the extra value of A's first
    assert (result.duplicate_rows, result.duplicate_messages, result.duplicates) == (1, 1, 2)
    assert (result.seq_gaps, result.dead_letters) == (2, 0)


def test_the_load_line_states_the_shape() -> None:
    figures = {
        "vehicles": 6250,
        "seconds": 30.0,
        "broker": "mosquitto",
        "sample_hz": 10.0,
        "upload_interval_s": 5.0,
        "samples_per_message": 50,
        "values_sent": 1_000,
        "samples_sent": 25,
        "max_payload_bytes": 120_000,
    }
    line = _load_line(figures)
    assert "6,250 cars x 30 s via mosquitto" in line
    assert "10 Hz" in line and "every 5 s" in line and "50 samples/msg" in line
    assert "40.0 values/sample" in line


def _load_line(partial: dict[str, object]) -> str:
    """format_table's first line, every other figure zero."""
    figures: defaultdict[str, object] = defaultdict(int, partial)
    figures["copy_runs"] = []
    figures["cpu_cores"] = {"ingest": 0.0, "postgres": 0.0, "broker": 0.0, "publisher": 0.0}
    return format_table(figures).splitlines()[0]


# --------------------------------------------------------------------------- MQTT client


@pytest.mark.parametrize(
    ("length", "encoded"),
    [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16_383, b"\xff\x7f"),
        (16_384, b"\x80\x80\x01"),
        (268_435_455, b"\xff\xff\xff\x7f"),
    ],
)
def test_remaining_length(length: int, encoded: bytes) -> None:
    assert mqtt_wire.remaining_length(length) == encoded


def test_connect_and_publish_packets() -> None:
    packet = mqtt_wire.connect_packet("VIN", "VIN", "pw", 60)
    assert packet == (
        b"\x10\x18\x00\x04MQTT\x04\xc0\x00\x3c"  # 3.1.1, user + password, clean session 0
        b"\x00\x03VIN\x00\x03VIN\x00\x02pw"
    )
    header = mqtt_wire.publish_header(mqtt_wire.topic_field("a/b"), 258, 200)
    assert header == b"\x32\xcf\x01\x00\x03a/b\x01\x02"  # (2 + 3) + 2 + 200 = 207


async def _read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first = (await reader.readexactly(1))[0]
    length = shift = 0
    while True:
        digit = (await reader.readexactly(1))[0]
        length |= (digit & 0x7F) << shift
        shift += 7
        if not digit & 0x80:
            return first, await reader.readexactly(length)


async def test_connection_keeps_order_and_acks_through_a_full_socket_buffer() -> None:
    """20 messages of 1 MB to a broker that reads nothing at first: most wait in the backlog
    (partial sendmsg, writer callback) and all arrive whole, in order, and are acknowledged."""
    messages = 20
    parts = [bytes([65 + k]) * 100_000 for k in range(10)]
    received: list[tuple[int, bytes]] = []
    release = asyncio.Event()

    async def broker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        kind, _body = await _read_packet(reader)
        assert kind == mqtt_wire.CONNECT
        writer.write(b"\x20\x02\x00\x00")
        await release.wait()
        for _ in range(messages):
            kind, body = await _read_packet(reader)
            assert kind == mqtt_wire.PUBLISH_QOS1
            topic_length = int.from_bytes(body[:2], "big")
            packet_id = body[2 + topic_length : 4 + topic_length]
            received.append((int.from_bytes(packet_id, "big"), body[4 + topic_length :]))
            writer.write(b"\x40\x02" + packet_id)
        await writer.drain()

    server = await asyncio.start_server(broker, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    acked: list[int] = []
    all_acked = asyncio.Event()
    lost: list[int] = []

    def on_ack(token: int) -> None:
        acked.append(token)
        if len(acked) == messages:
            all_acked.set()

    connection: mqtt_wire.Connection[int] = mqtt_wire.Connection(
        "car", "car", "pw", keepalive_s=60, on_ack=on_ack, on_lost=lost.extend
    )
    try:
        await connection.connect("127.0.0.1", port, 5.0)
        topic = mqtt_wire.topic_field("v1/vehicles/car/telemetry")
        for token in range(messages):
            assert connection.publish(topic, parts, 1_000_000, token)
        await asyncio.sleep(0.1)
        assert not acked
        assert connection._backlog  # the kernel's buffers are full: the backlog path runs
        release.set()
        await asyncio.wait_for(all_acked.wait(), 10)
    finally:
        connection.close()
        server.close()
        await server.wait_closed()
    assert acked == list(range(messages))
    assert [packet_id for packet_id, _ in received] == list(range(1, messages + 1))
    assert all(payload == b"".join(parts) for _, payload in received)
    assert lost == []
    assert connection.publish(topic, parts, 1_000_000, 99) is False  # closed


async def test_connection_reports_a_refused_connect_and_lost_messages() -> None:
    async def broker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_packet(reader)
        writer.write(b"\x20\x02\x00\x05")  # not authorised
        await writer.drain()

    server = await asyncio.start_server(broker, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    lost: list[int] = []
    connection: mqtt_wire.Connection[int] = mqtt_wire.Connection(
        "car", "car", "bad", keepalive_s=60, on_ack=lambda _t: None, on_lost=lost.extend
    )
    try:
        with pytest.raises(mqtt_wire.MqttProtocolError, match="return code 5"):
            await connection.connect("127.0.0.1", port, 5.0)
    finally:
        server.close()
        await server.wait_closed()
    assert connection.pending == 0


# --------------------------------------------------------------------------- the real command


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_bench_ingest_json_smoke() -> None:
    out = io.StringIO()
    code = main(
        [
            "bench",
            "ingest",
            "--vehicles",
            "5",
            "--seconds",
            "3",
            "--sample-hz",
            "20",
            "--upload-interval-s",
            "0.5",
            "--json",
        ],
        out=out,
    )
    assert code == 0
    figures = json.loads(out.getvalue())  # stdout holds nothing but the JSON object
    assert figures.keys() >= REQUIRED_KEYS
    assert (figures["sample_hz"], figures["upload_interval_s"]) == (20, 0.5)
    assert figures["samples_per_message"] == 10
    assert figures["messages_sent"] >= 5 * 5  # 6 per car, the first within half a second
    assert figures["samples_sent"] == 10 * figures["messages_sent"]
    assert figures["values_committed"] == figures["values_sent"]
    assert figures["lost"] == 0
    assert figures["duplicates"] == 0
    assert figures["all_committed"] is True
    # By default two workers share the subscription on Mosquitto; amqtt has no shared ones.
    assert figures["workers"] == (2 if figures["broker"] == "mosquitto" else 1)
    assert figures["ratio"] > 0
    assert figures["values_per_s"] > 0
    assert figures["copy_values_per_s"] > 0
    assert 0 < figures["p50_latency_ms"] <= figures["p99_latency_ms"]


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_bench_ingest_with_one_worker_in_this_process() -> None:
    out = io.StringIO()
    args = ["bench", "ingest", "--vehicles", "6", "--seconds", "3", "--workers", "1"]
    code = main([*args, "--sample-hz", "20", "--upload-interval-s", "0.5", "--json"], out=out)
    assert code == 0
    figures = json.loads(out.getvalue())
    assert figures["workers"] == 1
    assert figures["values_committed"] == figures["values_sent"] > 0
    assert figures["lost"] == 0
    assert figures["duplicates"] == 0
    assert figures["all_committed"] is True


def test_at_least_one_worker() -> None:
    with pytest.raises(ValueError, match="at least one ingest worker"):
        IngestBenchOptions(workers=0)
