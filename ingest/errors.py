"""Ingest errors and the stable reason codes of rejected vehicle input.

Reason codes are part of the public contract (docs/protocol.md, dead_letters.reason, metrics):
never rename one; add new ones.
"""

from __future__ import annotations

from enum import StrEnum


class RejectReason(StrEnum):
    PAYLOAD_TOO_LARGE = "payload_too_large"
    INVALID_ENCODING = "invalid_encoding"
    MALFORMED_JSON = "malformed_json"
    INVALID_ENVELOPE = "invalid_envelope"
    INVALID_SAMPLE = "invalid_sample"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"
    TIMESTAMP_TOO_OLD = "timestamp_too_old"
    WRONG_TYPE = "wrong_type"
    NON_FINITE_VALUE = "non_finite_value"
    OUT_OF_RANGE = "out_of_range"
    NOT_ALLOWED_VALUE = "not_allowed_value"
    INVALID_TOPIC = "invalid_topic"
    INVALID_TEXT = "invalid_text"
    # Passed validation but the database refused it (a gap in validation): kept aside so the
    # rest of the batch commits.
    UNSTORABLE = "unstorable"


class IngestError(RuntimeError):
    code = "ingest_error"


class StoreUnavailableError(IngestError):
    """The telemetry store could not commit a batch (database down, timeout)."""

    code = "store_unavailable"


class StoreDataError(IngestError):
    """The database refused the batch's data (not its availability): retrying the same batch
    would fail forever."""

    code = "store_data_rejected"
