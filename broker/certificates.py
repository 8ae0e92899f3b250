"""Pure X.509 checks for vehicle mutual TLS: typed errors, CSR checks, client-certificate identity.

No I/O and no clock: every function takes the bytes and ``now`` (ARCHITECTURE.md, convention 2),
so the broker plugin, the API and the tests share one verifier. Issuance lives in
:mod:`broker.fleet_ca`.

The path checked here is always one link long (vehicle certificate <- fleet CA, RFC 5280 6.1 with
n = 1): the fleet CA signs vehicle certificates directly and there are no intermediates to build.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from protocol.errors import InvalidVinError
from protocol.vin import Vin

MIN_RSA_BITS = 2048
# NIST curves of at least 128-bit security; brainpool and others are left out because common
# vehicle TLS stacks (mbedTLS, wolfSSL defaults) and Mosquitto's OpenSSL builds agree on these.
ALLOWED_EC_CURVES: frozenset[str] = frozenset({"secp256r1", "secp384r1", "secp521r1"})


class CertificateError(ValueError):
    """A certificate or CSR FleetLink must not accept; ``code`` is stable and machine-readable."""

    code: str = "certificate_invalid"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class CsrMalformedError(CertificateError):
    code = "csr_malformed"


class CsrInvalidSignatureError(CertificateError):
    code = "csr_invalid_signature"


class CsrCommonNameMismatchError(CertificateError):
    code = "csr_cn_mismatch"

    def __init__(self, message: str, *, expected_vin: str, common_name: str | None) -> None:
        super().__init__(message)
        self.expected_vin = expected_vin
        self.common_name = common_name


class CsrKeyTooWeakError(CertificateError):
    code = "csr_key_too_weak"

    def __init__(self, message: str, *, key_type: str, key_size: int | None) -> None:
        super().__init__(message)
        self.key_type = key_type
        self.key_size = key_size


class CertificateExpiredError(CertificateError):
    code = "certificate_expired"

    def __init__(self, message: str, *, not_after: datetime, now: datetime) -> None:
        super().__init__(message)
        self.not_after = not_after
        self.now = now


class CertificateNotYetValidError(CertificateError):
    code = "certificate_not_yet_valid"

    def __init__(self, message: str, *, not_before: datetime, now: datetime) -> None:
        super().__init__(message)
        self.not_before = not_before
        self.now = now


class CertificateUntrustedError(CertificateError):
    code = "certificate_untrusted"

    def __init__(self, message: str, *, issuer: str, reason: str) -> None:
        super().__init__(message)
        self.issuer = issuer
        self.reason = reason


class CertificateRevokedError(CertificateError):
    code = "certificate_revoked"

    def __init__(self, message: str, *, serial: int) -> None:
        super().__init__(message)
        self.serial = serial


class CertificateNoVinError(CertificateError):
    code = "certificate_no_vin"

    def __init__(self, message: str, *, common_name: str | None) -> None:
        super().__init__(message)
        self.common_name = common_name


class CertificateWrongUsageError(CertificateError):
    """A certificate that is not a vehicle client certificate (no clientAuth, or a CA)."""

    code = "certificate_wrong_usage"

    def __init__(self, message: str, *, serial: int) -> None:
        super().__init__(message)
        self.serial = serial


class CaInvalidError(CertificateError):
    """The fleet CA itself is unusable (unparseable, not a CA, expired, key mismatch)."""

    code = "ca_invalid"


def require_aware(now: datetime) -> datetime:
    """X.509 times are UTC (RFC 5280 4.1.2.5); a naive ``now`` would be silently local time."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got naive {now.isoformat()}")
    return now


