"""What a car trusts of one TUF repository, and the TUF client workflow that updates it.

The verification itself is python-tuf's ``TrustedMetadataSet`` (signatures and thresholds,
rollback, freeze, mix-and-match: TUF spec 5.3-5.6), driven in the order python-tuf's own
``Updater.refresh`` drives it: root one version at a time, then timestamp, snapshot and
targets, each first from the car's storage and then from the repository. ``now`` is passed in
(``reference_time``), so the car's clock decides expiry, not the host's.

Unlike ``Updater`` it keeps what it trusts in memory (the car's non-volatile storage, a dict of
verified bytes per role) and returns the verified top-level targets, whose every entry the car
must see: Uptane's director lists per-vehicle instructions, not a file to look one up in.
Nothing enters storage unless it verified; a refresh that fails leaves the car trusting
exactly what it trusted before, ready for the next valid update.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Protocol

from simulator.ota_client.errors import UpdateRejectedError, metadata_code
from simulator.ota_client.tuf_names import (
    DownloadError,
    DownloadHTTPError,
    EnvelopeType,
    EqualVersionNumberError,
    RepositoryError,
    Targets,
    TrustedMetadataSet,
)

ROOT: Final = "root"
TIMESTAMP: Final = "timestamp"
SNAPSHOT: Final = "snapshot"
TARGETS: Final = "targets"
# python-tuf's UpdaterConfig defaults.
MAX_ROOT_ROTATIONS = 256
ROOT_MAX_BYTES = 512_000
TIMESTAMP_MAX_BYTES = 16_384
SNAPSHOT_MAX_BYTES = 2_000_000
TARGETS_MAX_BYTES = 5_000_000


class MetadataSource(Protocol):
    """Fetches ``[version.]role.json`` from one repository; raises python-tuf's
    ``DownloadError`` (``DownloadHTTPError`` with 404 when there is no such file)."""

    def metadata(self, role: str, version: int | None, max_bytes: int) -> bytes: ...


@dataclass
class RepositoryTrust:
    name: str  # "image" or "director", for reports and logs
    stored: dict[str, bytes] = field(default_factory=dict)  # verified bytes per role

    @classmethod
    def anchored(cls, name: str, trusted_root: bytes) -> RepositoryTrust:
        """Trust anchored in the root the car was built with (Uptane 5.4.1)."""
        return cls(name, {ROOT: trusted_root})

    def refresh(
        self,
        source: MetadataSource,
        now: datetime,
        accept: Callable[[Targets], None] | None = None,
    ) -> Targets:
        """The repository's verified top-level targets, or :class:`UpdateRejectedError`.

        ``accept`` is a check beyond TUF (Uptane's: director targets bound to this car). If it
        refuses, nothing of this refresh is kept: validly signed metadata for another car must
        not become this car's trusted state (its versions would then shadow the car's own).
        Metadata that verified before a TUF failure is kept, as python-tuf's Updater does."""
        before = dict(self.stored)
        try:
            targets = self._refresh(source, now)
        except UpdateRejectedError:
            raise
        except (RepositoryError, DownloadError) as exc:
            raise UpdateRejectedError(metadata_code(exc), f"{self.name}: {exc}") from exc
        if accept is not None:
            try:
                accept(targets)
            except UpdateRejectedError:
                self.stored = before
                raise
        return targets

    def _refresh(self, source: MetadataSource, now: datetime) -> Targets:
        trusted = TrustedMetadataSet(self.stored[ROOT], EnvelopeType.METADATA)
        trusted.reference_time = now
        self._load_root(trusted, source)
        self._load_timestamp(trusted, source)
        self._load_snapshot(trusted, source)
        self._load_targets(trusted, source)
        return trusted.targets

    def _load_root(self, trusted: TrustedMetadataSet, source: MetadataSource) -> None:
        # TUF 5.3.4: walk root N+1, N+2, ... until the repository has no next version.
        first = trusted.root.version + 1
        for version in range(first, first + MAX_ROOT_ROTATIONS):
            try:
                data = source.metadata(ROOT, version, ROOT_MAX_BYTES)
            except DownloadHTTPError as exc:
                if exc.status_code not in (403, 404):
                    raise
                return
            trusted.update_root(data)
            self.stored[ROOT] = data
            # A new root may have rotated the timestamp or snapshot keys (TUF 5.3.11): what
            # is stored under the old keys no longer verifies and will simply be replaced.

    def _load_timestamp(self, trusted: TrustedMetadataSet, source: MetadataSource) -> None:
        local = self.stored.get(TIMESTAMP)
        if local is not None:
            with contextlib.suppress(RepositoryError):
                trusted.update_timestamp(local)  # for rollback protection, even if expired
        data = source.metadata(TIMESTAMP, None, TIMESTAMP_MAX_BYTES)
        try:
            trusted.update_timestamp(data)
        except EqualVersionNumberError:
            return  # the same version as stored: nothing new
        self.stored[TIMESTAMP] = data

    def _load_snapshot(self, trusted: TrustedMetadataSet, source: MetadataSource) -> None:
        local = self.stored.get(SNAPSHOT)
        if local is not None:
            try:
                trusted.update_snapshot(local, trusted=True)
                return  # still the snapshot the timestamp names
            except RepositoryError:
                pass
        meta = trusted.timestamp.snapshot_meta
        version = meta.version if trusted.root.consistent_snapshot else None
        data = source.metadata(SNAPSHOT, version, meta.length or SNAPSHOT_MAX_BYTES)
        trusted.update_snapshot(data)
        self.stored[SNAPSHOT] = data

    def _load_targets(self, trusted: TrustedMetadataSet, source: MetadataSource) -> None:
        local = self.stored.get(TARGETS)
        if local is not None:
            try:
                trusted.update_targets(local)
                return
            except RepositoryError:
                pass
        meta = trusted.snapshot.meta.get(f"{TARGETS}.json")
        if meta is None:
            raise UpdateRejectedError("metadata_invalid", f"{self.name}: snapshot lists no targets")
        version = meta.version if trusted.root.consistent_snapshot else None
        data = source.metadata(TARGETS, version, meta.length or TARGETS_MAX_BYTES)
        trusted.update_targets(data)
        self.stored[TARGETS] = data
