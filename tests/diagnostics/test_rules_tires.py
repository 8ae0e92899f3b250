"""Tyres: the cold-pressure correction, slow leaks and sudden losses."""

from __future__ import annotations

from itertools import pairwise

import pytest

from diagnostics.findings import AlertType, Severity
from diagnostics.rules.tires import cold_pressure
from diagnostics.stream_input import Sample
from diagnostics.stream_rules import StreamRules
from tests.diagnostics.test_rules_support import (
    AIR,
    at,
    cleared,
    number,
    of_type,
    pressure,
    run,
    seconds_of,
    tyre_temp,
)

LEAK = AlertType.TIRE_SLOW_LEAK
LOSS = AlertType.TIRE_PRESSURE_LOSS
P, T = pressure(), tyre_temp()


def reading(seconds: float, kpa: float, tyre_c: float = 15.0, wheel: str = "Row1.Left") -> Sample:
    return at(seconds, {pressure(wheel): kpa, tyre_temp(wheel): tyre_c})


def raw_of(sample: Sample) -> float:
    value = sample.number(P)
    assert value is not None
    return value


def test_cold_pressure_follows_the_ideal_gas_law_on_absolute_values() -> None:
    # (200 + 101.325) kPa * 288.15 K / 253.15 K - 101.325 kPa = 241.66 kPa.
    assert cold_pressure(200.0, -20.0, 15.0) == pytest.approx(241.66, abs=0.01)
    assert cold_pressure(240.0, 15.0, 15.0) == pytest.approx(240.0)
    # A hot tyre reads high: 269.6 kPa at 40 C is 240 kPa cold.
    assert cold_pressure(269.61, 40.0, 15.0) == pytest.approx(240.0, abs=0.01)
    assert cold_pressure(200.0, -300.0, 15.0) is None


def test_a_cold_winter_morning_on_a_healthy_tyre_raises_nothing() -> None:
    # A tyre set to 215 kPa at 15 C reads 171 kPa at -25 C: below 180 raw, healthy cold.
    morning = [reading(i * 600, 171.0, -25.0) for i in range(12)]
    assert run(StreamRules(), morning).findings == []
    # The same readings taken as if at 15 C would be a leak: the correction is what saves it.
    uncorrected = [reading(i * 600, 171.0, 15.0) for i in range(12)]
    [finding] = run(StreamRules(), uncorrected).findings
    assert finding.type is LEAK


def test_the_air_temperature_stands_in_for_a_missing_tyre_temperature() -> None:
    morning = [at(i * 600, {P: 171.0, AIR: -25.0}) for i in range(12)]
    assert run(StreamRules(), morning).findings == []
    # 135 kPa at -25 C is 175 kPa cold.
    leaking = [at(i * 600, {P: 135.0, AIR: -25.0}) for i in range(12)]
    [finding] = run(StreamRules(), leaking).findings
    assert finding.evidence["temperature_source"] == "air"
    # Without any temperature the reading is not judged (no guess at the correction).
    assert run(StreamRules(), [at(i * 600, {P: 120.0}) for i in range(12)]).findings == []


def test_a_slow_leak_raises_below_180_cold_after_the_hold_and_not_as_a_sudden_loss() -> None:
    rules = StreamRules()
    # 2 kPa per hour, one reading every 5 minutes, from 190 kPa: below 180 at 5 h.
    samples = [reading(i * 300, round(190.0 - 2.0 * i / 12, 1), 20.0) for i in range(96)]
    outcome = run(rules, samples)
    assert of_type(outcome.findings, LOSS) == []
    first, *later = of_type(outcome.findings, LEAK)
    assert first.component == "Row1.Left" and first.severity is Severity.CRITICAL
    cold_values = [cold_pressure(190.0 - 2.0 * i / 12, 20.0, 15.0) for i in range(96)]
    first_below = next(i for i, v in enumerate(cold_values) if v is not None and v < 180.0)
    assert seconds_of(first) == first_below * 300 + 600
    assert number(first, "value") < 180.0 < number(first, "measured_kpa")
    # Reported again only every further 10 kPa lost.
    reported = [number(f, "value") for f in (first, *later)]
    assert later and all(a - b >= 10.0 for a, b in pairwise(reported))