def load_certificate(data: bytes) -> x509.Certificate:
    """PEM or DER; anything else is ``certificate_invalid`` (the foreign error is translated)."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise CertificateError(f"not a PEM or DER X.509 certificate: {exc}") from exc


def load_ca_certificate(data: bytes) -> x509.Certificate:
    try:
        ca = load_certificate(data)
    except CertificateError as exc:
        raise CaInvalidError(f"fleet CA certificate: {exc}") from exc
    # RFC 5280 4.2.1.9: only a certificate with cA = TRUE may sign other certificates.
    if not _basic_constraints_ca(ca):
        raise CaInvalidError(f"{ca.subject.rfc4514_string()} is not a CA (basicConstraints)")
    return ca


def common_name(name: x509.Name) -> str | None:
    """The single CN of a name, or None when absent or ambiguous (two CNs name nobody)."""
    attributes = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(attributes) != 1:
        return None
    value = attributes[0].value
    return value if isinstance(value, str) else None


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_csr(data)
        return x509.load_der_x509_csr(data)
    except ValueError as exc:
        raise CsrMalformedError(f"not a PEM or DER PKCS#10 request: {exc}") from exc


def verify_vehicle_csr(csr_data: bytes, vin: Vin) -> x509.CertificateSigningRequest:
    """Check a vehicle's PKCS#10 request (RFC 2986) before the CA signs its key.

    The signature is checked first: it proves possession of the private key and that nobody
    swapped the subject (e.g. a different VIN) in transit. Extensions and attributes the request
    asks for are deliberately ignored; the CA alone decides what a vehicle certificate may do.
    """
    csr = load_csr(csr_data)
    try:
        valid = csr.is_signature_valid
    except (UnsupportedAlgorithm, ValueError) as exc:
        raise CsrInvalidSignatureError(f"CSR signature cannot be checked: {exc}") from exc
    if not valid:
        raise CsrInvalidSignatureError("CSR signature does not verify with its own public key")
    cn = common_name(csr.subject)
    if cn != vin:
        raise CsrCommonNameMismatchError(
            f"CSR subject CN {cn!r} is not the VIN {vin}", expected_vin=str(vin), common_name=cn
        )
    _require_strong_key(csr.public_key())
    return csr


def _require_strong_key(key: object) -> None:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ALLOWED_EC_CURVES:
            raise CsrKeyTooWeakError(
                f"EC curve {key.curve.name} is not allowed (P-256, P-384, P-521)",
                key_type=f"ec:{key.curve.name}",
                key_size=key.curve.key_size,
            )
        return
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise CsrKeyTooWeakError(
                f"RSA key of {key.key_size} bits; at least {MIN_RSA_BITS} required",
                key_type="rsa",
                key_size=key.key_size,
            )
        return
    raise CsrKeyTooWeakError(
        f"key type {type(key).__name__} is not allowed (EC P-256+ or RSA {MIN_RSA_BITS}+)",
        key_type=type(key).__name__,
        key_size=None,
    )


def _basic_constraints_ca(certificate: x509.Certificate) -> bool:
    try:
        ext = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return ext.value.ca


def vehicle_identity_from_certificate(
    certificate: bytes,
    ca_certificate_pem: bytes,
    *,
    now: datetime,
    revoked_serials: Collection[int] = (),
) -> Vin:
    """The VIN a vehicle client certificate proves at ``now``, or a :class:`CertificateError`.

    Checks, in the order of RFC 5280 6.1.3 (a): signature by the fleet CA and issuer name
    chaining, validity window; then FleetLink's profile: clientAuth usage, not a CA, not revoked,
    CN is an ISO 3779 VIN.
    """
    now = require_aware(now)
    ca = load_ca_certificate(ca_certificate_pem)
    cert = load_certificate(certificate)
    issuer = cert.issuer.rfc4514_string()
    # RFC 5280 6.1.3 (a)(2): the trust anchor itself must be valid now, or nothing it signed is.
    if not ca.not_valid_before_utc <= now <= ca.not_valid_after_utc:
        raise CertificateUntrustedError(
            f"fleet CA is not valid at {now.isoformat()}", issuer=issuer, reason="ca_not_valid"
        )
    try:
        # Checks issuer == CA subject (6.1.3 (a)(4)) and the signature (6.1.3 (a)(1)).
        cert.verify_directly_issued_by(ca)
    except ValueError as exc:
        raise CertificateUntrustedError(
            f"issuer {issuer} is not the fleet CA", issuer=issuer, reason="issuer_mismatch"
        ) from exc
    except InvalidSignature as exc:
        raise CertificateUntrustedError(
            "signature does not verify with the fleet CA key", issuer=issuer, reason="signature"
        ) from exc
    except TypeError as exc:
        raise CertificateUntrustedError(
            f"unsupported signature: {exc}", issuer=issuer, reason="unsupported_algorithm"
        ) from exc
    # RFC 5280 6.1.3 (a)(2); both bounds inclusive (4.1.2.5).
    if now < cert.not_valid_before_utc:
        raise CertificateNotYetValidError(
            f"certificate valid from {cert.not_valid_before_utc.isoformat()}",
            not_before=cert.not_valid_before_utc,
            now=now,
        )
    if now > cert.not_valid_after_utc:
        raise CertificateExpiredError(
            f"certificate expired at {cert.not_valid_after_utc.isoformat()}",
            not_after=cert.not_valid_after_utc,
            now=now,
        )
    _require_client_usage(cert)
    # RFC 5280 6.3: the CRL is consulted by serial number (issuer is the fleet CA, checked above).
    if cert.serial_number in revoked_serials:
        raise CertificateRevokedError(
            f"certificate serial {cert.serial_number:x} is revoked", serial=cert.serial_number
        )
    cn = common_name(cert.subject)
    try:
        return Vin(cn)
    except InvalidVinError as exc:
        raise CertificateNoVinError(
            f"subject CN {cn!r} is not a VIN: {exc}", common_name=cn
        ) from exc


def _require_client_usage(cert: x509.Certificate) -> None:
    serial = cert.serial_number
    # RFC 5280 4.2.1.9: an end entity must not be a CA; a leaked CA-signed CA must not log in.
    if _basic_constraints_ca(cert):
        raise CertificateWrongUsageError(
            "a CA certificate is not a vehicle identity", serial=serial
        )
    # RFC 5280 4.2.1.12: with an EKU present, the certificate is only for the listed purposes;
    # FleetLink's profile requires it, so a server certificate cannot pose as a vehicle.
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise CertificateWrongUsageError(
            "no extendedKeyUsage; vehicle certificates carry clientAuth", serial=serial
        ) from exc
    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise CertificateWrongUsageError(
            "extendedKeyUsage lacks clientAuth (1.3.6.1.5.5.7.3.2)", serial=serial
        )
    # RFC 5280 4.2.1.3: if keyUsage is present, TLS client signatures need digitalSignature.
    try:
        key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not key_usage.digital_signature:
        raise CertificateWrongUsageError("keyUsage lacks digitalSignature", serial=serial)
