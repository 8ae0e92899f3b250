"""Golden output of the simulated car: pins every signal and event bit for bit.

The invariant tests in ``test_vehicle_model.py`` say what a plausible car looks like; this one
says that a refactoring changed nothing at all. The scenarios cover driving, traffic stops,
refuelling, AC and DC charging with taper, a long pause (pull over) and the events. If a change
to the physics is intended, re-record the digest with ``_digest()`` and say why in the commit.
(The digest depends on the platform's libm only through exp/sin/cos/atan2; CPython on x86-64
and aarch64 Linux agree.)
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

from protocol.catalogue import Powertrain
from simulator.fleet import build_fleet
from simulator.vehicle_model import VehicleModel

START_MS = 1_763_892_000_000  # 2025-11-23 10:00 UTC
GOLDEN_SHA256 = "57f386c435b6aee545f6bfc6deebb763fa59a79e64a644261eafbae87e03bbd0"


def _record(model: VehicleModel, update: Callable[[bytes], None], steps: int, step_ms: int) -> None:
    t = model.now_ms
    for _ in range(steps):
        t += step_ms
        model.step(t)
        update(repr(sorted(model.read_signals().items())).encode())
    update(repr([(e.ts_ms, e.type.value) for e in model.drain_events()]).encode())
    update(repr((model.now_ms, model.phase.value)).encode())


def _digest() -> str:
    fleet = build_fleet(200, seed=42)
    first = {pt: next(p for p in fleet if p.powertrain is pt) for pt in Powertrain}
    sink = hashlib.sha256()
    update = sink.update
    # Plain driving at 1 Hz, every powertrain.
    for seed, powertrain in enumerate(Powertrain):
        _record(VehicleModel(first[powertrain], random.Random(seed), START_MS), update, 300, 1000)
    # Nearly empty energy stores: refuelling, charging with taper, then a long pause.
    for seed, powertrain in enumerate((Powertrain.ICE, Powertrain.BEV, Powertrain.PHEV)):
        model = VehicleModel(first[powertrain], random.Random(100 + seed), START_MS)
        if model.tank is not None:
            model.tank.level_l = model.tank.capacity_l * 0.06
        if model.battery is not None:
            model.battery.soc = 0.1
            model.battery.depleting = False
        _record(model, update, 1440, 5000)
        _record(model, update, 1, 2 * 3_600_000)
        _record(model, update, 60, 1000)
    return sink.hexdigest()


def test_signals_and_events_match_the_recorded_golden_digest() -> None:
    assert _digest() == GOLDEN_SHA256
