"""The director's metadata core (Uptane Standard 1.2, 5.3.2): what one vehicle should install,
as targets metadata signed for that vehicle only. No I/O, no clock.

A :class:`DirectorPlan` is what the director wants for one VIN, computed from the vehicle's
campaign assignment and its last verified version report. It becomes a targets role whose
``targets`` name each image with the ECUs to install it on, in aktualizr's format
(``custom.ecuIdentifiers: {serial: {"hardwareId": ...}}``, Uptane 5.2.3.1.1: the director
names the ECU identifier and hardware identifier of every image), and whose top-level
``custom`` binds the whole file to the vehicle:

    "custom": {"vin": "WVW...", "reportNonce": "9f2c...", "reportCounter": 41, "campaign": "..."}

Uptane 5.2.3.1 asks for a vehicle identifier when a director targets file lists no images; we
always include it, so the car refuses a file meant for another car whatever it lists (another
car's file is signed by the same director key and would otherwise verify). ``reportNonce`` is
the nonce of the version report the plan was computed from: the car accepts only a nonce it
recently sent, which ties the file to that car's own, recent report.

Signing reuses the image repository's ``SigningRepository`` (python-tuf's ``Repository``): the
vehicle's targets, snapshot and timestamp are one version line per VIN under the shared
director root; every version is verified against that root before it is stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ota.image_target import (
    CUSTOM_HARDWARE_IDS,
    CUSTOM_NAME,
    CUSTOM_RELEASE_COUNTER,
    CUSTOM_VERSION,
    ImageTarget,
)
from ota.policy import (
    ONLINE_ROLES,
    ROOT,
    SNAPSHOT,
    TARGETS,
    TIMESTAMP,
    TOP_LEVEL_ROLES,
    ExpiryPolicy,
    KeyPolicy,
)
from ota.signing_repository import SignedMetadata, SigningRepository
from ota.tuf_api import Key, Signer, TargetFile

CUSTOM_ECU_IDENTIFIERS = "ecuIdentifiers"
CUSTOM_HARDWARE_ID = "hardwareId"
CUSTOM_VIN = "vin"
CUSTOM_REPORT_NONCE = "reportNonce"
CUSTOM_REPORT_COUNTER = "reportCounter"
CUSTOM_CAMPAIGN = "campaign"


@dataclass(frozen=True, slots=True)
class DirectedImage:
    """One image for one ECU of the vehicle."""

    ecu_serial: str
    hardware_id: str
    image: ImageTarget


@dataclass(frozen=True, slots=True)
class DirectorPlan:
    vin: str
    images: tuple[DirectedImage, ...] = ()
    report_nonce: str | None = None
    report_counter: int | None = None
    campaign_id: str | None = None

    def custom(self) -> dict[str, Any]:
        return {
            CUSTOM_VIN: self.vin,
            CUSTOM_REPORT_NONCE: self.report_nonce,
            CUSTOM_REPORT_COUNTER: self.report_counter,
            CUSTOM_CAMPAIGN: self.campaign_id,
        }

    def target_files(self) -> dict[str, TargetFile]:
        """One target per image path, naming every ECU that installs it."""
        by_path: dict[str, tuple[ImageTarget, dict[str, dict[str, str]]]] = {}
        for directed in sorted(self.images, key=lambda d: d.ecu_serial):
            image = directed.image
            _, ecus = by_path.setdefault(image.path, (image, {}))
            ecus[directed.ecu_serial] = {CUSTOM_HARDWARE_ID: directed.hardware_id}
        files = {}
        for path, (image, ecus) in by_path.items():
            # The image's identity as the image repository states it, and where it goes; the
            # car checks both against the image repository (Uptane 5.4.4.2).
            custom = {
                CUSTOM_NAME: image.spec.name,
                CUSTOM_VERSION: image.spec.version,
                CUSTOM_HARDWARE_IDS: list(image.spec.hardware_ids),
                CUSTOM_RELEASE_COUNTER: image.spec.release_counter,
                CUSTOM_ECU_IDENTIFIERS: ecus,
            }
            files[path] = TargetFile(
                image.length, {"sha256": image.sha256}, path, {"custom": custom}
            )
        return files

    def digest(self) -> str:
        """Identifies the plan's content: an unchanged plan needs no new targets version."""
        content = {
            "custom": self.custom(),
            "targets": {path: t.to_dict() for path, t in self.target_files().items()},
        }
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class VehicleMetadata:
    """A vehicle's latest targets, snapshot and timestamp (any may be missing: a new car)."""

    versions: Mapping[str, SignedMetadata]
    plan_digest: str | None  # of the latest targets

    def needs_signing(self, digest: str, expiry: ExpiryPolicy, now: datetime) -> bool:
        if any(role not in self.versions for role in ONLINE_ROLES):
            return True
        if self.plan_digest != digest:
            return True
        return any(expiry.is_due(r, self.versions[r].expires, now) for r in ONLINE_ROLES)


def sign_for_vehicle(
    root: SignedMetadata,
    current: VehicleMetadata,
    plan: DirectorPlan,
    *,
    signers: Mapping[str, Sequence[Signer]],
    expiry: ExpiryPolicy,
    now: datetime,
) -> list[SignedMetadata]:
    """The new versions (targets, snapshot, timestamp as needed) that bring the vehicle's
    metadata to ``plan`` and away from expiry; empty when nothing is to be signed."""
    core = SigningRepository(
        {ROOT: root, **current.versions}, signers=signers, expiry=expiry, now=now
    )
    versions = current.versions
    due = {r for r in ONLINE_ROLES if r in versions and expiry.is_due(r, versions[r].expires, now)}
    if TARGETS not in versions or current.plan_digest != plan.digest() or TARGETS in due:
        with core.edit_targets() as targets:
            targets.targets = plan.target_files()
            targets.unrecognized_fields["custom"] = plan.custom()
    # A new targets version brings a new snapshot and timestamp by itself (python-tuf's
    # do_snapshot/do_timestamp); force covers a role that is due or does not exist yet.
    core.do_snapshot(force=SNAPSHOT in due or SNAPSHOT not in versions)
    core.do_timestamp(force=TIMESTAMP in due or TIMESTAMP not in versions)
    return core.written


def initial_root(
    keys: Mapping[str, Sequence[Key]],
    policy: KeyPolicy,
    *,
    signers: Mapping[str, Sequence[Signer]],
    expiry: ExpiryPolicy,
    now: datetime,
) -> SignedMetadata:
    """Version 1 of the director root: the keys of all four roles, consistent snapshots (the
    vehicle fetches ``N.snapshot.json`` and ``N.targets.json`` of its own version line)."""
    core = SigningRepository({}, signers=signers, expiry=expiry, now=now)
    with core.edit_root() as root:
        root.consistent_snapshot = True
        for role in TOP_LEVEL_ROLES:
            root.roles[role].threshold = policy.for_role(role).threshold
            for key in keys[role]:
                root.add_key(key, role)
    return core.written[0]
