"""What an image is: the uploader's declaration (``ImageSpec``) and, with its length and hash,
the TUF target that describes it (``ImageTarget``), in both directions.

The target path is ``<name>-<version>``, one path segment, the way ota-tuf (aktualizr's
server) names targets: every version of an image stays addressable, so a director can still
point a car at the previous one. Uptane-specific facts go into the target's ``custom`` object
(Uptane Standard 1.x, section 5.2.3.1 "Metadata about images": hardware identifier required,
release counter recommended), under aktualizr's camelCase names so stock Uptane clients read
them too:

    "custom": {"name": "tcu-fw", "version": "2.1.0", "hardwareIds": ["VW-GOLF-TCU-H1"],
               "releaseCounter": 7, "dependencies": ["bcm-fw-1.4.0"], "conflicts": []}

``dependencies`` and ``conflicts`` name other targets by path: images that must (or must not)
be installed on the same vehicle for this one to be installable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ota.errors import ArtifactInvalidError
from ota.tuf_api import TargetFile

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}"
VERSION_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}"
HARDWARE_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}"
TARGET_PATH_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,192}"
SHA256_PATTERN = r"[0-9a-f]{64}"
MAX_HARDWARE_IDS = 64
MAX_RELATIONS = 64
MAX_RELEASE_COUNTER = 2**31 - 1  # a PostgreSQL integer

CUSTOM_NAME = "name"
CUSTOM_VERSION = "version"
CUSTOM_HARDWARE_IDS = "hardwareIds"
CUSTOM_RELEASE_COUNTER = "releaseCounter"
CUSTOM_DEPENDENCIES = "dependencies"
CUSTOM_CONFLICTS = "conflicts"


def _check(field: str, value: str, pattern: str) -> None:
    if not isinstance(value, str) or re.fullmatch(pattern, value) is None:
        raise ArtifactInvalidError(
            f"{field} {value!r} must match {pattern}", field=field, value=value
        )


def _check_list(field: str, values: Sequence[str], pattern: str, *, max_items: int) -> None:
    if len(values) > max_items:
        raise ArtifactInvalidError(
            f"at most {max_items} {field} allowed, got {len(values)}", field=field, value=values
        )
    if len(set(values)) != len(values):
        raise ArtifactInvalidError(f"{field} has duplicates", field=field, value=values)
    for value in values:
        _check(field, value, pattern)


def target_path_of(name: str, version: str) -> str:
    return f"{name}-{version}"


@dataclass(frozen=True, slots=True)
class ImageSpec:
    """What the uploader declares about an image. Validates itself."""

    name: str
    version: str
    hardware_ids: tuple[str, ...]
    release_counter: int
    dependencies: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check("name", self.name, NAME_PATTERN)
        _check("version", self.version, VERSION_PATTERN)
        if not self.hardware_ids:
            raise ArtifactInvalidError(
                "at least one hardware id is required (Uptane 5.2.3.1)",
                field="hardware_ids",
                value=self.hardware_ids,
            )
        _check_list(
            "hardware_ids", self.hardware_ids, HARDWARE_ID_PATTERN, max_items=MAX_HARDWARE_IDS
        )
        if isinstance(self.release_counter, bool) or not (
            isinstance(self.release_counter, int)
            and 0 <= self.release_counter <= MAX_RELEASE_COUNTER
        ):
            raise ArtifactInvalidError(
                f"release_counter must be an integer in 0..{MAX_RELEASE_COUNTER}",
                field="release_counter",
                value=self.release_counter,
            )
        for field in ("dependencies", "conflicts"):
            values: tuple[str, ...] = getattr(self, field)
            _check_list(field, values, TARGET_PATH_PATTERN, max_items=MAX_RELATIONS)
            if self.target_path in values:
                raise ArtifactInvalidError(
                    f"{field} names the image itself", field=field, value=values
                )
        both = set(self.dependencies) & set(self.conflicts)
        if both:
            raise ArtifactInvalidError(
                f"{sorted(both)} listed as both dependency and conflict",
                field="conflicts",
                value=self.conflicts,
            )

    @property
    def target_path(self) -> str:
        return target_path_of(self.name, self.version)


@dataclass(frozen=True, slots=True)
class ImageTarget:
    """An image as the image repository's targets metadata lists it."""

    spec: ImageSpec
    length: int
    sha256: str

    def __post_init__(self) -> None:
        _check("sha256", self.sha256, SHA256_PATTERN)
        if self.length < 1:
            raise ArtifactInvalidError(
                "an image cannot be empty", field="length", value=self.length
            )

    @property
    def path(self) -> str:
        return self.spec.target_path

    def custom(self) -> dict[str, Any]:
        spec = self.spec
        return {
            CUSTOM_NAME: spec.name,
            CUSTOM_VERSION: spec.version,
            CUSTOM_HARDWARE_IDS: list(spec.hardware_ids),
            CUSTOM_RELEASE_COUNTER: spec.release_counter,
            CUSTOM_DEPENDENCIES: list(spec.dependencies),
            CUSTOM_CONFLICTS: list(spec.conflicts),
        }

    def to_target_file(self) -> TargetFile:
        return TargetFile(
            self.length, {"sha256": self.sha256}, self.path, {"custom": self.custom()}
        )

    @classmethod
    def from_target_file(cls, target: TargetFile) -> ImageTarget:
        """Read a target back (director, vehicle client): refuses one whose custom fields or
        path do not describe a FleetLink image."""
        custom = target.custom
        if not isinstance(custom, dict):
            raise ArtifactInvalidError(
                f"target {target.path} has no custom object", field="custom", value=custom
            )
        try:
            spec = ImageSpec(
                name=custom[CUSTOM_NAME],
                version=custom[CUSTOM_VERSION],
                hardware_ids=tuple(custom[CUSTOM_HARDWARE_IDS]),
                release_counter=custom[CUSTOM_RELEASE_COUNTER],
                dependencies=tuple(custom.get(CUSTOM_DEPENDENCIES, ())),
                conflicts=tuple(custom.get(CUSTOM_CONFLICTS, ())),
            )
        except (KeyError, TypeError) as exc:
            raise ArtifactInvalidError(
                f"target {target.path}: custom field missing or mistyped: {exc}",
                field="custom",
                value=custom,
            ) from exc
        if spec.target_path != target.path:
            raise ArtifactInvalidError(
                f"target path {target.path} is not {spec.target_path}",
                field="path",
                value=target.path,
            )
        sha256 = target.hashes.get("sha256", "")
        return cls(spec, target.length, sha256)
