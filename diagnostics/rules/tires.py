"""Tyres: a slow leak below the cold failure pressure, and a sudden loss (a puncture).

A tyre's gauge pressure moves with the temperature of the air inside it (ideal gas at constant
volume: absolute pressure proportional to absolute temperature): a healthy 240 kPa tyre reads
~200 kPa on a -20 C morning and over 260 kPa after a motorway run. Both rules therefore compare
the *cold* pressure, the reading brought back to the 15 C reference at which owners set it
(the TPMS convention behind UN R141 / FMVSS 138), using the tyre temperature the TPMS sensor
reports (the outside air temperature when the sample has none; no correction is guessed
without either).

- Slow leak: cold pressure below 180 kPa (25 % under a 240 kPa placard) for
  ``tire_leak_hold_s`` -> ``tire_slow_leak``; cleared at or above 185 kPa (refilled).
- Sudden loss: cold pressure ``pressure_loss_kpa`` below its highest value of the last
  ``pressure_loss_window_s`` (to the minute) -> ``tire_pressure_loss`` once a second reading
  ``pressure_loss_hold_s`` later confirms it; cleared when the tyre is back within
  ``pressure_loss_clear_margin_kpa`` of the pressure before the loss. While a sudden loss is
  open on a wheel, the low pressure is explained and no slow leak is raised on it.
"""

from __future__ import annotations

from diagnostics.findings import AlertType, Evidence
from diagnostics.rule_settings import RuleSettings
from diagnostics.rules.base import (
    WHEELS,
    Emitter,
    PressureWindow,
    VehicleState,
    wheel_signal,
    wheel_words,
)
from diagnostics.rules.hysteresis import Verdict
from diagnostics.rules.threshold import Threshold, track
from diagnostics.stream_input import Sample

#: ISO 2533 standard atmosphere: gauge (VSS Tire.Pressure) + atmosphere = absolute pressure.
ATMOSPHERE_KPA = 101.325
KELVIN = 273.15
AIR_TEMPERATURE = "Vehicle.Exterior.AirTemperature"

LEAK_ACTION = (
    "The {wheel} tyre is losing air: inflate it to the pressure on the door placard and have "
    "it checked for a leak at a tyre service soon."
)
LOSS_ACTION = (
    "The {wheel} tyre has suddenly lost pressure: slow down, stop safely and check the tyre; "
    "do not drive on a flat tyre."
)


def cold_pressure(gauge_kpa: float, temperature_c: float, reference_c: float) -> float | None:
    """Gauge pressure at ``temperature_c`` brought back to ``reference_c`` (ideal gas at
    constant volume, on absolute pressure and temperature); None for an impossible
    temperature."""
    absolute_t = temperature_c + KELVIN
    if absolute_t <= 0.0:
        return None
    return (gauge_kpa + ATMOSPHERE_KPA) * (reference_c + KELVIN) / absolute_t - ATMOSPHERE_KPA


