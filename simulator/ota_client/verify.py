"""Uptane's cross-checks between the director and the image repository, after both verified
as TUF repositories (Uptane Standard 1.2, 5.4.4.2 "Full verification"). Pure: verified targets
and the car's own state in, the installs to make out, or a refusal with its code.

- The director's targets are this vehicle's: ``custom.vin`` is ours (a file for car A,
  validly signed by the director, must not be installed by car B; Uptane 5.2.3.1), and they
  were computed from one of our own recent version reports (``custom.reportNonce``).
- Every ECU the director names is one of ours, with the hardware id it names.
- Every image the director names is in the image repository, with the same length and hashes
  (the image repository, whose keys are offline, vouches for every byte; a compromised
  director key alone cannot make the car install anything), built for that hardware id.
- Release counters never go down (Uptane 5.2.3.1/5.4.4.2): an image with a lower counter than
  the one an ECU runs is a rollback to a possibly vulnerable version.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from simulator.ota_client import errors as codes
from simulator.ota_client.errors import UpdateRejectedError
from simulator.ota_client.tuf_names import TargetFile, Targets


@dataclass(frozen=True, slots=True)
class InstalledImage:
    version: str
    release_counter: int
    path: str | None = None  # None: factory software (not from the image repository)
    sha256: str | None = None
    length: int | None = None


@dataclass(frozen=True, slots=True)
class EcuState:
    serial: str
    hardware_id: str
    installed: InstalledImage


@dataclass(frozen=True, slots=True)
class PlannedInstall:
    ecu_serial: str
    hardware_id: str
    target: TargetFile  # the image repository's entry: what the download is checked against
    version: str
    release_counter: int


def _custom(target: TargetFile) -> dict[str, Any]:
    custom = target.custom
    return custom if isinstance(custom, dict) else {}


def check_binding(director: Targets, *, vin: str, recent_nonces: Collection[str]) -> None:
    """The director's targets are this car's, computed from one of its recent reports;
    checked whatever they list (an empty file for another car must not clear ours)."""
    custom = director.unrecognized_fields.get("custom")
    custom = custom if isinstance(custom, dict) else {}
    if custom.get("vin") != vin:
        raise UpdateRejectedError(
            codes.DIRECTOR_VIN_MISMATCH, f"director targets are for {custom.get('vin')!r}"
        )
    if recent_nonces and custom.get("reportNonce") not in recent_nonces:
        raise UpdateRejectedError(
            codes.DIRECTOR_NONCE_UNKNOWN, "director targets answer none of our recent reports"
        )
    if director.delegations is not None:
        raise UpdateRejectedError(codes.METADATA_INVALID, "director targets may not delegate")


def plan_installs(
    director: Targets,
    image: Targets,
    *,
    vin: str,
    ecus: Mapping[str, EcuState],
    recent_nonces: Collection[str],
) -> list[PlannedInstall]:
    check_binding(director, vin=vin, recent_nonces=recent_nonces)
    plans = []
    for path, directed in sorted(director.targets.items()):
        plans.extend(_plan_target(path, directed, image.targets.get(path), ecus))
    return plans


def _plan_target(
    path: str,
    directed: TargetFile,
    listed: TargetFile | None,
    ecus: Mapping[str, EcuState],
) -> list[PlannedInstall]:
    if listed is None:
        raise UpdateRejectedError(
            codes.IMAGE_NOT_IN_IMAGE_REPOSITORY, f"the image repository does not list {path}"
        )
    if directed.length != listed.length or any(
        listed.hashes.get(algorithm) != digest for algorithm, digest in directed.hashes.items()
    ):
        raise UpdateRejectedError(
            codes.IMAGE_MISMATCH, f"director and image repository differ on {path}"
        )
    directed_custom, listed_custom = _custom(directed), _custom(listed)
    hardware_ids = listed_custom.get("hardwareIds")
    counter = listed_custom.get("releaseCounter")
    version = listed_custom.get("version")
    if not (
        isinstance(hardware_ids, list)
        and isinstance(counter, int)
        and isinstance(version, str)
        and directed_custom.get("releaseCounter") == counter
    ):
        raise UpdateRejectedError(codes.IMAGE_MISMATCH, f"{path}: image facts missing or different")
    targeted = directed_custom.get("ecuIdentifiers")
    if not isinstance(targeted, dict) or not targeted:
        raise UpdateRejectedError(codes.METADATA_INVALID, f"{path} names no ECU")
    plans = []
    for serial, named in sorted(targeted.items()):
        ecu = ecus.get(serial)
        if ecu is None:
            raise UpdateRejectedError(codes.DIRECTOR_ECU_UNKNOWN, f"no ECU {serial} in this car")
        hardware_id = named.get("hardwareId") if isinstance(named, dict) else None
        if hardware_id != ecu.hardware_id or hardware_id not in hardware_ids:
            raise UpdateRejectedError(
                codes.HARDWARE_ID_MISMATCH, f"{path} is not built for {serial} ({ecu.hardware_id})"
            )
        if counter < ecu.installed.release_counter:
            raise UpdateRejectedError(
                codes.RELEASE_COUNTER_ROLLBACK,
                f"{path} has release counter {counter} < {ecu.installed.release_counter}",
            )
        if ecu.installed.path == path and ecu.installed.sha256 == listed.hashes.get("sha256"):
            continue  # already running it
        plans.append(PlannedInstall(serial, ecu.hardware_id, listed, version, counter))
    return plans
