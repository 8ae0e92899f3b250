"""The seam between the broker and whoever knows the credentials (the vehicle registry,
service accounts). The broker depends on this Protocol only, never on the database."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from typing import Protocol

from broker.policy import Identity, ServiceIdentity


class CredentialVerifier(Protocol):
    async def verify(self, username: str, password: str) -> Identity | None:
        """The identity these credentials prove, or None."""
        ...


class CertificateVerifier(Protocol):
    async def verify_certificate(self, certificate_der: bytes) -> Identity | None:
        """The vehicle a TLS client certificate (already chain-checked by the TLS layer)
        proves, or None (revoked, expired, not a vehicle certificate)."""
        ...


class ServiceAccounts:
    """Backend service identities with fixed secrets (from settings)."""

    def __init__(self, accounts: Mapping[str, tuple[str, ServiceIdentity]]) -> None:
        self._accounts = dict(accounts)

    async def verify(self, username: str, password: str) -> Identity | None:
        entry = self._accounts.get(username)
        if entry is None:
            return None
        secret, identity = entry
        return identity if hmac.compare_digest(secret.encode(), password.encode()) else None


class FirstMatch:
    """Ask several verifiers in order; the first identity wins."""

    def __init__(self, verifiers: Sequence[CredentialVerifier]) -> None:
        self._verifiers = list(verifiers)

    async def verify(self, username: str, password: str) -> Identity | None:
        for verifier in self._verifiers:
            identity = await verifier.verify(username, password)
            if identity is not None:
                return identity
        return None
