"""Fleet CA: issuance, pure verification, CSR checks, CRL, and real TLS handshakes via ``ssl``."""

from __future__ import annotations

import asyncio
import ssl
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker.fleet_ca import (
    CA_CERTIFICATE_FILE,
    CA_KEY_FILE,
    CaStoreError,
    CertificateError,
    FleetCA,
    vehicle_identity_from_certificate,
)
from protocol.errors import InvalidVinError

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
VIN = "WVWZZZ1JZXW000001"
OTHER_VIN = "1HGCM82633A004352"


@pytest.fixture(scope="module")
def ca() -> FleetCA:
    return FleetCA.create(now=NOW - timedelta(days=30))


def _public_der(key: Any) -> bytes:
    der: bytes = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def _csr(key: Any, common_name: str) -> bytes:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def _csr_der_to_pem(der: bytes) -> bytes:
    return x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM)


# --- the CA itself -------------------------------------------------------------------------------


def test_created_ca_is_a_self_signed_p256_ca(ca: FleetCA) -> None:
    cert = x509.load_pem_x509_certificate(ca.certificate_pem)
    cert.verify_directly_issued_by(cert)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "FleetLink Fleet CA"
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert cert.not_valid_after_utc - cert.not_valid_before_utc >= timedelta(days=3650)


def test_load_or_create_round_trip_keeps_the_same_ca(tmp_path: Path) -> None:
    directory = tmp_path / "data" / "ca"
    first = FleetCA.load_or_create(directory, now=NOW)
    key_path = directory / CA_KEY_FILE
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert (directory / CA_CERTIFICATE_FILE).read_bytes() == first.certificate_pem
    assert not list(directory.glob("*.tmp"))

    again = FleetCA.load_or_create(directory, now=NOW + timedelta(days=1))
    assert again.certificate_pem == first.certificate_pem
    # The reloaded key is the same key: what it signs verifies against the first CA certificate.
    issued = again.issue_vehicle_certificate(VIN, now=NOW)
    assert (
        vehicle_identity_from_certificate(issued.certificate_pem, first.certificate_pem, now=NOW)
        == VIN
    )


