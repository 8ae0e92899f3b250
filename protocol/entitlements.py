"""Signed feature entitlement documents (issue 9): what the cloud signs and a car verifies
offline. Shared by the OTA service, which issues them, and the simulated car, which checks them,
so both read one definition (docs/protocol.md section 5.7 describes it for other clients).

The signed form is a DSSE v1 envelope (Dead Simple Signing Envelope, secure-systems-lab/dsse
``protocol.md``)::

    {"payloadType": "application/vnd.fleetlink.entitlements.v1+json",
     "payload": "<base64 of the body>",
     "signatures": [{"keyid": "<key id>", "sig": "<base64 ed25519 signature>"}]}

Each signature is ed25519 over ``PAE(payloadType, body)`` (DSSE's pre-authentication encoding).
A car verifies the signature over the bytes it received *before* it parses the body: nothing
unauthenticated is interpreted, and no canonical re-serialisation is needed to verify (the
classic canonical-JSON pitfall of signing parsed objects). The payload type is part of what is
signed, so a signature made for another kind of document can never pass as an entitlement.

The body is canonical JSON anyway (sorted keys, no whitespace), so one document always has the
same bytes and tests can pin known answers. Times are UTC epoch milliseconds, as on the wire.

Verification (:func:`verify_document`) is a pure function of the envelope, the pinned keys, the
car's VIN and the car's clock; version monotonicity is the car's state and lives with it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from protocol.errors import ProtocolError
from protocol.messages import EpochMillis
from protocol.vin import VIN_PATTERN

PAYLOAD_TYPE = "application/vnd.fleetlink.entitlements.v1+json"
#: A feature's name: lower-case identifier, e.g. ``heated_seats``.
FEATURE_NAME_PATTERN = "^[a-z][a-z0-9_]{0,63}$"
MAX_FEATURES = 256
#: Bound on the decoded body, checked before it is verified or parsed.
MAX_BODY_BYTES = 64 * 1024
MAX_SIGNATURES = 8
#: How far ahead of the car's clock ``issued_at`` may be (car clocks drift; GNSS time is not
#: always at hand in a garage). Beyond it the document is ``not_yet_valid``.
DEFAULT_MAX_CLOCK_SKEW_MS = 5 * 60 * 1000
COMMAND_ID_PREFIX = "entitlements-"

#: Pinned public keys by key id: what a car trusts to sign its entitlements.
TrustedKeys = Mapping[str, Ed25519PublicKey]


class EntitlementKind(StrEnum):
    SUBSCRIPTION = "subscription"
    PURCHASE = "purchase"
    TRIAL = "trial"


# -- rejections: ``reason`` is what the car reports in its entitlement_rejected event ------------


class EntitlementRejectedError(ProtocolError):
    reason: ClassVar[str] = "rejected"
    code = "entitlement_rejected"


class MalformedEntitlementError(EntitlementRejectedError):
    """Not a DSSE envelope of our payload type, bad base64, too large, or a signed body that
    does not parse as a document."""

    reason = "malformed"
    code = "entitlement_malformed"


class UnknownEntitlementKeyError(EntitlementRejectedError):
    """No signature is by a key the car trusts."""

    reason = "unknown_key"
    code = "entitlement_unknown_key"


class BadEntitlementSignatureError(EntitlementRejectedError):
    """Signed by a trusted key id, but the signature does not verify (forged or altered)."""

    reason = "bad_signature"
    code = "entitlement_bad_signature"


class ForeignVinEntitlementError(EntitlementRejectedError):
    reason = "foreign_vin"
    code = "entitlement_foreign_vin"


class EntitlementNotYetValidError(EntitlementRejectedError):
    reason = "not_yet_valid"
    code = "entitlement_not_yet_valid"


class ExpiredEntitlementError(EntitlementRejectedError):
    reason = "expired"
    code = "entitlement_expired"


class StaleEntitlementVersionError(EntitlementRejectedError):
    """A version at or below the one the car holds (replay or rollback)."""

    reason = "stale_version"
    code = "entitlement_stale_version"


# -- the document --------------------------------------------------------------------------------

FeatureName = Annotated[str, Field(pattern=FEATURE_NAME_PATTERN)]


class _Signed(BaseModel):
    # Signed bodies come from the cloud: fields a newer backend adds are ignored, not refused
    # (the signature already vouches for them), so an older car keeps working.
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class EntitlementFeature(_Signed):
    name: FeatureName
    kind: EntitlementKind
    valid_from: EpochMillis
    valid_until: EpochMillis | None  # None: no end (a purchase, or until revoked)

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self

    def active_at(self, now_ms: int) -> bool:
        return self.valid_from <= now_ms and (self.valid_until is None or now_ms < self.valid_until)


class EntitlementDocument(_Signed):
    """Every feature a vehicle may use, as of ``version``. The newest version supersedes all
    earlier ones: a feature missing from it is off (that is how a revocation reaches a car)."""

    vin: Annotated[str, Field(pattern=VIN_PATTERN)]
    version: Annotated[int, Field(ge=1, le=2**63 - 1)]
    issued_at: EpochMillis
    # Until when a car accepts this document as new. The features it grants keep their own
    # windows after that: a car offline for a year keeps a purchased feature.
    expires_at: EpochMillis
    features: list[EntitlementFeature] = Field(max_length=MAX_FEATURES)

    @model_validator(mode="after")
    def _lifetime(self) -> Self:
        if self.expires_at <= self.issued_at:
            raise ValueError("expires_at must be after issued_at")
        return self

    def active_features(self, now_ms: int) -> frozenset[str]:
        """The features on at ``now_ms`` by the car's own clock (a trial ends offline)."""
        return frozenset(f.name for f in self.features if f.active_at(now_ms))


