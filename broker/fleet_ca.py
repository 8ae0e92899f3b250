"""The fleet CA: issues vehicle client certificates (CN = VIN) and the broker's server certificate.

Vehicles authenticate to the broker with mutual TLS instead of a password. Preferably the car
generates its key and sends a CSR, so the private key never leaves the vehicle; without a CSR the
CA generates a P-256 key (simulator, tests, bench provisioning). Issuance is pure (``now`` is
passed in); only :meth:`FleetCA.load_or_create` touches the file system. Verification is in
:mod:`broker.certificates` and re-exported here.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker.certificates import (
    CaInvalidError,
    CertificateError,
    CertificateExpiredError,
    CertificateNotYetValidError,
    CertificateNoVinError,
    CertificateRevokedError,
    CertificateUntrustedError,
    CertificateWrongUsageError,
    CsrCommonNameMismatchError,
    CsrInvalidSignatureError,
    CsrKeyTooWeakError,
    CsrMalformedError,
    load_ca_certificate,
    require_aware,
    vehicle_identity_from_certificate,
    verify_vehicle_csr,
)
from broker.secure_files import write_atomically
from protocol.vin import Vin

__all__ = [
    "CA_CERTIFICATE_FILE",
    "CA_KEY_FILE",
    "CaInvalidError",
    "CaStoreError",
    "CertificateError",
    "CertificateExpiredError",
    "CertificateNoVinError",
    "CertificateNotYetValidError",
    "CertificateRevokedError",
    "CertificateUntrustedError",
    "CertificateWrongUsageError",
    "CsrCommonNameMismatchError",
    "CsrInvalidSignatureError",
    "CsrKeyTooWeakError",
    "CsrMalformedError",
    "FleetCA",
    "IssuedCertificate",
    "vehicle_identity_from_certificate",
]

CA_KEY_FILE = "fleet-ca.key"
CA_CERTIFICATE_FILE = "fleet-ca.crt"
DEFAULT_CA_COMMON_NAME = "FleetLink Fleet CA"
DEFAULT_CA_VALIDITY_DAYS = 3650
DEFAULT_VEHICLE_VALIDITY_DAYS = 365
# CA/Browser Forum's historical cap for server certificates; clients (Apple, Chrome) reject longer.
DEFAULT_SERVER_VALIDITY_DAYS = 825
DEFAULT_CRL_NEXT_UPDATE_DAYS = 7
# Backdating absorbs clock skew between the CA and cars whose RTC was last set by GNSS or NTP.
CLOCK_SKEW = timedelta(minutes=5)
VEHICLE_ORGANIZATION = "FleetLink vehicle"
_KEY_FILE_MODE = 0o600

CaPrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class CaStoreError(CertificateError):
    """The CA files on disk are incomplete or readable by others; never silently replaced."""

    code = "ca_store_invalid"

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class IssuedCertificate:
    vin: str
    serial: int
    certificate_pem: bytes
    private_key_pem: bytes | None  # None when issued from a CSR: the key stays in the car
    not_before: datetime
    not_after: datetime
    fingerprint_sha256: str  # lower-case hex of the DER encoding


class FleetCA:
    """A CA key and its self-signed certificate. Construct with :meth:`create` or
    :meth:`load_or_create`."""

    def __init__(self, private_key: CaPrivateKey, certificate: x509.Certificate) -> None:
        if _public_der(private_key.public_key()) != _public_der(certificate.public_key()):
            raise CaInvalidError("fleet CA private key does not match its certificate")
        self._key = private_key
        self._certificate = load_ca_certificate(
            certificate.public_bytes(serialization.Encoding.PEM)
        )

    @classmethod
    def create(
        cls,
        *,
        now: datetime,
        common_name: str = DEFAULT_CA_COMMON_NAME,
        validity_days: int = DEFAULT_CA_VALIDITY_DAYS,
    ) -> FleetCA:
        now = require_aware(now)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "FleetLink"),
            ]
        )
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(_serial())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + timedelta(days=validity_days))
            # RFC 5280 4.2.1.9: critical cA=TRUE; pathLen 0 because the fleet CA signs only
            # end entities, so a leaked vehicle key can never act as an intermediate.
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            # RFC 5280 4.2.1.3: keyCertSign and cRLSign, critical.
            .add_extension(_key_usage(cert_sign=True), critical=True)
            # RFC 5280 4.2.1.2 (SKI, MUST for CAs) and 4.2.1.1 (AKI; OpenSSL's strict mode wants
            # it on self-signed roots too).
            .add_extension(ski, critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                critical=False,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    @classmethod
    def load_or_create(cls, directory: Path, *, now: datetime) -> FleetCA:
        """The CA in ``directory`` (``fleet-ca.key`` mode 0600, ``fleet-ca.crt``), created on first
        use. A lock serialises concurrent first starts so two processes cannot mint two CAs."""
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        key_path = directory / CA_KEY_FILE
        cert_path = directory / CA_CERTIFICATE_FILE
        with _exclusive_lock(directory / ".fleet-ca.lock"):
            if key_path.exists() or cert_path.exists():
                return cls._load(key_path, cert_path)
            ca = cls.create(now=now)
            # Key first: a crash in between leaves a key without certificate, which _load refuses
            # loudly rather than pairing a certificate with a key that does not exist.
            write_atomically(key_path, ca._private_key_pem(), mode=_KEY_FILE_MODE)
            write_atomically(cert_path, ca.certificate_pem, mode=0o644)
            return ca

    @classmethod
    def _load(cls, key_path: Path, cert_path: Path) -> FleetCA:
        for path in (key_path, cert_path):
            if not path.exists():
                raise CaStoreError(f"{path} is missing; restore it or remove both files", path=path)
        if stat.S_IMODE(key_path.stat().st_mode) & 0o077:
            # Like ssh with private keys: a CA key readable by others is already compromised.
            raise CaStoreError(f"{key_path} must not be accessible by group/others", path=key_path)
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise CaStoreError(
                f"{key_path} is not a PEM private key: {exc}", path=key_path
            ) from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise CaStoreError(f"{key_path}: CA key must be EC or RSA", path=key_path)
        return cls(key, load_ca_certificate(cert_path.read_bytes()))

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    @property
    def certificate_pem(self) -> bytes:
        return self._certificate.public_bytes(serialization.Encoding.PEM)

    def _private_key_pem(self) -> bytes:
        # Unencrypted PKCS#8: the embedded runtime must start unattended; the file mode and the
        # data directory protect it. Production should keep the CA offline or in an HSM.
        return _key_pem(self._key)

    def issue_vehicle_certificate(
        self,
        vin: str,
        *,
        now: datetime,
        csr_pem: bytes | None = None,
        validity_days: int = DEFAULT_VEHICLE_VALIDITY_DAYS,
    ) -> IssuedCertificate:
        """A client certificate for ``vin``; raises ``InvalidVinError`` for a bad VIN and
        :class:`CertificateError` for a bad CSR."""
        now = require_aware(now)
        checked_vin = Vin(vin)
        key_pem: bytes | None
        if csr_pem is not None:
            public_key = verify_vehicle_csr(csr_pem, checked_vin).public_key()
            key_pem = None
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            public_key = key.public_key()
            key_pem = _key_pem(key)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, str(checked_vin)),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, VEHICLE_ORGANIZATION),
            ]
        )
        certificate = self._end_entity(
            subject,
            public_key,
            now=now,
            validity_days=validity_days,
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
            san=None,
        )
        return IssuedCertificate(
            vin=str(checked_vin),
            serial=certificate.serial_number,
            certificate_pem=certificate.public_bytes(serialization.Encoding.PEM),
            private_key_pem=key_pem,
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            fingerprint_sha256=certificate.fingerprint(hashes.SHA256()).hex(),
        )

    def issue_server_certificate(
        self,
        *,
        hostnames: Sequence[str],
        ip_addresses: Sequence[str],
        now: datetime,
        validity_days: int = DEFAULT_SERVER_VALIDITY_DAYS,
    ) -> tuple[bytes, bytes]:
        """``(cert_pem, key_pem)`` for the broker's TLS listener."""
        now = require_aware(now)
        if not hostnames and not ip_addresses:
            raise CertificateError("a server certificate needs at least one hostname or IP")
        try:
            ips = [ipaddress.ip_address(ip) for ip in ip_addresses]
        except ValueError as exc:
            raise CertificateError(f"invalid IP address: {exc}") from exc
        # RFC 6125 6.4.4: clients match SAN entries, CN is only a label; RFC 5280 4.2.1.6 wants
        # SAN critical only when the subject is empty, which it is not.
        san = x509.SubjectAlternativeName(
            [*(x509.DNSName(h) for h in hostnames), *(x509.IPAddress(ip) for ip in ips)]
        )
        key = ec.generate_private_key(ec.SECP256R1())
        label = hostnames[0] if hostnames else str(ips[0])
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, label),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "FleetLink"),
            ]
        )
        certificate = self._end_entity(
            subject,
            key.public_key(),
            now=now,
            validity_days=validity_days,
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
            san=san,
        )
        return certificate.public_bytes(serialization.Encoding.PEM), _key_pem(key)

    def certificate_revocation_list(
        self,
        revoked: Sequence[tuple[int, datetime]],
        *,
        now: datetime,
        next_update_days: int = DEFAULT_CRL_NEXT_UPDATE_DAYS,
    ) -> bytes:
        """PEM CRL of ``(serial, revocation_time)`` pairs (Mosquitto ``crlfile``).

        OpenSSL rejects every client once ``nextUpdate`` has passed, so regenerate well before
        ``next_update_days`` and reload the broker.
        """
        now = require_aware(now)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self._certificate.subject)
            .last_update(now)
            .next_update(now + timedelta(days=next_update_days))
            # RFC 5280 5.2.3: CRL number MUST be present and increase; epoch seconds of `now`
            # increase with every regeneration without persisted state.
            .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
            # RFC 5280 5.2.1: AKI MUST be present in conforming CRLs.
            .add_extension(self._authority_key_identifier(), critical=False)
        )
        for serial, revoked_at in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(require_aware(revoked_at))
                .build()
            )
        crl = builder.sign(self._key, hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.PEM)

    def _end_entity(
        self,
        subject: x509.Name,
        public_key: CertificatePublicKeyTypes,
        *,
        now: datetime,
        validity_days: int,
        usage: x509.ObjectIdentifier,
        san: x509.SubjectAlternativeName | None,
    ) -> x509.Certificate:
        if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise CsrKeyTooWeakError(
                "only EC and RSA keys are certified",
                key_type=type(public_key).__name__,
                key_size=None,
            )
        ca_not_after = self._certificate.not_valid_after_utc
        if now >= ca_not_after:
            raise CaInvalidError(f"fleet CA expired at {ca_not_after.isoformat()}")
        # A certificate must not outlive its issuer: validators reject it after the CA expires
        # anyway (RFC 5280 6.1.3), and a truthful notAfter lets operators plan renewal.
        not_after = min(now + timedelta(days=validity_days), ca_not_after)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._certificate.subject)
            .public_key(public_key)
            .serial_number(_serial())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(self._authority_key_identifier(), critical=False)
        )
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        return builder.sign(self._key, hashes.SHA256())

    def _authority_key_identifier(self) -> x509.AuthorityKeyIdentifier:
        # RFC 5280 4.2.1.1: the AKI carries the issuer's SKI so validators pick the right CA key.
        ski = self._certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)


def _serial() -> int:
    # RFC 5280 4.1.2.2: positive, at most 20 octets; 159 random bits (CA/B BR 7.1 asks for at
    # least 64) make serials unpredictable, which defeats chosen-prefix collision attacks.
    return x509.random_serial_number()


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: CaPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _public_der(key: object) -> bytes:
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise CaInvalidError(f"fleet CA key must be EC or RSA, got {type(key).__name__}")
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock
