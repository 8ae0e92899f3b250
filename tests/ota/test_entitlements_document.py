"""Entitlement documents: building, signing and offline verification, with known answers, and
the attacks of issue 9 (forged, expired, foreign-VIN) against the verification core."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ota.entitlements.signing import GrantedFeature, build_document, sign_document
from ota.keys import signer_for
from ota.tuf_api import CryptoSigner
from protocol.entitlements import (
    PAYLOAD_TYPE,
    BadEntitlementSignatureError,
    EntitlementNotYetValidError,
    ExpiredEntitlementError,
    ForeignVinEntitlementError,
    MalformedEntitlementError,
    UnknownEntitlementKeyError,
    encode_body,
    pae,
    trusted_keys_from_hex,
    verify_document,
)

VIN = "WVWZZZ1JZXW000001"
OTHER_VIN = "WVWZZZ1JZXW000002"
T0 = 1763892000000  # 2025-11-23T10:00:00Z
DAY_MS = 86_400_000
LIFETIME_MS = 7 * DAY_MS
# Key from the seed 00 01 .. 1f: ed25519 is deterministic, so every value below is fixed.
SEED = bytes(range(32))
KEYID = "63d00ee3cf4f5c61ad94efa696c68f13b608fe56ecea13fb144a6fd18e9235b9"
PUBLIC_HEX = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
BODY = (
    '{"expires_at":1764496800000,"features":['
    '{"kind":"purchase","name":"adaptive_cruise","valid_from":1763892000000,"valid_until":null},'
    '{"kind":"subscription","name":"heated_seats","valid_from":1763892000000,'
    '"valid_until":1766484000000}],'
    '"issued_at":1763892000000,"version":3,"vin":"WVWZZZ1JZXW000001"}'
)
SIGNATURE = (
    "0Z4SG4J2OyINYo7VPB14XwELnM+ghlwt6rqG8aqfv6BCw8bt4uvOWTrkijZQSKSsbfqREc58L+yk+MGvH5FjBA=="
)
FEATURES = [
    GrantedFeature("heated_seats", "subscription", T0, T0 + 30 * DAY_MS),
    GrantedFeature("adaptive_cruise", "purchase", T0, None),
]


def _signer(seed: bytes = SEED) -> CryptoSigner:
    return signer_for(Ed25519PrivateKey.from_private_bytes(seed))


TRUSTED = trusted_keys_from_hex({KEYID: PUBLIC_HEX})


def _envelope(
    vin: str = VIN,
    version: int = 3,
    *,
    now_ms: int = T0,
    signers: list[CryptoSigner] | None = None,
    features: list[GrantedFeature] | None = None,
) -> dict[str, Any]:
    document = build_document(
        vin,
        version,
        FEATURES if features is None else features,
        now_ms=now_ms,
        lifetime_ms=LIFETIME_MS,
    )
    return sign_document(document, signers or [_signer()]).wire()


# -- known answers -------------------------------------------------------------------------------


def test_pae_is_dsse_v1() -> None:
    # The example of the DSSE specification (secure-systems-lab/dsse protocol.md).
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_the_key_and_its_id_are_fixed_by_the_seed() -> None:
    signer = _signer()
    assert signer.public_key.keyid == KEYID
    assert signer.public_key.keyval["public"] == PUBLIC_HEX


def test_a_document_has_canonical_bytes_and_a_deterministic_signature() -> None:
    document = build_document(VIN, 3, FEATURES, now_ms=T0, lifetime_ms=LIFETIME_MS)
    assert encode_body(document).decode() == BODY
    envelope = sign_document(document, [_signer()]).wire()
    assert envelope == {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(BODY.encode()).decode(),
        "signatures": [{"keyid": KEYID, "sig": SIGNATURE}],
    }


def test_features_are_sorted_so_the_same_grants_give_the_same_body() -> None:
    reversed_order = build_document(VIN, 3, FEATURES[::-1], now_ms=T0, lifetime_ms=LIFETIME_MS)
    assert encode_body(reversed_order).decode() == BODY


def test_the_known_envelope_verifies_with_the_pinned_key() -> None:
    envelope = {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(BODY.encode()).decode(),
        "signatures": [{"keyid": KEYID, "sig": SIGNATURE}],
    }
    document = verify_document(envelope, TRUSTED, vin=VIN, now_ms=T0 + DAY_MS)
    assert document.version == 3
    assert document.active_features(T0 + DAY_MS) == {"heated_seats", "adaptive_cruise"}
    # The subscription ends by the car's clock alone; the purchase stays.
    assert document.active_features(T0 + 30 * DAY_MS) == {"adaptive_cruise"}
    assert document.active_features(T0 - 1) == frozenset()


# -- attacks --------------------------------------------------------------------------------------


def test_a_document_signed_by_an_unknown_key_is_rejected() -> None:
    forged = _envelope(signers=[_signer(bytes(32))])
    with pytest.raises(UnknownEntitlementKeyError) as caught:
        verify_document(forged, TRUSTED, vin=VIN, now_ms=T0)
    assert caught.value.reason == "unknown_key"


def test_a_forged_signature_under_the_trusted_key_id_is_rejected() -> None:
    # An attacker signs with their own key but names the fleet's key id.
    forged = _envelope(signers=[_signer(bytes(32))])
    forged["signatures"][0]["keyid"] = KEYID
    with pytest.raises(BadEntitlementSignatureError) as caught:
        verify_document(forged, TRUSTED, vin=VIN, now_ms=T0)
    assert caught.value.reason == "bad_signature"


def test_an_altered_body_fails_the_signature() -> None:
    envelope = _envelope()
    body = json.loads(base64.b64decode(envelope["payload"]))
    body["features"].append(
        {"kind": "purchase", "name": "performance_boost", "valid_from": T0, "valid_until": None}
    )
    envelope["payload"] = base64.b64encode(json.dumps(body).encode()).decode()
    with pytest.raises(BadEntitlementSignatureError):
        verify_document(envelope, TRUSTED, vin=VIN, now_ms=T0)


def test_a_signature_over_another_payload_type_does_not_pass() -> None:
    # The payload type is part of what is signed: relabelling an envelope breaks it.
    envelope = _envelope()
    envelope["payloadType"] = "application/vnd.other+json"
    with pytest.raises(MalformedEntitlementError):
        verify_document(envelope, TRUSTED, vin=VIN, now_ms=T0)


def test_a_signature_of_another_car_is_rejected_as_foreign() -> None:
    for_b = _envelope(vin=OTHER_VIN)
    with pytest.raises(ForeignVinEntitlementError) as caught:
        verify_document(for_b, TRUSTED, vin=VIN, now_ms=T0)
    assert caught.value.reason == "foreign_vin"


def test_an_expired_document_is_rejected() -> None:
    old = _envelope(now_ms=T0)
    verify_document(old, TRUSTED, vin=VIN, now_ms=T0 + LIFETIME_MS - 1)
    with pytest.raises(ExpiredEntitlementError) as caught:
        verify_document(old, TRUSTED, vin=VIN, now_ms=T0 + LIFETIME_MS)
    assert caught.value.reason == "expired"


def test_a_document_from_the_future_is_rejected_beyond_the_clock_skew() -> None:
    ahead = _envelope(now_ms=T0 + 10 * 60_000)
    with pytest.raises(EntitlementNotYetValidError):
        verify_document(ahead, TRUSTED, vin=VIN, now_ms=T0)
    verify_document(ahead, TRUSTED, vin=VIN, now_ms=T0 + 6 * 60_000)  # within 5 min of skew


@pytest.mark.parametrize(
    "mangle",
    [
        lambda e: e.pop("signatures"),
        lambda e: e.update(signatures=[]),
        lambda e: e.update(payload="not base64!"),
        lambda e: e.update(payload=base64.b64encode(b"x" * 70_000).decode()),
        lambda e: e["signatures"][0].update(sig="@@@"),
    ],
    ids=["no signatures", "empty signatures", "bad base64", "too large", "bad sig base64"],
)
def test_malformed_envelopes_are_rejected_with_a_reason(mangle: Any) -> None:
    envelope = _envelope()
    mangle(envelope)
    with pytest.raises((MalformedEntitlementError, BadEntitlementSignatureError)) as caught:
        verify_document(envelope, TRUSTED, vin=VIN, now_ms=T0)
    assert caught.value.reason in {"malformed", "bad_signature"}


def test_a_signed_body_that_is_not_a_document_is_malformed() -> None:
    body = b'{"vin": "WVWZZZ1JZXW000001"}'
    signature = _signer().sign(pae(PAYLOAD_TYPE, body)).signature
    envelope = {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(body).decode(),
        "signatures": [
            {"keyid": KEYID, "sig": base64.b64encode(bytes.fromhex(signature)).decode()}
        ],
    }
    with pytest.raises(MalformedEntitlementError):
        verify_document(envelope, TRUSTED, vin=VIN, now_ms=T0)


def test_a_rotation_signs_with_both_keys_and_either_verifies() -> None:
    new = _signer(bytes([7]) * 32)
    envelope = _envelope(signers=[_signer(), new])
    assert len(envelope["signatures"]) == 2
    verify_document(envelope, TRUSTED, vin=VIN, now_ms=T0)
    only_new = trusted_keys_from_hex({new.public_key.keyid: new.public_key.keyval["public"]})
    verify_document(envelope, only_new, vin=VIN, now_ms=T0)
