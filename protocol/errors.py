"""Typed errors of the vehicle<->cloud contract.

Every error carries a stable, machine-readable ``code`` (used as the dead-letter reason and in
API error bodies) and the offending value, so callers never parse messages.
"""

from __future__ import annotations


class ProtocolError(ValueError):
    """Input that breaks wire contract v1."""

    code: str = "protocol_error"

    def __init__(self, message: str, *, value: object = None, code: str | None = None) -> None:
        super().__init__(message)
        self.value = value
        if code is not None:
            self.code = code


class InvalidVinError(ProtocolError):
    code = "invalid_vin"


class InvalidTopicError(ProtocolError):
    code = "invalid_topic"
