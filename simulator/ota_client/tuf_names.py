"""The python-tuf names the car's client uses, imported in one place.

``TrustedMetadataSet`` is python-tuf's I/O-free client verification core (the one
``tuf.ngclient.Updater`` runs on): it lives in a private module and has no public re-export,
and python-tuf's other classes are re-exported without ``__all__``, which mypy's strict mode
refuses. Should either change, only this file does.
"""

from __future__ import annotations

from tuf.api._payload import Root, Snapshot, TargetFile, Targets, Timestamp
from tuf.api.exceptions import (
    BadVersionNumberError,
    DownloadError,
    DownloadHTTPError,
    DownloadLengthMismatchError,
    EqualVersionNumberError,
    ExpiredMetadataError,
    LengthOrHashMismatchError,
    RepositoryError,
    UnsignedMetadataError,
)
from tuf.ngclient._internal.trusted_metadata_set import TrustedMetadataSet
from tuf.ngclient.config import EnvelopeType
from tuf.ngclient.fetcher import FetcherInterface

__all__ = [
    "BadVersionNumberError",
    "DownloadError",
    "DownloadHTTPError",
    "DownloadLengthMismatchError",
    "EnvelopeType",
    "EqualVersionNumberError",
    "ExpiredMetadataError",
    "FetcherInterface",
    "LengthOrHashMismatchError",
    "RepositoryError",
    "Root",
    "Snapshot",
    "TargetFile",
    "Targets",
    "Timestamp",
    "TrustedMetadataSet",
    "UnsignedMetadataError",
]
