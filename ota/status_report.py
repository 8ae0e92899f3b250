"""The signed version report a car sends on ``v1/vehicles/{VIN}/ota/status``, and its
verification. Pure: the verifier takes the bytes, the VIN from the topic, the car's registered
ECU keys, the last accepted counter and ``now``, and returns a verified report or raises.

Wire form (docs/ota.md, "Version reports"), after Uptane's vehicle version manifest
(Uptane 5.4.2.1/5.4.2.2: the primary reports each ECU's serial and installed image, signed by
an ECU key, with a nonce or counter against replay)::

    {"signed": {"vin": "WVW...", "counter": 42, "nonce": "<32 hex>", "ts": 1763892000000,
                "ecus": [{"serial": "TCU-...", "hardware_id": "...",
                          "installed": {"path": "tcu-fw-2.1.0", "version": "2.1.0",
                                        "sha256": "...", "length": 123, "release_counter": 7}}],
                "update": {"campaign_id": "...", "status": "installed", "code": null,
                           "detail": null}},
     "signatures": [{"keyid": "<sha256 of the raw public key>", "sig": "<hex ed25519>"}]}

The signature covers the canonical JSON (TUF's, securesystemslib ``encode_canonical``) of
``signed``. ``update`` is present when the report is about a campaign's progress. Unknown
fields are kept (a newer car); a report larger than ``max_bytes`` is refused before parsing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from securesystemslib.exceptions import FormatError
from securesystemslib.formats import encode_canonical

from ota.errors import OtaError
from protocol.clock import utc_from_ms
from protocol.messages import EpochMillis

DEFAULT_MAX_REPORT_BYTES = 64 * 1024
MAX_FUTURE = timedelta(hours=1)
Text64 = Annotated[str, Field(min_length=1, max_length=64)]


class StatusReportError(OtaError):
    """A report the backend cannot accept; ``reason`` is counted and logged."""

    code = "status_report_rejected"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class _CarModel(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class InstalledImage(_CarModel):
    path: Annotated[str, Field(max_length=200)] | None = None  # None: factory software
    version: Annotated[str, Field(min_length=1, max_length=64)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    length: Annotated[int, Field(ge=1)] | None = None
    release_counter: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None


class EcuReport(_CarModel):
    serial: Text64
    hardware_id: Annotated[str, Field(min_length=1, max_length=128)]
    installed: InstalledImage


CarStatus = Literal["downloading", "downloaded", "installing", "installed", "failed", "rolled_back"]


class UpdateProgress(_CarModel):
    campaign_id: UUID
    status: CarStatus
    code: Text64 | None = None
    detail: Annotated[str, Field(max_length=500)] | None = None


class ReportBody(_CarModel):
    vin: str
    counter: Annotated[int, Field(ge=0, le=2**63 - 1, strict=True)]
    nonce: Annotated[str, Field(pattern=r"^[0-9a-f]{16,128}$")]
    ts: EpochMillis
    ecus: list[EcuReport] = Field(min_length=1, max_length=64)
    update: UpdateProgress | None = None


class ReportSignature(_CarModel):
    keyid: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    sig: Annotated[str, Field(pattern=r"^[0-9a-f]{128}$")]


class SignedReport(_CarModel):
    signed: dict[str, Any]
    signatures: list[ReportSignature] = Field(min_length=1, max_length=8)


@dataclass(frozen=True, slots=True)
class VerifiedReport:
    body: ReportBody
    raw: bytes  # as received, for the record

    @property
    def reported_at(self) -> datetime:
        return utc_from_ms(self.body.ts)


def keyid_of(public_key: bytes) -> str:
    """An ECU key's id: sha256 of its 32 raw bytes, hex."""
    return hashlib.sha256(public_key).hexdigest()


def signing_bytes(signed: Mapping[str, Any]) -> bytes:
    try:
        canonical = encode_canonical(dict(signed))
    except FormatError as exc:  # floats and other values canonical JSON cannot hold
        raise StatusReportError(f"not canonical JSON: {exc}", reason="report_malformed") from exc
    assert isinstance(canonical, str)
    return canonical.encode()


def verify_report(
    data: bytes,
    *,
    vin: str,
    keys: Mapping[str, bytes],
    last_counter: int | None,
    now: datetime,
    max_bytes: int = DEFAULT_MAX_REPORT_BYTES,
) -> VerifiedReport:
    """The verified report, or :class:`StatusReportError` with the reason."""
    if len(data) > max_bytes:
        raise StatusReportError(f"{len(data)} bytes > {max_bytes}", reason="report_too_large")
    try:
        envelope = SignedReport.model_validate(json.loads(data))
        body = ReportBody.model_validate(envelope.signed)
    except (UnicodeDecodeError, json.JSONDecodeError, ValidationError) as exc:
        raise StatusReportError(str(exc)[:500], reason="report_malformed") from exc
    if body.vin != vin:
        # The topic's VIN is the authenticated one (the broker's ACL); the payload's is a claim.
        raise StatusReportError(
            f"report for {body.vin} on {vin}'s topic", reason="report_vin_mismatch"
        )
    if not keys:
        raise StatusReportError(f"no ECU key registered for {vin}", reason="ecu_key_unknown")
    payload = signing_bytes(envelope.signed)
    if not any(_valid(keys.get(s.keyid), s.sig, payload) for s in envelope.signatures):
        raise StatusReportError(
            "no signature by a registered ECU key verifies", reason="report_signature_invalid"
        )
    if last_counter is not None and body.counter <= last_counter:
        reason = "report_duplicate" if body.counter == last_counter else "report_replayed"
        raise StatusReportError(
            f"counter {body.counter} is not above {last_counter}", reason=reason
        )
    if utc_from_ms(body.ts) > now + MAX_FUTURE:
        raise StatusReportError("report dated in the future", reason="report_from_future")
    return VerifiedReport(body, data)


def _valid(public_key: bytes | None, sig_hex: str, payload: bytes) -> bool:
    if public_key is None:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(bytes.fromhex(sig_hex), payload)
    except (InvalidSignature, ValueError):
        return False
    return True