class TireRule:
    def __init__(self, settings: RuleSettings) -> None:
        s = settings
        self._reference_c = s.tire_reference_c
        self._loss_kpa = s.pressure_loss_kpa
        self._loss_margin_kpa = s.pressure_loss_clear_margin_kpa
        self._window_ms = s.pressure_loss_window_s * 1000
        self._loss_hold_s = s.pressure_loss_hold_s
        self._loss_clear_hold_s = s.pressure_loss_clear_hold_s
        self._report_step = s.tire_report_step_kpa
        self._wheels = tuple(
            (
                wheel,
                wheel_signal(wheel, "Tire.Pressure"),
                wheel_signal(wheel, "Tire.Temperature"),
                Threshold(
                    type=AlertType.TIRE_SLOW_LEAK,
                    signal=wheel_signal(wheel, "Tire.Pressure"),
                    unit="kPa",
                    raise_at=s.tire_leak_raise_kpa,
                    clear_at=s.tire_leak_clear_kpa,
                    falling=True,
                    raise_hold_s=s.tire_leak_hold_s,
                    clear_hold_s=s.tire_leak_clear_hold_s,
                    report_step=s.tire_report_step_kpa,
                ),
            )
            for wheel in WHEELS
        )

    def evaluate(self, state: VehicleState, sample: Sample, out: Emitter) -> None:
        air_c = sample.number(AIR_TEMPERATURE)
        for wheel, pressure_name, temperature_name, leak in self._wheels:
            gauge = sample.number(pressure_name)
            if gauge is None:
                continue
            tyre_c = sample.number(temperature_name)
            source = "tire"
            if tyre_c is None:
                tyre_c, source = air_c, "air"
            if tyre_c is None:
                continue  # no temperature: a raw reading would false-alarm on a cold morning
            cold = cold_pressure(gauge, tyre_c, self._reference_c)
            if cold is None:
                continue
            extra: Evidence = {
                "wheel": wheel,
                "measured_kpa": gauge,
                "temperature_c": tyre_c,
                "temperature_source": source,
                "reference_c": self._reference_c,
            }
            loss_open = self._sudden_loss(
                state, ts_ms=sample.ts_ms, wheel=wheel, cold=cold, extra=extra, out=out
            )
            verdict = leak.judge(cold)
            if loss_open and verdict is Verdict.BAD:
                verdict = Verdict.BETWEEN  # explained by the sudden loss
            track(state, leak, component=wheel, ts_ms=sample.ts_ms, value=cold,
                  verdict=verdict, action=LEAK_ACTION.format(wheel=wheel_words(wheel)),
                  extra=extra, out=out)  # fmt: skip

    def _sudden_loss(
        self,
        state: VehicleState,
        *,
        ts_ms: int,
        wheel: str,
        cold: float,
        extra: Evidence,
        out: Emitter,
    ) -> bool:
        """Track the sudden-loss condition of ``wheel``; whether a loss is pending or open."""
        window = state.pressure.get(wheel)
        if window is None:
            window = state.pressure[wheel] = PressureWindow()
        peak = window.peak(ts_ms, self._window_ms)
        window.add(ts_ms, cold, self._window_ms)
        baseline = state.loss_baseline.get(wheel)
        if baseline is None:
            if peak is None or peak - cold < self._loss_kpa:
                return False
            # The loss is measured against the pressure before it, frozen here: the window
            # moves on, and parked readings may be ten minutes apart.
            baseline = state.loss_baseline[wheel] = peak
        spec = Threshold(
            type=AlertType.TIRE_PRESSURE_LOSS,
            signal=wheel_signal(wheel, "Tire.Pressure"),
            unit="kPa",
            raise_at=baseline - self._loss_kpa,
            clear_at=baseline - self._loss_margin_kpa,
            falling=True,
            raise_hold_s=self._loss_hold_s,
            clear_hold_s=self._loss_clear_hold_s,
            report_step=self._report_step,
        )
        evidence: Evidence = {
            **extra,
            "baseline_kpa": round(baseline, 3),
            "drop_kpa": round(baseline - cold, 3),
            "window_s": self._window_ms // 1000,
        }
        # "At least loss_kpa below the baseline" (judge_below would exclude the boundary).
        if baseline - cold >= self._loss_kpa:
            verdict = Verdict.BAD
        else:
            verdict = Verdict.GOOD if cold >= spec.clear_at else Verdict.BETWEEN
        track(state, spec, component=wheel, ts_ms=ts_ms, value=cold, verdict=verdict,
              action=LOSS_ACTION.format(wheel=wheel_words(wheel)), extra=evidence,
              out=out)  # fmt: skip
        cond = state.condition(AlertType.TIRE_PRESSURE_LOSS, wheel)
        if not cond.raised and cond.run_since_ms is None:
            del state.loss_baseline[wheel]  # cleared, or a glitch that did not hold
            return False
        return True
