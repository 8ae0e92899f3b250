"""Building and signing an entitlement document. Pure: the caller passes the features, the
version and ``now``; no I/O, no clock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ota.tuf_api import Signer
from protocol.entitlements import (
    PAYLOAD_TYPE,
    EntitlementDocument,
    EntitlementFeature,
    EntitlementKind,
    EnvelopeSignature,
    SignedEnvelope,
    b64encode,
    encode_body,
    pae,
)


@dataclass(frozen=True, slots=True)
class GrantedFeature:
    """One row of the vehicle's current entitlements, times in epoch milliseconds."""

    name: str
    kind: str
    valid_from_ms: int
    valid_until_ms: int | None


def build_document(
    vin: str,
    version: int,
    features: Sequence[GrantedFeature],
    *,
    now_ms: int,
    lifetime_ms: int,
) -> EntitlementDocument:
    """Version ``version`` of ``vin``'s document, issued at ``now_ms``. Features are sorted so
    the same entitlements give the same body."""
    ordered = sorted(
        features,
        key=lambda f: (f.name, f.valid_from_ms, f.valid_until_ms or 0, f.kind),
    )
    return EntitlementDocument(
        vin=vin,
        version=version,
        issued_at=now_ms,
        expires_at=now_ms + lifetime_ms,
        features=[
            EntitlementFeature(
                name=f.name,
                kind=EntitlementKind(f.kind),
                valid_from=f.valid_from_ms,
                valid_until=f.valid_until_ms,
            )
            for f in ordered
        ],
    )


def sign_document(document: EntitlementDocument, signers: Sequence[Signer]) -> SignedEnvelope:
    """A DSSE envelope of ``document`` with one ed25519 signature per signer."""
    if not signers:
        raise ValueError("an entitlement document needs at least one signer")
    body = encode_body(document)
    message = pae(PAYLOAD_TYPE, body)
    signatures = []
    for signer in signers:
        signature = signer.sign(message)
        signatures.append(
            EnvelopeSignature(
                keyid=signer.public_key.keyid, sig=b64encode(bytes.fromhex(signature.signature))
            )
        )
    return SignedEnvelope(payload_type=PAYLOAD_TYPE, payload=b64encode(body), signatures=signatures)
