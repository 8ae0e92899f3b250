"""Cost of ``VehicleModel.step`` per simulated car-second, driving and parked.

``.venv/bin/python -m simulator.tools.bench_model`` prints microseconds per car-second for
1 s and 5 s driving sub-steps and for a parked car stepped at 1 Hz (read_signals excluded:
that is the runner's cost, measured separately on the last line).
"""

from __future__ import annotations

import random
import sys
import time

from simulator.fleet import build_fleet
from simulator.vehicle_model import Phase, VehicleModel

START_MS = 1_763_965_800_000  # Monday 07:30 local: many cars on the road
CARS = 40


def _measure(substep_s: float, step_ms: int, *, driving: bool, seconds: int = 600) -> float:
    models = [
        VehicleModel(p, random.Random(i), START_MS, max_substep_s=substep_s)
        for i, p in enumerate(build_fleet(CARS, seed=3))
    ]
    spent, car_seconds = 0.0, 0
    for model in models:
        t = model.now_ms
        for _ in range(seconds * 1000 // step_ms):
            departure = model.next_departure_ms
            if driving and model.phase is Phase.PARKED and departure is not None:
                model.step(max(t, departure))  # not timed: get the car on the road
                t = model.now_ms
            parked = model.phase is Phase.PARKED
            t += step_ms
            begin = time.perf_counter()
            model.step(t)
            elapsed = time.perf_counter() - begin
            if parked != driving:
                spent += elapsed
                car_seconds += step_ms // 1000
    return spent / max(car_seconds, 1) * 1e6


def main() -> int:
    print(f"driving, 1 s sub-steps, stepped at 1 Hz: {_measure(1.0, 1000, driving=True):6.1f} us")
    print(f"driving, 5 s sub-steps, stepped every 5 s: {_measure(5.0, 5000, driving=True):6.1f} us")
    print(f"parked, stepped at 1 Hz:                 {_measure(1.0, 1000, driving=False):6.1f} us")
    fleet = build_fleet(200, seed=3)
    models = [VehicleModel(p, random.Random(i), START_MS) for i, p in enumerate(fleet)]
    begin = time.perf_counter()
    for model in models:
        for _ in range(50):
            model.read_signals()
    per_call_us = (time.perf_counter() - begin) / 1e4 * 1e6
    print(f"read_signals, per call:                  {per_call_us:6.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
