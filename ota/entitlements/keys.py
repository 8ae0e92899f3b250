"""The online entitlement signing key: ``entitlements.<keyid>.pem`` in the OTA online key
directory (``<OTA data dir>/keys``, 0700/0600, :class:`ota.keys.KeyDirectory`), beside the TUF
online keys. Online because documents are signed unattended, at every grant and revocation.

Cars pin the public key (:meth:`EntitlementKeys.trusted_keys`: key id -> raw ed25519 public key
as hex), the way a telematics unit gets its trust anchors at end of line. Every key present
signs each document, so a rotation is: add a key, provision cars with it, retire the old one
(``KeyDirectory.retire``); meanwhile documents carry both signatures and old and new cars both
accept them.
"""

from __future__ import annotations

from pathlib import Path

from ota.entitlements.errors import EntitlementKeyMissingError
from ota.keys import KeyDirectory, generate_key
from ota.tuf_api import CryptoSigner

ENTITLEMENTS_ROLE = "entitlements"


class EntitlementKeys:
    def __init__(self, keys_dir: Path) -> None:
        self._directory = KeyDirectory(keys_dir, roles=(ENTITLEMENTS_ROLE,))

    @property
    def path(self) -> Path:
        return self._directory.path

    def signers(self) -> list[CryptoSigner]:
        """Every entitlement key; raises when there is none."""
        signers = self._directory.signers(ENTITLEMENTS_ROLE)
        if not signers:
            raise EntitlementKeyMissingError(
                f"no entitlement key in {self.path} (fleetlink up creates one; or "
                "EntitlementKeys(keys_dir).ensure())",
                path=str(self.path),
            )
        return signers

    def ensure(self) -> list[CryptoSigner]:
        """The keys, creating the first one if there is none (first start of a deployment)."""
        signers = self._directory.signers(ENTITLEMENTS_ROLE)
        if signers:
            return signers
        return [self._directory.add(ENTITLEMENTS_ROLE, generate_key())]

    def trusted_keys(self) -> dict[str, str]:
        """Key id -> public key (64 hex digits): what to pin in each car."""
        return {s.public_key.keyid: s.public_key.keyval["public"] for s in self.signers()}
