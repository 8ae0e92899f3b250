"""Why the car refused an update: one stable code per kind of refusal, reported to the
backend in the ``update`` part of the version report (``status: failed``).

python-tuf's exceptions are translated here, once (ARCHITECTURE.md convention 3).
"""

from __future__ import annotations

from typing import Final

from simulator.ota_client.tuf_names import (
    BadVersionNumberError,
    DownloadError,
    DownloadLengthMismatchError,
    ExpiredMetadataError,
    LengthOrHashMismatchError,
    RepositoryError,
    UnsignedMetadataError,
)

# Metadata (TUF client workflow, spec 5.3-5.6)
METADATA_UNSIGNED: Final = "metadata_unsigned"  # below threshold, unknown or wrong key
METADATA_ROLLBACK: Final = "metadata_rollback"  # a version older than one trusted
METADATA_EXPIRED: Final = "metadata_expired"  # freeze: nothing fresh is being served
METADATA_MISMATCH: Final = "metadata_mismatch"  # not the length/hash/version the parent named
METADATA_INVALID: Final = "metadata_invalid"
DOWNLOAD_FAILED: Final = "download_failed"
# Director vs. image repository and the car itself (Uptane 5.4.4.2)
DIRECTOR_VIN_MISMATCH: Final = "director_vin_mismatch"
DIRECTOR_NONCE_UNKNOWN: Final = "director_nonce_unknown"
DIRECTOR_ECU_UNKNOWN: Final = "director_ecu_unknown"
HARDWARE_ID_MISMATCH: Final = "hardware_id_mismatch"
IMAGE_NOT_IN_IMAGE_REPOSITORY: Final = "image_not_in_image_repository"
IMAGE_MISMATCH: Final = "image_mismatch"  # director and image repository disagree
RELEASE_COUNTER_ROLLBACK: Final = "release_counter_rollback"
# The image itself
IMAGE_TOO_LONG: Final = "image_too_long"  # more bytes than signed (endless data)
IMAGE_HASH_MISMATCH: Final = "image_hash_mismatch"  # tampered in transit or at rest
# Installing
INSTALL_FAILED: Final = "install_failed"


class UpdateRejectedError(Exception):
    """The car refuses the update; nothing was installed."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


def metadata_code(error: Exception) -> str:
    """The code of a python-tuf error met while verifying metadata."""
    if isinstance(error, UnsignedMetadataError):
        return METADATA_UNSIGNED
    if isinstance(error, BadVersionNumberError):
        return METADATA_ROLLBACK
    if isinstance(error, ExpiredMetadataError):
        return METADATA_EXPIRED
    if isinstance(error, LengthOrHashMismatchError | DownloadLengthMismatchError):
        return METADATA_MISMATCH
    if isinstance(error, DownloadError):
        return DOWNLOAD_FAILED
    if isinstance(error, RepositoryError):
        return METADATA_INVALID
    return METADATA_INVALID
