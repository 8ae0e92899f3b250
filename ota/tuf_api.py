"""The python-tuf and securesystemslib names FleetLink uses, imported in one place.

Both libraries re-export their classes from private modules without ``__all__``, which mypy's
strict mode (``implicit_reexport = False``) refuses at ``tuf.api.metadata`` and
``securesystemslib.signer``. Importing from the defining modules here, once, keeps the rest of
the package on the public names; should the project add ``implicit_reexport = true`` for these
two libraries, only this file changes.
"""

from __future__ import annotations

from securesystemslib.signer._crypto_signer import CryptoSigner
from securesystemslib.signer._key import Key, SSlibKey
from securesystemslib.signer._signer import Signer
from tuf.api._payload import (
    MetaFile,
    Root,
    Signed,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Metadata
from tuf.api.serialization import DeserializationError
from tuf.repository._repository import Repository

__all__ = [
    "CryptoSigner",
    "DeserializationError",
    "Key",
    "MetaFile",
    "Metadata",
    "Repository",
    "Root",
    "SSlibKey",
    "Signed",
    "Signer",
    "Snapshot",
    "TargetFile",
    "Targets",
    "Timestamp",
    "UnsignedMetadataError",
]