def test_a_pressure_wobbling_around_180_does_not_flap() -> None:
    rules = StreamRules()
    wobble = [reading(i * 120, 179.6 if i % 2 else 180.4) for i in range(30)]
    assert run(rules, wobble).findings == []
    low = run(rules, [reading(3600 + i * 120, 179.0) for i in range(6)])
    assert len(low.findings) == 1
    # Once raised, wobbling between the raise (180) and clear (185) levels changes nothing.
    again = [reading(4400 + i * 120, 184.4 if i % 2 else 179.6) for i in range(30)]
    quiet = run(rules, again)
    assert quiet.findings == [] and quiet.clearances == []
    refilled = run(rules, [reading(8000 + i * 120, 240.0) for i in range(6)])
    assert [seconds_of(c) for c in cleared(refilled.clearances, LEAK)] == [8600]


def test_a_puncture_raises_a_sudden_loss_not_a_slow_leak_and_a_repair_clears_it() -> None:
    rules = StreamRules()
    steady = [reading(i * 15, 240.0) for i in range(40)]
    # From 600 s the tyre loses 5 kPa per 15 s reading (read at 15 C: raw equals cold).
    falling = [reading(600 + i * 15, 235.0 - 5.0 * i, 15.0) for i in range(14)]
    flat = [reading(810 + i * 60, 170.0, 15.0) for i in range(40)]
    outcome = run(rules, [*steady, *falling, *flat])
    assert of_type(outcome.findings, LEAK) == []  # the low pressure is the puncture's
    first, *worse = of_type(outcome.findings, LOSS)
    # Cold 240 before; 210 (30 kPa lost) at 675 s, confirmed by the next reading 15 s later.
    assert seconds_of(first) == 690 and first.component == "Row1.Left"
    assert first.evidence["baseline_kpa"] == pytest.approx(240.0, abs=0.01)
    assert first.evidence["drop_kpa"] == pytest.approx(35.0, abs=0.01)
    assert [round(number(f, "value")) for f in worse] == [195, 185, 175]
    repaired = run(rules, [reading(4000 + i * 30, 238.0) for i in range(4)])
    assert [seconds_of(c) for c in cleared(repaired.clearances, LOSS)] == [4060]
    assert cleared(repaired.clearances, LEAK) == []  # never raised


def test_a_loss_seen_in_parked_readings_ten_minutes_apart_is_confirmed() -> None:
    rules = StreamRules()
    outcome = run(rules, [reading(0, 240.0), reading(600, 205.0), reading(1200, 205.0)])
    [finding] = outcome.findings
    assert finding.type is LOSS and seconds_of(finding) == 1200


def test_a_single_glitched_reading_and_a_cooling_tyre_are_not_losses() -> None:
    rules = StreamRules()
    glitch = [reading(0, 240.0), reading(15, 0.0), reading(30, 240.0), reading(45, 240.0)]
    assert run(rules, glitch).findings == []
    # After a drive a tyre cools from 45 C to 5 C: the raw reading falls ~40 kPa in minutes,
    # the cold pressure does not move.
    cooling = []
    for i in range(20):
        tyre_c = 45.0 - 2.0 * i
        raw = (240.0 + 101.325) * (tyre_c + 273.15) / 288.15 - 101.325
        cooling.append(reading(1000 + i * 30, round(raw), tyre_c))
    assert raw_of(cooling[0]) - raw_of(cooling[-1]) >= 40
    assert run(rules, cooling).findings == []


def test_each_wheel_is_judged_on_its_own() -> None:
    rules = StreamRules()
    samples = [
        at(
            i * 300,
            {
                **{pressure(w): 240.0 for w in ("Row1.Left", "Row1.Right", "Row2.Left")},
                **{tyre_temp(w): 15.0 for w in ("Row1.Left", "Row1.Right", "Row2.Left")},
                pressure("Row2.Right"): 170.0,
                tyre_temp("Row2.Right"): 15.0,
            },
        )
        for i in range(4)
    ]
    [finding] = run(rules, samples).findings
    assert finding.component == "Row2.Right" and "rear right" in finding.recommended_action
