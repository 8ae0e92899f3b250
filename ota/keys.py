"""Ed25519 signing keys on disk: one PEM (PKCS#8) file per key, ``<role>.<keyid>.pem``.

Two directories, never one: the online directory (``<OTA data dir>/keys``) holds targets,
snapshot and timestamp keys and is what the service loads; the offline directory holds the root
keys and is opened only by ``fleetlink ota keys init|rotate`` during a key ceremony (TUF spec
section 6.1: root keys offline, ideally on removable media kept in a safe). Each directory
accepts only its own roles, so a root key cannot end up where the server reads.

Files are created 0600 in a 0700 directory and refused when group- or world-accessible, the
way OpenSSH treats private keys. Offline keys may be encrypted with a passphrase
(``BestAvailableEncryption``).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Collection
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    KeySerializationEncryption,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from ota.errors import KeyStoreError
from ota.tuf_api import CryptoSigner

KEY_SUFFIX = ".pem"
RETIRED_DIR = "retired"
DIR_MODE = 0o700
FILE_MODE = 0o600
_TOO_OPEN = stat.S_IRWXG | stat.S_IRWXO


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def signer_for(private_key: Ed25519PrivateKey) -> CryptoSigner:
    """A python-tuf signer; its public key's keyid is the TUF default (sha256 of the
    canonical key JSON), so it is a pure function of the key."""
    return CryptoSigner(private_key)


class KeyDirectory:
    def __init__(
        self, path: Path, *, roles: Collection[str], passphrase: bytes | None = None
    ) -> None:
        self.path = path
        self._roles = frozenset(roles)
        self._passphrase = passphrase

    def exists(self) -> bool:
        return self.path.is_dir()

    def create(self) -> None:
        self.path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        self.path.chmod(DIR_MODE)

    def add(self, role: str, private_key: Ed25519PrivateKey) -> CryptoSigner:
        """Store a new key for ``role``; returns its signer. Never overwrites a file."""
        self._check_role(role)
        self.create()
        signer = signer_for(private_key)
        pem = private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, self._encryption())
        target = self.path / f"{role}.{signer.public_key.keyid}{KEY_SUFFIX}"
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except OSError as exc:
            raise KeyStoreError(
                f"cannot create key file {target}: {exc}", path=str(target)
            ) from exc
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        return signer

    def signers(self, role: str) -> list[CryptoSigner]:
        """Every key of ``role`` in this directory (retired ones excluded)."""
        self._check_role(role)
        if not self.path.is_dir():
            return []
        self._check_mode(self.path)
        found = []
        for path in sorted(self.path.glob(f"{role}.*{KEY_SUFFIX}")):
            self._check_mode(path)
            found.append(self._load(path))
        return found

    def retire(self, role: str, keyids: Collection[str]) -> None:
        """Move the named keys of ``role`` to ``retired/``: kept for the record, never loaded
        again (a rotated-out key may be the compromised one)."""
        self._check_role(role)
        retired = self.path / RETIRED_DIR
        retired.mkdir(mode=DIR_MODE, exist_ok=True)
        for keyid in keyids:
            source = self.path / f"{role}.{keyid}{KEY_SUFFIX}"
            with contextlib.suppress(FileNotFoundError):
                source.rename(retired / source.name)

    def _check_role(self, role: str) -> None:
        if role not in self._roles:
            raise KeyStoreError(
                f"{self.path} holds keys of {sorted(self._roles)} only, not {role!r}",
                path=str(self.path),
            )

    def _encryption(self) -> KeySerializationEncryption:
        if self._passphrase:
            return BestAvailableEncryption(self._passphrase)
        return NoEncryption()

    @staticmethod
    def _check_mode(path: Path) -> None:
        mode = path.stat().st_mode
        if mode & _TOO_OPEN:
            raise KeyStoreError(
                f"{path} is accessible by group or others (mode {stat.S_IMODE(mode):o}); "
                f"chmod {'700' if path.is_dir() else '600'} it",
                path=str(path),
            )

    def _load(self, path: Path) -> CryptoSigner:
        try:
            private_key = load_pem_private_key(path.read_bytes(), self._passphrase or None)
        except (ValueError, TypeError, OSError) as exc:
            # ValueError: corrupt or wrong passphrase; TypeError: encrypted but none given.
            raise KeyStoreError(f"cannot load key {path}: {exc}", path=str(path)) from exc
        if not isinstance(private_key, Ed25519PrivateKey):
            raise KeyStoreError(f"{path} is not an ed25519 key", path=str(path))
        signer = signer_for(private_key)
        if not path.name.endswith(f".{signer.public_key.keyid}{KEY_SUFFIX}"):
            raise KeyStoreError(f"{path}: file name does not match its key id", path=str(path))
        return signer
