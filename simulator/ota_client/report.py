"""The car's signed version report (docs/ota.md, "Version reports"; Uptane 5.4.2.1): each
ECU's serial, hardware id and installed image, a counter that only goes up and a fresh nonce,
and optionally the progress of one campaign's update, signed with the car's ed25519 ECU key
over TUF's canonical JSON."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from securesystemslib.formats import encode_canonical

from simulator.ota_client.verify import EcuState

NONCE_BYTES = 16


@dataclass(frozen=True, slots=True)
class Progress:
    campaign_id: str
    status: str  # downloading, downloaded, installing, installed, failed, rolled_back
    code: str | None = None
    detail: str | None = None


class EcuKey:
    """The car's report signing key (one per car here; Uptane gives every ECU its own)."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_bytes = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.keyid = hashlib.sha256(self.public_bytes).hexdigest()

    @classmethod
    def derived(cls, seed: str) -> EcuKey:
        """A key that is a pure function of ``seed`` (a simulated car's key is reproducible
        from its VIN and the fleet seed, like the rest of the car)."""
        return cls(Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest()))

    def sign(self, payload: bytes) -> str:
        return self._key.sign(payload).hex()


def new_nonce() -> str:
    return secrets.token_hex(NONCE_BYTES)


def version_report(
    key: EcuKey,
    *,
    vin: str,
    counter: int,
    nonce: str,
    ts_ms: int,
    ecus: Sequence[EcuState],
    progress: Progress | None = None,
) -> bytes:
    signed: dict[str, Any] = {
        "vin": vin,
        "counter": counter,
        "nonce": nonce,
        "ts": ts_ms,
        "ecus": [
            {
                "serial": ecu.serial,
                "hardware_id": ecu.hardware_id,
                "installed": {
                    "path": ecu.installed.path,
                    "version": ecu.installed.version,
                    "sha256": ecu.installed.sha256,
                    "length": ecu.installed.length,
                    "release_counter": ecu.installed.release_counter,
                },
            }
            for ecu in ecus
        ],
    }
    if progress is not None:
        signed["update"] = {
            "campaign_id": progress.campaign_id,
            "status": progress.status,
            "code": progress.code,
            "detail": progress.detail[:500] if progress.detail else None,
        }
    canonical = encode_canonical(signed)
    assert isinstance(canonical, str)
    envelope = {
        "signed": signed,
        "signatures": [{"keyid": key.keyid, "sig": key.sign(canonical.encode())}],
    }
    return json.dumps(envelope, separators=(",", ":")).encode()
