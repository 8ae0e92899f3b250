"""The fast path of telemetry (``ingest.fast_telemetry``) against the full validation.

The fast path may only ever take a message the full validation would store whole, and must
then store exactly what it would: the same wide rows, long-tail rows, latest state, counters
and sequence numbers. Each test builds the same messages into a batch twice, through
``BatchBuilder`` with and without the fast path, and compares everything.
"""

from __future__ import annotations

import json
import math
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.batch_builder import BatchBuilder, Received
from ingest.fast_telemetry import TelemetryBlocks
from ingest.location_consent import LocationConsent
from ingest.store import Batch, TelemetryStore
from ingest.validation import ValidationLimits
from protocol.catalogue import CATALOGUE, Datatype
from protocol.topics import telemetry_topic

NOW = 1_763_892_000_000
VINS = ("WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002", "WVWZZZ1JZXW000003")
NO_CONSENT = VINS[2]
NUMERIC = sorted(s.name for s in CATALOGUE.values() if s.is_numeric)
BOOLEAN = sorted(s.name for s in CATALOGUE.values() if s.datatype is Datatype.BOOLEAN)
TEXT = sorted(s.name for s in CATALOGUE.values() if s.datatype is Datatype.STRING)
LOCATION = [n for n in NUMERIC if n.startswith("Vehicle.CurrentLocation.")]


def _consent() -> LocationConsent:
    consent = LocationConsent(None)  # type: ignore[arg-type]  # no database: only allows()
    consent._withheld = frozenset({NO_CONSENT})
    return consent


def _build(payloads: list[tuple[str, bytes]], *, fast: bool) -> Batch:
    builder = BatchBuilder(now_ms=NOW, limits=ValidationLimits(), consent=_consent(), fast=fast)
    for vin, payload in payloads:
        builder.add(Received(telemetry_topic(vin), payload))
    return builder.finish()


def _normal(batch: Batch) -> dict[str, Any]:
    """Everything a batch stores and counts, in a comparable form."""
    return {
        "wide": sorted(batch.wide_rows(), key=lambda row: (row[0], row[1])),
        "types": sorted(
            (row[0], row[1], [type(v).__name__ for v in row[2:]]) for row in batch.wide_rows()
        ),
        "tail": sorted(batch.tail_rows(), key=repr),
        "state": batch.state,
        "tail_state": batch.tail_state,
        "readings": batch.readings,
        "samples": batch.samples,
        "withheld": batch.positions_withheld,
        "sequences": batch.sequences,
        "dead": sorted(
            (d.vin, d.rejection.reason.value, d.rejection.detail) for d in batch.dead_letters
        ),
        "span": (batch.min_ts_ms, batch.max_ts_ms),
    }


def _both(payloads: list[tuple[str, bytes]]) -> tuple[Batch, Batch]:
    return _build(payloads, fast=True), _build(payloads, fast=False)


def _assert_same(payloads: list[tuple[str, bytes]]) -> Batch:
    fast, full = _both(payloads)
    assert _normal(fast) == _normal(full)
    return fast


def _sample(ts: int, signals: dict[str, Any]) -> dict[str, Any]:
    return {"ts": ts, "signals": signals}


def _payload(*samples: dict[str, Any], seq: int = 1, **extra: Any) -> bytes:
    return json.dumps({"seq": seq, "samples": list(samples), **extra}).encode()


def _clean(ts: int, speed: float = 52.5) -> dict[str, Any]:
    return _sample(
        ts,
        {
            "Vehicle.Speed": speed,
            "Vehicle.IsMoving": True,
            "Vehicle.TraveledDistance": 1234.5,
            "Vehicle.CurrentLocation.Latitude": 48.1,
            "Vehicle.CurrentLocation.Longitude": 11.5,
            "Vehicle.Powertrain.CombustionEngine.EngineOil.Level": "NORMAL",
            "Vehicle.OEM.Custom": 7,
        },
    )


def test_a_clean_message_is_taken_whole_as_a_block() -> None:
    payload = _payload(*(_clean(NOW - 1000 + i * 100) for i in range(5)))
    fast = _assert_same([(VINS[0], payload)])
    assert fast.wide == {}  # nothing went through the full path
    assert fast.fast_messages == 1
    assert len(fast.blocks) == 1 and len(fast.blocks[0]) == 5
    assert fast.readings == 5 * 7


def test_positions_are_withheld_without_consent_as_the_full_path_does() -> None:
    payload = _payload(_clean(NOW - 500), _sample(NOW - 400, {LOCATION[0]: 10.0}))
    fast = _assert_same([(NO_CONSENT, payload)])
    assert fast.positions_withheld == 3
    assert all(not set(b.positions) & {0, 1} for b in fast.blocks)


