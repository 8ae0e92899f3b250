"""Vehicle provisioning (admin): register, rotate credentials, revoke, issue certificates.

Credentials are returned exactly once, at registration or rotation; only hashes are stored.
Responses carrying a password or private key are marked ``Cache-Control: no-store``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, status

from api.deps import Admin, NoStore, State
from api.errors import INVALID_REQUEST, UnavailableError
from api.routes.vehicles import VinPath
from api.schemas import (
    CertificatePublic,
    CertificateRequest,
    CredentialsPublic,
    ErrorBody,
    RevocationPublic,
    VehicleCreate,
    VehicleCreated,
)
from api.vehicle_registry import Ecu, VehicleSpec
from protocol.catalogue import Powertrain
from protocol.vin import Vin

router = APIRouter(
    prefix="/v1/vehicles",
    tags=["provisioning"],
    responses={
        401: {"model": ErrorBody, "description": "Missing or wrong bearer token"},
        404: {"model": ErrorBody, "description": "Unknown vehicle (code vehicle_not_found)"},
        422: INVALID_REQUEST,
    },
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=VehicleCreated,
    responses={409: {"model": ErrorBody, "description": "VIN already registered"}},
    dependencies=[NoStore],
    summary="Register a vehicle; its MQTT credentials are returned once",
)
async def register_vehicle(state: State, _: Admin, body: VehicleCreate) -> VehicleCreated:
    spec = VehicleSpec(
        vin=Vin(body.vin),
        brand=body.brand,
        model=body.model,
        model_year=body.model_year,
        powertrain=Powertrain(body.powertrain),
        ecus=tuple(Ecu(e.ecu_id, e.hardware_id, e.software_version) for e in body.ecus),
    )
    credentials = await state.registry.register(spec)
    return VehicleCreated(
        vin=body.vin,
        credentials=CredentialsPublic(username=credentials.username, password=credentials.password),
    )


@router.post(
    "/{vin}/credentials/rotate",
    response_model=CredentialsPublic,
    responses={409: {"model": ErrorBody, "description": "Vehicle revoked"}},
    dependencies=[NoStore],
    summary="Issue a new secret; the old one stops working at once",
)
async def rotate_credentials(state: State, _: Admin, vin: VinPath) -> CredentialsPublic:
    credentials = await state.registry.rotate_secret(vin)
    return CredentialsPublic(username=credentials.username, password=credentials.password)


@router.post(
    "/{vin}/revoke",
    response_model=RevocationPublic,
    summary="Cut a vehicle off: refused at login, live connections dropped within seconds",
)
async def revoke_vehicle(state: State, _: Admin, vin: VinPath) -> RevocationPublic:
    revoked_at = await state.registry.revoke(vin)
    return RevocationPublic(vin=vin, revoked_at=revoked_at)


@router.post(
    "/{vin}/certificates",
    status_code=status.HTTP_201_CREATED,
    response_model=CertificatePublic,
    responses={
        409: {"model": ErrorBody, "description": "Vehicle revoked"},
        422: {"model": ErrorBody, "description": "Bad CSR (code csr_*) or invalid request"},
        503: {"model": ErrorBody, "description": "No fleet CA configured"},
    },
    dependencies=[NoStore],
    summary="Issue an X.509 client certificate (CN = VIN) for mutual TLS",
)
async def issue_certificate(
    state: State, _: Admin, vin: VinPath, body: CertificateRequest
) -> CertificatePublic:
    if state.fleet_ca is None:
        raise UnavailableError("no fleet CA is configured on this API (FLEETLINK_CA_DIR)")
    await state.registry.ensure_admitted(vin)
    issued = state.fleet_ca.issue_vehicle_certificate(
        vin,
        now=datetime.now(UTC),
        csr_pem=body.csr_pem.encode() if body.csr_pem else None,
    )
    await state.registry.record_certificate(issued)
    return CertificatePublic(
        vin=vin,
        serial=str(issued.serial),
        certificate_pem=issued.certificate_pem.decode(),
        private_key_pem=issued.private_key_pem.decode() if issued.private_key_pem else None,
        ca_certificate_pem=state.fleet_ca.certificate_pem.decode(),
        not_before=issued.not_before,
        not_after=issued.not_after,
        fingerprint_sha256=issued.fingerprint_sha256,
    )
