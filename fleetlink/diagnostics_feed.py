"""The hand-off from ingest to the diagnostics stream engine: each committed ingest batch,
converted to the stream rules' input values (``diagnostics.stream_input``).

It lives in the composition root because it is the one place that knows both ingest's batch
layout and diagnostics' input; neither package imports the other.
"""

from __future__ import annotations

from diagnostics.offers.stream_service import OfferStream
from diagnostics.stream_input import DtcEvent, Sample
from diagnostics.stream_service import StreamDiagnostics
from ingest.layout import WIDE_COLUMNS
from ingest.store import Batch

_SIGNALS = tuple(column.signal for column in WIDE_COLUMNS)


def stream_input(batch: Batch) -> tuple[list[Sample], list[DtcEvent]]:
    """The batch's samples (wide-column signals; long-tail signals are not rule inputs) in
    (VIN, time) order, and its DTC events."""
    samples = []
    for vin, ts_ms, values in sorted(batch.wide_samples(), key=lambda sample: sample[:2]):
        signals = {_SIGNALS[i]: v for i, v in enumerate(values) if v is not None}
        if signals:
            samples.append(Sample(vin, ts_ms, signals))
    dtcs = [
        DtcEvent(vin, event.ts_ms, event.code, event.active)
        for vin, event in batch.events
        if event.type == "dtc" and event.code and event.active is not None
    ]
    return samples, dtcs


class DiagnosticsFeed:
    """``IngestWorker(on_commit=DiagnosticsFeed(stream, offers))``: the stream rules and the
    offers engine get the same committed samples."""

    def __init__(self, stream: StreamDiagnostics, offers: OfferStream | None = None) -> None:
        self._stream = stream
        self._offers = offers

    def __call__(self, batch: Batch) -> None:
        samples, dtcs = stream_input(batch)
        self._stream.submit(samples, dtcs)
        if self._offers is not None:
            self._offers.submit(samples)