def test_a_bad_value_sends_the_message_to_the_full_path() -> None:
    bad = _payload(_clean(NOW - 900), _clean(NOW - 800, speed=-5.0))
    fast = _assert_same([(VINS[0], _payload(_clean(NOW - 1000))), (VINS[1], bad)])
    assert len(fast.blocks) == 1 and fast.blocks[0].vins == [VINS[0]]
    assert [d.rejection.reason.value for d in fast.dead_letters] == ["out_of_range"]


def test_a_sample_sent_twice_in_one_batch_is_merged_by_the_full_path() -> None:
    first = _payload(_sample(NOW - 100, {"Vehicle.Speed": 10.0}), seq=1)
    again = _payload(_sample(NOW - 100, {"Vehicle.IsMoving": False}), seq=2)
    fast = _assert_same([(VINS[0], first), (VINS[0], again)])
    assert fast.blocks == [] and len(fast.wide) == 1


def test_messages_only_the_full_path_can_judge() -> None:
    cases = [
        b'{"seq": 1, "samples": [{"ts": %d, "signals": {"Vehicle.Speed": NaN}}]}' % NOW,
        b"\xff\xfe not utf-8",
        _payload(_sample(NOW, {"Vehicle.Speed": 12}), extra=[[[[1]]]]),  # nesting elsewhere
        _payload(_sample(NOW, {"Vehicle.OEM.Big": 2**70})),  # orjson makes it a float
        _payload(_sample(NOW, {"Vehicle.OEM.Big": -(2**70)})),
        _payload(_sample(NOW, {"Vehicle.Powertrain.Transmission.CurrentGear": 2.0})),
        _payload(_sample(NOW + 10**9, {"Vehicle.Speed": 1.0})),
        _payload(_sample(NOW, {"Vehicle.Speed": True})),
        _payload(_sample(NOW, {})),
        _payload(_sample(NOW, {LOCATION[0]: 1.0})),
    ]
    for i, payload in enumerate(cases):
        _assert_same([(VINS[i % 2], payload)])


def test_blocks_refuse_nothing_and_take_nothing_of_a_message_they_hand_back() -> None:
    blocks = TelemetryBlocks(now_ms=NOW, limits=ValidationLimits())
    assert (
        blocks.add(VINS[0], _payload(_clean(NOW), _clean(NOW, speed=1e9)), allows_position=True)
        is None
    )
    batch = Batch()
    assert blocks.finish(batch)
    assert batch.blocks == [] and batch.readings == 0


# --- property: any mix of messages, the same batch -----------------------------------------

_NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.floats(min_value=-1e4, max_value=1e6),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=0, max_value=300),
)
_ANY_VALUE = st.one_of(
    _NUMBERS,
    st.booleans(),
    st.none(),
    st.text(max_size=8),
    st.sampled_from(["NORMAL", "LOW", "x\x00y", ""]),
    st.lists(st.integers(), max_size=2),
    st.floats(allow_nan=True, allow_infinity=True),
)


def _valid(draw: st.DrawFn, name: str) -> Any:
    spec = CATALOGUE.get(name)
    if spec is None:
        text = st.text(st.characters(exclude_characters="\x00"), max_size=5)  # NUL: not storable
        return draw(st.one_of(st.integers(-1000, 1000), st.floats(-1e6, 1e6), text))
    if spec.datatype is Datatype.BOOLEAN:
        return draw(st.booleans())
    if spec.datatype is Datatype.STRING:
        return draw(st.sampled_from(sorted(spec.allowed))) if spec.allowed else "text"
    low, high = spec.min or 0, spec.max or 0
    if spec.datatype.name.startswith(("INT", "UINT")):
        return draw(st.integers(math.ceil(low), math.floor(high)))
    return draw(st.one_of(st.floats(low, high), st.integers(math.ceil(low), math.floor(high))))


@st.composite
def _signals(draw: st.DrawFn, *, clean: bool) -> dict[str, Any]:
    names = draw(
        st.lists(
            st.one_of(
                st.sampled_from(NUMERIC),
                st.sampled_from(BOOLEAN),
                st.sampled_from(TEXT),
                st.sampled_from(["Vehicle.OEM.A", "Vehicle.CurrentLocation.Extra"]),
            ),
            max_size=12,
        )
    )
    return {
        name: _valid(draw, name) if clean or draw(st.booleans()) else draw(_ANY_VALUE)
        for name in names
    }


