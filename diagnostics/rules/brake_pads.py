"""Brake pads worn to the wear sensor (~90 % worn, 2-3 mm of friction material left), per
wheel (VSS ``Axle.RowN.Wheel.Side.Brake.PadWear``: 0 = new, 100 = worn out).

Wear only grows until the pads are replaced, which drops it near 0: the clear level is far
below the raise level, so only a replacement clears the condition.
"""

from __future__ import annotations

from diagnostics.findings import AlertType
from diagnostics.rule_settings import RuleSettings
from diagnostics.rules.base import WHEELS, Emitter, VehicleState, wheel_signal, wheel_words
from diagnostics.rules.threshold import Threshold, track
from diagnostics.stream_input import Sample

ACTION = (
    "The {wheel} brake pads are worn out: book a brake service now and avoid hard braking "
    "until then."
)


class BrakePadRule:
    def __init__(self, settings: RuleSettings) -> None:
        self._specs = tuple(
            (
                wheel,
                Threshold(
                    type=AlertType.BRAKE_PAD_WEAR,
                    signal=wheel_signal(wheel, "Brake.PadWear"),
                    unit="percent",
                    raise_at=settings.pad_raise_pct,
                    clear_at=settings.pad_clear_pct,
                    falling=False,
                    raise_hold_s=settings.pad_hold_s,
                    clear_hold_s=settings.pad_clear_hold_s,
                    report_step=settings.pad_report_step_pct,
                ),
                ACTION.format(wheel=wheel_words(wheel)),
            )
            for wheel in WHEELS
        )

    def evaluate(self, state: VehicleState, sample: Sample, out: Emitter) -> None:
        for wheel, spec, action in self._specs:
            value = sample.number(spec.signal)
            if value is not None:
                track(state, spec, component=wheel, ts_ms=sample.ts_ms, value=value,
                      action=action, extra={"wheel": wheel}, out=out)  # fmt: skip