def test_concurrent_first_starts_create_one_ca(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        cas = list(pool.map(lambda _: FleetCA.load_or_create(tmp_path, now=NOW), range(4)))
    assert len({ca.certificate_pem for ca in cas}) == 1
    assert (tmp_path / CA_CERTIFICATE_FILE).read_bytes() == cas[0].certificate_pem


def test_load_refuses_a_half_written_store(tmp_path: Path) -> None:
    FleetCA.load_or_create(tmp_path, now=NOW)
    (tmp_path / CA_CERTIFICATE_FILE).unlink()
    with pytest.raises(CaStoreError) as info:
        FleetCA.load_or_create(tmp_path, now=NOW)
    assert info.value.code == "ca_store_invalid"
    assert info.value.path == tmp_path / CA_CERTIFICATE_FILE
    assert (tmp_path / CA_KEY_FILE).exists()  # never silently replaced


def test_load_refuses_a_key_readable_by_others(tmp_path: Path) -> None:
    FleetCA.load_or_create(tmp_path, now=NOW)
    (tmp_path / CA_KEY_FILE).chmod(0o644)
    with pytest.raises(CaStoreError):
        FleetCA.load_or_create(tmp_path, now=NOW)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FleetCA.create(now=datetime(2030, 1, 1))


# --- vehicle certificates ------------------------------------------------------------------------


def test_vehicle_certificate_follows_the_profile(ca: FleetCA) -> None:
    issued = ca.issue_vehicle_certificate(VIN, now=NOW)
    cert = x509.load_pem_x509_certificate(issued.certificate_pem)
    ca_cert = x509.load_pem_x509_certificate(ca.certificate_pem)

    cert.verify_directly_issued_by(ca_cert)
    assert cert.issuer == ca_cert.subject
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == VIN
    assert (
        cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
        == "FleetLink vehicle"
    )
    assert issued.vin == VIN and issued.serial == cert.serial_number
    assert 0 < issued.serial < 2**159
    assert issued.not_before == NOW - timedelta(minutes=5) == cert.not_valid_before_utc
    assert issued.not_after == NOW + timedelta(days=365) == cert.not_valid_after_utc
    assert issued.fingerprint_sha256 == cert.fingerprint(hashes.SHA256()).hex()

    ext = cert.extensions
    assert ext.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    usage = ext.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    constraints = ext.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    ski = ext.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest

    assert issued.private_key_pem is not None
    key = serialization.load_pem_private_key(issued.private_key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert _public_der(key.public_key()) == _public_der(cert.public_key())


def test_serials_are_unique(ca: FleetCA) -> None:
    serials = {ca.issue_vehicle_certificate(VIN, now=NOW).serial for _ in range(20)}
    assert len(serials) == 20


def test_invalid_vin_is_not_certified(ca: FleetCA) -> None:
    with pytest.raises(InvalidVinError):
        ca.issue_vehicle_certificate("WVWZZZ1JZXW00000I", now=NOW)


def test_certificate_does_not_outlive_the_ca(ca: FleetCA) -> None:
    issued = ca.issue_vehicle_certificate(VIN, now=NOW, validity_days=100_000)
    assert (
        issued.not_after == x509.load_pem_x509_certificate(ca.certificate_pem).not_valid_after_utc
    )


# --- pure verification ---------------------------------------------------------------------------


def test_identity_of_a_valid_certificate_is_its_vin(ca: FleetCA) -> None:
    issued = ca.issue_vehicle_certificate(VIN, now=NOW)
    assert (
        vehicle_identity_from_certificate(issued.certificate_pem, ca.certificate_pem, now=NOW)
        == VIN
    )
    der = x509.load_pem_x509_certificate(issued.certificate_pem).public_bytes(
        serialization.Encoding.DER
    )
    assert vehicle_identity_from_certificate(der, ca.certificate_pem, now=NOW) == VIN


@dataclass(frozen=True)
class _Rogue:
    """A CA whose key the test holds, to sign certificates FleetCA would never issue."""

    ca: FleetCA
    key: ec.EllipticCurvePrivateKey
    name: x509.Name

    def sign(self, common_name: str, *, eku: list[x509.ObjectIdentifier]) -> bytes:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=1))
            .not_valid_after(NOW + timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def rogue() -> _Rogue:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=10))
        .not_valid_after(NOW + timedelta(days=10))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _Rogue(FleetCA(key, cert), key, name)


def _code(certificate: bytes, ca_pem: bytes, **kwargs: Any) -> str:
    with pytest.raises(CertificateError) as info:
        vehicle_identity_from_certificate(certificate, ca_pem, **kwargs)
    return info.value.code


def test_expired_certificate(ca: FleetCA) -> None:
    issued = ca.issue_vehicle_certificate(VIN, now=NOW)
    later = NOW + timedelta(days=365, seconds=1)
    with pytest.raises(CertificateError) as info:
        vehicle_identity_from_certificate(issued.certificate_pem, ca.certificate_pem, now=later)
    assert info.value.code == "certificate_expired"
    assert info.value.not_after == issued.not_after  # type: ignore[attr-defined]


def test_not_yet_valid_certificate(ca: FleetCA) -> None:
    issued = ca.issue_vehicle_certificate(VIN, now=NOW)
    # Backdated by 5 minutes for clock skew: 4 minutes early is fine, 6 is not.
    ok = vehicle_identity_from_certificate(
        issued.certificate_pem, ca.certificate_pem, now=NOW - timedelta(minutes=4)
    )
    assert ok == VIN
    too_early = NOW - timedelta(minutes=6)
    assert _code(issued.certificate_pem, ca.certificate_pem, now=too_early) == (
        "certificate_not_yet_valid"
    )


