"""The image repository's metadata core: python-tuf's ``Repository`` over the latest signed
version of each top-level role, held in memory. No I/O, no clock: the caller loads the current
versions, passes ``now`` and the signers, runs one operation and stores ``written``.

Every version it produces is signed and then verified against the root it will be served
under, so metadata below its threshold is never stored (a misconfigured key fails here, not in
every car). Stored bytes are what is served: snapshot and timestamp carry the length and sha256
of the exact bytes of targets and snapshot (TUF spec 4.4 and 4.6, optional ``length`` and
``hashes``), which rules out re-serialising stored metadata.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ota.errors import (
    MetadataCorruptError,
    RepositoryInitializedError,
    RepositoryNotInitializedError,
    SigningKeyMissingError,
    ThresholdNotMetError,
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
from ota.tuf_api import (
    DeserializationError,
    Key,
    Metadata,
    MetaFile,
    Repository,
    Root,
    Signer,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
    UnsignedMetadataError,
)

# python-tuf's Metadata is generic over a constrained TypeVar (Root, Targets, ...): Any stands
# for "one of the four", as in python-tuf's own Repository.
AnyMetadata = Metadata[Any]


@dataclass(frozen=True, slots=True)
class SignedMetadata:
    """One stored version of a role: the exact bytes served, with what indexes them."""

    role: str
    version: int
    expires: datetime
    body: bytes

    def metadata(self) -> AnyMetadata:
        try:
            return Metadata.from_bytes(self.body)
        except DeserializationError as exc:
            raise MetadataCorruptError(
                f"{self.version}.{self.role}.json does not parse: {exc}",
                role=self.role,
                version=self.version,
            ) from exc

    def meta_file(self) -> MetaFile:
        """How snapshot (for targets) or timestamp (for snapshot) refers to this version."""
        digest = hashlib.sha256(self.body).hexdigest()
        return MetaFile(self.version, len(self.body), {"sha256": digest})


class SigningRepository(Repository):
    def __init__(
        self,
        current: Mapping[str, SignedMetadata],
        *,
        signers: Mapping[str, Sequence[Signer]],
        expiry: ExpiryPolicy,
        now: datetime,
    ) -> None:
        self._current = dict(current)
        self._signers = signers
        self._expiry = expiry
        self._now = now
        self.written: list[SignedMetadata] = []

    # -- python-tuf Repository interface ----------------------------------------------------

    def open(self, role: str) -> AnyMetadata:
        stored = self._current.get(role)
        if stored is not None:
            return stored.metadata()  # a fresh object each time: edits never leak back
        md = _fresh(role)
        md.signed.version = 0  # close() bumps it to 1
        if isinstance(md.signed, Snapshot):
            md.signed.meta = {}  # filled by do_snapshot() with length and hashes
        elif isinstance(md.signed, Timestamp):
            md.signed.snapshot_meta = self.snapshot_info
        return md

    def close(self, role: str, md: AnyMetadata) -> None:
        md.signed.version += 1
        md.signed.expires = self._expiry.expires(role, self._now)
        md.signatures.clear()
        if isinstance(md.signed, Root):
            self._sign_root(md)
        else:
            self._sign_online(role, md)
        stored = SignedMetadata(role, md.signed.version, md.signed.expires, md.to_bytes())
        self._current[role] = stored
        self.written.append(stored)

    @property
    def targets_infos(self) -> dict[str, MetaFile]:
        return {f"{TARGETS}.json": self._stored(TARGETS).meta_file()}

    @property
    def snapshot_info(self) -> MetaFile:
        return self._stored(SNAPSHOT).meta_file()

    # -- operations -------------------------------------------------------------------------

    def initialize(self, keys: Mapping[str, Sequence[Key]], policy: KeyPolicy) -> None:
        """Version 1 of every role: root listing ``keys`` with the policy's thresholds."""
        if self._current:
            raise RepositoryInitializedError("the image repository already has metadata")
        with self.edit_root() as root:
            root.consistent_snapshot = True  # N.root.json, M.snapshot.json, <hash>.<target>
            for role in TOP_LEVEL_ROLES:
                root.roles[role].threshold = policy.for_role(role).threshold
                for key in keys[role]:
                    root.add_key(key, role)
        with self.edit_targets():
            pass
        self.do_snapshot(force=True)
        self.do_timestamp(force=True)

    def add_targets(self, files: Sequence[TargetFile]) -> int:
        """List ``files`` in a new targets version, then snapshot and timestamp (TUF spec
        4.4/4.6: a client finds new targets only through a new snapshot and timestamp).
        Returns the new targets version."""
        self._require_initialized()
        with self.edit_targets() as targets:
            for target in files:
                targets.targets[target.path] = target
        self.do_snapshot()
        self.do_timestamp()
        return self._stored(TARGETS).version

    def refresh_due(self) -> tuple[str, ...]:
        """Re-sign every online role close to its expiry; returns the roles re-signed."""
        self._require_initialized()
        due = {
            role
            for role in ONLINE_ROLES
            if self._expiry.is_due(role, self._stored(role).expires, self._now)
        }
        if TARGETS in due:
            with self.edit_targets():
                pass
        if due & {TARGETS, SNAPSHOT}:
            # A new targets version changes snapshot anyway; force covers the snapshot-only case.
            self.do_snapshot(force=SNAPSHOT in due)
        if due:
            self.do_timestamp(force=TIMESTAMP in due)
        return tuple(role for role in TOP_LEVEL_ROLES if any(w.role == role for w in self.written))

    def rotate(self, role: str, new_keys: Sequence[Key], threshold: int) -> None:
        """Replace every key of ``role`` in a new root version, then re-sign what the old keys
        had signed. Root itself is signed by old and new root keys (``signers[ROOT]`` must hold
        both): TUF spec 5.3.4 has clients check a new root against the threshold of the
        trusted root and of itself."""
        self._require_initialized()
        with self.edit_root() as root:
            for keyid in list(root.roles[role].keyids):
                root.revoke_key(keyid, role)
            for key in new_keys:
                root.add_key(key, role)
            root.roles[role].threshold = threshold
        if role == TARGETS:
            with self.edit_targets():
                pass
        if role in (TARGETS, SNAPSHOT):
            # do_snapshot() re-signs on its own when the current snapshot no longer verifies.
            self.do_snapshot()
        if role != ROOT:
            self.do_timestamp()

    # -- signing ----------------------------------------------------------------------------

    def _sign_root(self, md: AnyMetadata) -> None:
        new_root = md.signed
        assert isinstance(new_root, Root)
        previous = self._previous_root()
        wanted = set(new_root.roles[ROOT].keyids)
        if previous is not None:
            wanted |= set(previous.roles[ROOT].keyids)
        for signer in self._signers.get(ROOT, ()):
            if signer.public_key.keyid in wanted:
                md.sign(signer, append=True)
        result = new_root.get_root_verification_result(previous, md.signed_bytes, md.signatures)
        if not result.verified:
            raise ThresholdNotMetError(
                f"root v{new_root.version} is signed by {len(result.first.signed)}/"
                f"{result.first.threshold} keys of the trusted root and "
                f"{len(result.second.signed)}/{result.second.threshold} of its own",
                role=ROOT,
            )

    def _sign_online(self, role: str, md: AnyMetadata) -> None:
        root = self.root()
        delegation = root.roles[role]
        usable = [s for s in self._signers.get(role, ()) if s.public_key.keyid in delegation.keyids]
        if len(usable) < delegation.threshold:
            raise SigningKeyMissingError(
                f"{role}: {len(usable)} of the keys listed in root v{root.version} are "
                f"available, {delegation.threshold} needed",
                role=role,
                have=len(usable),
                threshold=delegation.threshold,
            )
        for signer in usable:
            md.sign(signer, append=True)
        try:
            root.verify_delegate(role, md.signed_bytes, md.signatures)
        except UnsignedMetadataError as exc:
            raise ThresholdNotMetError(f"{role}: {exc}", role=role) from exc

    def _previous_root(self) -> Root | None:
        stored = self._current.get(ROOT)
        if stored is None:
            return None
        root = stored.metadata().signed
        assert isinstance(root, Root)
        return root

    def _stored(self, role: str) -> SignedMetadata:
        stored = self._current.get(role)
        if stored is None:
            raise RepositoryNotInitializedError(
                f"the image repository has no {role} metadata; run `fleetlink ota keys init`"
            )
        return stored

    def _require_initialized(self) -> None:
        for role in TOP_LEVEL_ROLES:
            self._stored(role)


def _fresh(role: str) -> AnyMetadata:
    if role == ROOT:
        return Metadata(Root())
    if role == TARGETS:
        return Metadata(Targets())
    if role == SNAPSHOT:
        return Metadata(Snapshot())
    if role == TIMESTAMP:
        return Metadata(Timestamp())
    raise ValueError(f"not a top-level role: {role}")
