"""The ingest -> diagnostics hand-off: a committed batch becomes the stream rules' input."""

from __future__ import annotations

from fleetlink.diagnostics_feed import stream_input
from ingest.events import VehicleEvent
from ingest.store import Batch
from ingest.validation import Reading

VIN = "WVWZZZ1JZXW000001"


def test_batch_to_samples_and_dtcs() -> None:
    batch = Batch()
    batch.add_readings(
        VIN,
        [
            Reading("Vehicle.Speed", 2_000, 50.0, None),
            Reading("Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure", 2_000, 231.0, None),
            Reading("Vehicle.Speed", 1_000, 40.0, None),
            Reading("Vehicle.Some.Unknown.Signal", 1_000, 1.0, None),  # long tail: not an input
        ],
    )
    dtc = VehicleEvent(7, 1_500, "dtc", "P0217", True, "{}")
    trip = VehicleEvent(8, 1_600, "trip_start", None, None, "{}")
    batch.events.extend([(VIN, dtc), (VIN, trip)])

    samples, dtcs = stream_input(batch)

    assert [(s.vin, s.ts_ms) for s in samples] == [(VIN, 1_000), (VIN, 2_000)]  # time order
    assert samples[0].signals == {"Vehicle.Speed": 40.0}
    assert samples[1].number("Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure") == 231.0
    assert [(d.code, d.active, d.ts_ms) for d in dtcs] == [("P0217", True, 1_500)]