def test_certificate_from_a_foreign_ca(ca: FleetCA) -> None:
    foreign = FleetCA.create(now=NOW - timedelta(days=1))  # same subject name, different key
    issued = foreign.issue_vehicle_certificate(VIN, now=NOW)
    with pytest.raises(CertificateError) as info:
        vehicle_identity_from_certificate(issued.certificate_pem, ca.certificate_pem, now=NOW)
    assert info.value.code == "certificate_untrusted"
    assert info.value.reason == "signature"  # type: ignore[attr-defined]


def test_certificate_from_a_differently_named_ca(ca: FleetCA, rogue: _Rogue) -> None:
    forged = rogue.sign(VIN, eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    assert _code(forged, ca.certificate_pem, now=NOW) == "certificate_untrusted"


def test_revoked_certificate(ca: FleetCA) -> None:
    issued = ca.issue_vehicle_certificate(VIN, now=NOW)
    other = ca.issue_vehicle_certificate(VIN, now=NOW)
    with pytest.raises(CertificateError) as info:
        vehicle_identity_from_certificate(
            issued.certificate_pem,
            ca.certificate_pem,
            now=NOW,
            revoked_serials={issued.serial},
        )
    assert info.value.code == "certificate_revoked"
    assert info.value.serial == issued.serial  # type: ignore[attr-defined]
    # Revocation is per certificate: the car's re-issued certificate still works.
    assert (
        vehicle_identity_from_certificate(
            other.certificate_pem, ca.certificate_pem, now=NOW, revoked_serials={issued.serial}
        )
        == VIN
    )


@pytest.mark.parametrize("common_name", ["not-a-vin", "WVWZZZ1JZXW00000I", "ingest"])
def test_common_name_that_is_not_a_vin(rogue: _Rogue, common_name: str) -> None:
    cert = rogue.sign(common_name, eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    with pytest.raises(CertificateError) as info:
        vehicle_identity_from_certificate(cert, rogue.ca.certificate_pem, now=NOW)
    assert info.value.code == "certificate_no_vin"
    assert info.value.common_name == common_name  # type: ignore[attr-defined]


def test_server_auth_only_certificate_is_not_a_vehicle(ca: FleetCA, rogue: _Rogue) -> None:
    server_pem, _ = ca.issue_server_certificate(hostnames=[VIN], ip_addresses=[], now=NOW)
    assert _code(server_pem, ca.certificate_pem, now=NOW) == "certificate_wrong_usage"
    # Even with a VIN as CN, a serverAuth-only certificate does not log a car in.
    server_only = rogue.sign(VIN, eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    assert _code(server_only, rogue.ca.certificate_pem, now=NOW) == "certificate_wrong_usage"


def test_ca_certificate_is_not_a_vehicle(ca: FleetCA) -> None:
    assert _code(ca.certificate_pem, ca.certificate_pem, now=NOW) == "certificate_wrong_usage"


def test_garbage_is_certificate_invalid(ca: FleetCA) -> None:
    assert _code(b"\x30\x03\x02\x01\x01", ca.certificate_pem, now=NOW) == "certificate_invalid"
    assert _code(b"-----BEGIN CERTIFICATE-----\nxx\n", ca.certificate_pem, now=NOW) == (
        "certificate_invalid"
    )


def test_vehicle_certificate_as_trust_anchor_is_refused(ca: FleetCA) -> None:
    issued = ca.issue_vehicle_certificate(VIN, now=NOW)
    assert _code(issued.certificate_pem, issued.certificate_pem, now=NOW) == "ca_invalid"


# --- CSR path ------------------------------------------------------------------------------------


def test_good_csr_keeps_the_key_in_the_car(ca: FleetCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    issued = ca.issue_vehicle_certificate(VIN, now=NOW, csr_pem=_csr(key, VIN))
    assert issued.private_key_pem is None
    cert = x509.load_pem_x509_certificate(issued.certificate_pem)
    assert _public_der(cert.public_key()) == _public_der(key.public_key())
    assert (
        vehicle_identity_from_certificate(issued.certificate_pem, ca.certificate_pem, now=NOW)
        == VIN
    )


def test_good_rsa_2048_csr(ca: FleetCA) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issued = ca.issue_vehicle_certificate(VIN, now=NOW, csr_pem=_csr(key, VIN))
    assert issued.private_key_pem is None


def test_csr_extensions_are_ignored(ca: FleetCA) -> None:
    """A car asking for CA rights or serverAuth gets the vehicle profile and nothing more."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, VIN)]))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    ).public_bytes(serialization.Encoding.PEM)
    cert = x509.load_pem_x509_certificate(
        ca.issue_vehicle_certificate(VIN, now=NOW, csr_pem=csr).certificate_pem
    )
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]


def test_csr_common_name_must_be_the_vin(ca: FleetCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(CertificateError) as info:
        ca.issue_vehicle_certificate(VIN, now=NOW, csr_pem=_csr(key, OTHER_VIN))
    assert info.value.code == "csr_cn_mismatch"
    assert info.value.common_name == OTHER_VIN  # type: ignore[attr-defined]
    assert info.value.expected_vin == VIN  # type: ignore[attr-defined]


def test_csr_with_tampered_signature(ca: FleetCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    der = bytearray(x509.load_pem_x509_csr(_csr(key, VIN)).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # last byte of the ECDSA signature's s value: still parses, no longer verifies
    with pytest.raises(CertificateError) as info:
        ca.issue_vehicle_certificate(VIN, now=NOW, csr_pem=_csr_der_to_pem(bytes(der)))
    assert info.value.code == "csr_invalid_signature"


def test_csr_with_a_swapped_vin(ca: FleetCA) -> None:
    """Someone rewrites the subject of a car's CSR to get a certificate for another VIN."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = x509.load_pem_x509_csr(_csr(key, VIN)).public_bytes(serialization.Encoding.DER)
    swapped = der.replace(VIN.encode(), OTHER_VIN.encode())
    assert swapped != der
    with pytest.raises(CertificateError) as info:
        ca.issue_vehicle_certificate(OTHER_VIN, now=NOW, csr_pem=_csr_der_to_pem(swapped))
    assert info.value.code == "csr_invalid_signature"


def test_rsa_1024_csr_is_too_weak(ca: FleetCA) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(CertificateError) as info:
        ca.issue_vehicle_certificate(VIN, now=NOW, csr_pem=_csr(key, VIN))
    assert info.value.code == "csr_key_too_weak"
    assert info.value.key_size == 1024  # type: ignore[attr-defined]


def test_malformed_csr(ca: FleetCA) -> None:
    with pytest.raises(CertificateError) as info:
        ca.issue_vehicle_certificate(VIN, now=NOW, csr_pem=b"-----BEGIN CERTIFICATE REQUEST-----")
    assert info.value.code == "csr_malformed"


# --- server certificate and CRL ------------------------------------------------------------------


def test_server_certificate_has_san_and_server_auth(ca: FleetCA) -> None:
    cert_pem, key_pem = ca.issue_server_certificate(
        hostnames=["broker.fleetlink.test", "localhost"], ip_addresses=["127.0.0.1", "::1"], now=NOW
    )
    cert = x509.load_pem_x509_certificate(cert_pem)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.certificate_pem))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["broker.fleetlink.test", "localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.not_valid_after_utc == NOW + timedelta(days=825)
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert _public_der(key.public_key()) == _public_der(cert.public_key())


def test_server_certificate_needs_a_name(ca: FleetCA) -> None:
    with pytest.raises(CertificateError):
        ca.issue_server_certificate(hostnames=[], ip_addresses=[], now=NOW)
    with pytest.raises(CertificateError):
        ca.issue_server_certificate(hostnames=[], ip_addresses=["not-an-ip"], now=NOW)


def test_crl_lists_the_serials_and_is_signed_by_the_ca(ca: FleetCA) -> None:
    revoked_at = NOW - timedelta(hours=1)
    a = ca.issue_vehicle_certificate(VIN, now=NOW)
    b = ca.issue_vehicle_certificate(OTHER_VIN, now=NOW)
    crl = x509.load_pem_x509_crl(
        ca.certificate_revocation_list([(a.serial, revoked_at), (b.serial, NOW)], now=NOW)
    )
    ca_cert = x509.load_pem_x509_certificate(ca.certificate_pem)
    public_key = ca_cert.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert crl.is_signature_valid(public_key)
    assert crl.issuer == ca_cert.subject
    assert {entry.serial_number for entry in crl} == {a.serial, b.serial}
    entry = crl.get_revoked_certificate_by_serial_number(a.serial)
    assert entry is not None and entry.revocation_date_utc == revoked_at
    assert crl.last_update_utc == NOW
    assert crl.next_update_utc == NOW + timedelta(days=7)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > 0
    later = x509.load_pem_x509_crl(ca.certificate_revocation_list([], now=NOW + timedelta(hours=1)))
    assert (
        later.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        > crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    )
    assert len(later) == 0


def test_crl_signed_by_another_ca_does_not_verify(ca: FleetCA) -> None:
    other = FleetCA.create(now=NOW)
    crl = x509.load_pem_x509_crl(other.certificate_revocation_list([(1, NOW)], now=NOW))
    public_key = x509.load_pem_x509_certificate(ca.certificate_pem).public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert not crl.is_signature_valid(public_key)


# --- real TLS handshakes with Python's ssl (OpenSSL does the path validation) --------------------


@dataclass(frozen=True)
class _Handshake:
    peercert: dict[str, Any] | None  # the vehicle certificate as the server's ssl saw it
    server_error: ssl.SSLError | None  # why the server refused the handshake
    reply: bytes  # what the client read: b"ok\n" only after a completed handshake


async def _mutual_tls(
    tmp_path: Path, *, ca_pem: bytes, server: tuple[bytes, bytes], client: tuple[bytes, bytes]
) -> _Handshake:
    files = {
        "ca.pem": ca_pem,
        "server.crt": server[0],
        "server.key": server[1],
        "client.crt": client[0],
        "client.key": client[1],
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)

    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.load_verify_locations(cafile=tmp_path / "ca.pem")
    # RFC 5280 conformance as OpenSSL enforces it (the default from Python 3.13 on).
    server_ctx.verify_flags |= ssl.VERIFY_X509_STRICT

    client_ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tmp_path / "ca.pem")
    client_ctx.load_cert_chain(tmp_path / "client.crt", tmp_path / "client.key")
    client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT

    peercerts: list[dict[str, Any]] = []
    server_errors: list[ssl.SSLError] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The server upgrades the accepted connection itself (StreamWriter.start_tls) instead of
        # start_server(ssl=...), because asyncio only debug-logs a failed server handshake and
        # the test wants OpenSSL's reason for refusing the vehicle.
        try:
            await writer.start_tls(server_ctx)
        except ssl.SSLError as exc:
            server_errors.append(exc)
            writer.transport.abort()
            return
        peercerts.append(writer.get_extra_info("peercert"))
        writer.write(b"ok\n")
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    reply = b""
    try:
        async with asyncio.timeout(5):
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost"
                )
                # With TLS 1.3 the server checks the client certificate after the client's
                # handshake has finished, so a rejection shows up on the first read.
                reply = await reader.readline()
                writer.close()
            except (ssl.SSLError, ConnectionError):
                pass  # TLS 1.2 or an early alert: the client sees the refusal during connect
    finally:
        srv.close()
        await srv.wait_closed()
    return _Handshake(
        peercerts[0] if peercerts else None, server_errors[0] if server_errors else None, reply
    )


@pytest.fixture(scope="module")
def real_now() -> datetime:
    # OpenSSL validates against the wall clock, so these tests cannot use the fixed NOW.
    return datetime.now(UTC)


@pytest.fixture(scope="module")
def tls_ca(real_now: datetime) -> FleetCA:
    return FleetCA.create(now=real_now - timedelta(days=3 * 365))


@pytest.fixture(scope="module")
def server_pair(tls_ca: FleetCA, real_now: datetime) -> tuple[bytes, bytes]:
    return tls_ca.issue_server_certificate(
        hostnames=["localhost"], ip_addresses=["127.0.0.1"], now=real_now
    )


def _pair(issued: Any) -> tuple[bytes, bytes]:
    assert issued.private_key_pem is not None
    return issued.certificate_pem, issued.private_key_pem


async def test_tls_handshake_with_vehicle_certificate(
    tmp_path: Path, tls_ca: FleetCA, server_pair: tuple[bytes, bytes], real_now: datetime
) -> None:
    vehicle = tls_ca.issue_vehicle_certificate(VIN, now=real_now)
    result = await _mutual_tls(
        tmp_path, ca_pem=tls_ca.certificate_pem, server=server_pair, client=_pair(vehicle)
    )
    assert result.server_error is None and result.reply == b"ok\n"
    assert result.peercert is not None
    subject = dict(item for rdn in result.peercert["subject"] for item in rdn)
    assert subject == {"commonName": VIN, "organizationName": "FleetLink vehicle"}
    # The broker's view and the pure verifier agree.
    assert (
        vehicle_identity_from_certificate(
            vehicle.certificate_pem, tls_ca.certificate_pem, now=real_now
        )
        == VIN
    )


async def test_tls_handshake_with_csr_issued_certificate(
    tmp_path: Path, tls_ca: FleetCA, server_pair: tuple[bytes, bytes], real_now: datetime
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    issued = tls_ca.issue_vehicle_certificate(VIN, now=real_now, csr_pem=_csr(key, VIN))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    result = await _mutual_tls(
        tmp_path,
        ca_pem=tls_ca.certificate_pem,
        server=server_pair,
        client=(issued.certificate_pem, key_pem),
    )
    assert result.server_error is None and result.reply == b"ok\n"


async def test_tls_handshake_fails_for_a_foreign_ca(
    tmp_path: Path, tls_ca: FleetCA, server_pair: tuple[bytes, bytes], real_now: datetime
) -> None:
    foreign = FleetCA.create(now=real_now - timedelta(days=1))
    vehicle = foreign.issue_vehicle_certificate(VIN, now=real_now)
    result = await _mutual_tls(
        tmp_path, ca_pem=tls_ca.certificate_pem, server=server_pair, client=_pair(vehicle)
    )
    assert result.peercert is None and result.reply == b""
    assert isinstance(result.server_error, ssl.SSLCertVerificationError)
    assert result.server_error.verify_message == "unable to get local issuer certificate"


async def test_tls_handshake_fails_for_an_expired_certificate(
    tmp_path: Path, tls_ca: FleetCA, server_pair: tuple[bytes, bytes], real_now: datetime
) -> None:
    vehicle = tls_ca.issue_vehicle_certificate(
        VIN, now=real_now - timedelta(days=2 * 365), validity_days=365
    )
    result = await _mutual_tls(
        tmp_path, ca_pem=tls_ca.certificate_pem, server=server_pair, client=_pair(vehicle)
    )
    assert result.peercert is None and result.reply == b""
    assert isinstance(result.server_error, ssl.SSLCertVerificationError)
    assert result.server_error.verify_message == "certificate has expired"
    with pytest.raises(CertificateError) as info:
        vehicle_identity_from_certificate(
            vehicle.certificate_pem, tls_ca.certificate_pem, now=real_now
        )
    assert info.value.code == "certificate_expired"