class EnvelopeSignature(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    keyid: Annotated[str, Field(min_length=1, max_length=128)]
    sig: Annotated[str, Field(min_length=1, max_length=256)]


class SignedEnvelope(BaseModel):
    """DSSE v1. ``payload_type`` is ``payloadType`` on the wire."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True, populate_by_name=True)

    payload_type: str = Field(alias="payloadType", max_length=128)
    payload: Annotated[str, Field(max_length=(MAX_BODY_BYTES * 4) // 3 + 4)]
    signatures: list[EnvelopeSignature] = Field(min_length=1, max_length=MAX_SIGNATURES)

    def wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


def encode_body(document: EntitlementDocument) -> bytes:
    """The canonical bytes of a document: sorted keys, no whitespace, UTF-8."""
    data = document.model_dump(mode="json")
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what is actually signed."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(body), body)


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedEntitlementError(f"{what} is not base64: {exc}", value=text[:80]) from exc


def public_key_from_hex(text: str) -> Ed25519PublicKey:
    """A raw 32-byte ed25519 public key written as 64 hex digits (how keys are provisioned)."""
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))


def trusted_keys_from_hex(keys: Mapping[str, str]) -> dict[str, Ed25519PublicKey]:
    return {keyid: public_key_from_hex(value) for keyid, value in keys.items()}


def command_id(vin: str, version: int) -> str:
    """The command id of a document version: stable, so a re-push is recognisably the same."""
    return f"{COMMAND_ID_PREFIX}{vin}-{version}"


def verified_body(raw: Mapping[str, Any], keys: TrustedKeys) -> bytes:
    """The body of ``raw`` (a DSSE envelope as parsed JSON) if a trusted key signed it.

    At least one signature must be by a pinned key and verify; signatures by other keys are
    ignored (that is what lets a key rotation sign with old and new keys side by side)."""
    try:
        envelope = SignedEnvelope.model_validate(raw)
    except ValidationError as exc:
        raise MalformedEntitlementError(f"not an entitlement envelope: {exc}") from exc
    if envelope.payload_type != PAYLOAD_TYPE:
        raise MalformedEntitlementError(
            f"payload type {envelope.payload_type[:80]!r} is not {PAYLOAD_TYPE}",
            value=envelope.payload_type,
        )
    body = _b64decode(envelope.payload, "payload")
    if len(body) > MAX_BODY_BYTES:
        raise MalformedEntitlementError(f"body of {len(body)} bytes > {MAX_BODY_BYTES}")
    trusted = [s for s in envelope.signatures if s.keyid in keys]
    if not trusted:
        keyids = [s.keyid[:16] for s in envelope.signatures]
        raise UnknownEntitlementKeyError(f"signed by no trusted key ({keyids})", value=keyids)
    message = pae(envelope.payload_type, body)
    for signature in trusted:
        try:
            keys[signature.keyid].verify(base64.b64decode(signature.sig, validate=True), message)
        except (InvalidSignature, binascii.Error, ValueError):
            continue
        return body
    raise BadEntitlementSignatureError(
        "no signature by a trusted key verifies", value=[s.keyid for s in trusted]
    )


def verify_document(
    raw: Mapping[str, Any],
    keys: TrustedKeys,
    *,
    vin: str,
    now_ms: int,
    max_clock_skew_ms: int = DEFAULT_MAX_CLOCK_SKEW_MS,
) -> EntitlementDocument:
    """Authenticate ``raw``, then check it is for ``vin`` and acceptable at ``now_ms`` (the
    car's clock). Raises an :class:`EntitlementRejectedError` naming the reason. Pure."""
    body = verified_body(raw, keys)
    try:
        document = EntitlementDocument.model_validate_json(body)
    except ValidationError as exc:
        raise MalformedEntitlementError(f"signed body is not a document: {exc}") from exc
    if document.vin != vin:
        raise ForeignVinEntitlementError(
            f"document for {document.vin}, this is {vin}", value=document.vin
        )
    if document.issued_at > now_ms + max_clock_skew_ms:
        raise EntitlementNotYetValidError(
            f"issued at {document.issued_at}, the clock says {now_ms}", value=document.issued_at
        )
    if now_ms >= document.expires_at:
        raise ExpiredEntitlementError(
            f"expired at {document.expires_at}, the clock says {now_ms}", value=document.expires_at
        )
    return document