@st.composite
def _payloads(draw: st.DrawFn) -> list[tuple[str, bytes]]:
    """A few messages, each clean (every value storable) or not, often sharing sample times."""
    out = []
    for seq in range(1, draw(st.integers(1, 5)) + 1):
        vin = draw(st.sampled_from(VINS))
        clean = draw(st.booleans())
        any_ts = st.sampled_from([NOW + 10**8, NOW - 40 * 86_400_000, True, "x", None, ""])
        samples = [
            {
                "ts": draw(
                    st.integers(NOW - 3000, NOW)
                    if clean
                    else st.one_of(st.integers(NOW - 3000, NOW), any_ts)
                ),
                "signals": draw(_signals(clean=clean)),
            }
            for _ in range(draw(st.integers(1, 4)))
        ]
        document: Any = {"seq": seq, "samples": samples}
        if not clean and draw(st.integers(0, 4)) == 0:
            document = draw(
                st.sampled_from([[1], {"seq": -1, "samples": samples}, {"seq": seq, "samples": []}])
            )
        out.append((vin, json.dumps(document, allow_nan=True).encode()))
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_payloads())
def test_the_fast_path_stores_what_the_full_path_stores(payloads: list[tuple[str, bytes]]) -> None:
    _assert_same(payloads)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(VINS[:2]), _signals(clean=True)), min_size=1, max_size=6))
def test_clean_messages_are_all_taken_by_the_fast_path(
    items: list[tuple[str, dict[str, Any]]],
) -> None:
    payloads = [
        (vin, _payload(_sample(NOW - i, signals), seq=i + 1))
        for i, (vin, signals) in enumerate(items)
    ]
    fast = _assert_same(payloads)
    assert fast.wide == {}, payloads
    assert fast.dead_letters == []
    assert sum(len(b) for b in fast.blocks) == sum(1 for _, s in items if s)


# --- through the database: the binary COPY of the blocks -----------------------------------


def _every_column_sample(ts: int, step: int) -> dict[str, Any]:
    """A value for every wide catalogue column (booleans, small and big integers, doubles)."""
    signals: dict[str, Any] = {}
    for name in NUMERIC + BOOLEAN:
        spec = CATALOGUE[name]
        if spec.datatype is Datatype.BOOLEAN:
            signals[name] = step % 2 == 0
        elif spec.datatype.name.startswith(("INT", "UINT")):
            signals[name] = int(spec.max or 0) - step  # the top of the range: width matters
        else:
            signals[name] = (spec.min or 0) + 0.125 * step
    # The long tail: texts (an enumeration, UTF-8, empty), numbers and a boolean of unknown
    # signals, and an unknown signal under the position branch.
    signals["Vehicle.Powertrain.CombustionEngine.EngineOil.Level"] = ["NORMAL", "LOW"][step % 2]
    signals["Vehicle.OEM.Label"] = ["Ölstand prüfen", ""][step % 2]
    signals["Vehicle.OEM.Counter"] = step * 1.5
    signals["Vehicle.OEM.Flag"] = step % 2 == 1
    signals["Vehicle.CurrentLocation.Fix"] = 3
    return _sample(ts, signals)


_TAIL = "SELECT vin, signal, ts, value, value_text FROM telemetry_tail ORDER BY vin, ts, signal"
_STATE = "SELECT vin, signal, ts, value, value_text FROM vehicle_state ORDER BY vin, signal"


async def test_the_blocks_are_stored_as_the_full_path_stores_them(pool: asyncpg.Pool) -> None:
    payloads = [
        (
            VINS[i % 3],
            _payload(
                *(_every_column_sample(NOW - 5000 + i * 1000 + j, j) for j in range(3)), seq=i + 1
            ),
        )
        for i in range(4)
    ]
    fast = _build(payloads, fast=True)
    assert fast.wide == {} and fast.tail == []
    assert sum(len(b) for b in fast.blocks) == 12 and fast.tail_blocks
    full = _build(payloads, fast=False)
    store = TelemetryStore(pool)
    await store.write(fast)
    stored = [list(r) for r in await pool.fetch("SELECT * FROM telemetry ORDER BY vin, ts")]
    assert stored == sorted(full.wide_rows(), key=lambda r: (r[0], r[1]))
    tail = [tuple(r) for r in await pool.fetch(_TAIL)]
    assert tail == sorted(full.tail, key=lambda r: (r[0], r[2], r[1]))
    state = await pool.fetch(_STATE)
    # A resend of the same messages (a lost PUBACK) merges through staging and changes nothing.
    await store.write(_build(payloads, fast=True))
    assert [list(r) for r in await pool.fetch("SELECT * FROM telemetry ORDER BY vin, ts")] == stored
    assert [tuple(r) for r in await pool.fetch(_TAIL)] == tail
    assert await pool.fetch(_STATE) == state
    # The car without location consent has no position, in its rows or its state.
    assert not any(
        r["signal"].startswith("Vehicle.CurrentLocation.") and r["vin"] == NO_CONSENT for r in state
    )
    assert {"", "Ölstand prüfen", "NORMAL", "LOW"} <= {r[4] for r in tail}
