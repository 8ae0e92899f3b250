"""Key ceremonies: creating the repository's keys and first metadata, and rotating a role's
keys. These are the only code paths that open the offline root key directory.

Rotation of any top-level role is a new root version (TUF spec 4.3: root lists every role's
keys), so every rotation needs the root keys. New key files are written inside the
transaction that stores the new root, before it commits; the keys they replace are retired
(moved aside) only after it committed. Whatever fails in between, the root in the database
decides which keys count, and a key not listed there is never used.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ota.errors import KeyPolicyError, KeyStoreError, RepositoryInitializedError
from ota.image_repository import ImageRepository
from ota.keys import KeyDirectory, generate_key, signer_for
from ota.policy import ONLINE_ROLES, ROOT, TOP_LEVEL_ROLES, KeyPolicy
from ota.settings import OtaSettings
from ota.tuf_api import CryptoSigner, Root

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CeremonyResult:
    root_version: int
    keyids: dict[str, tuple[str, ...]]  # role -> keyids now listed in root for it


def offline_directory(path: Path, passphrase: bytes | None = None) -> KeyDirectory:
    return KeyDirectory(path, roles=(ROOT,), passphrase=passphrase)


def online_directory(path: Path) -> KeyDirectory:
    return KeyDirectory(path, roles=ONLINE_ROLES)


def check_separate(offline: KeyDirectory, ota_data_dir: Path) -> None:
    """The offline directory must not be where the server reads: not the OTA data directory
    nor anywhere inside it."""
    offline_path = offline.path.resolve()
    data_path = ota_data_dir.resolve()
    if offline_path == data_path or offline_path.is_relative_to(data_path):
        raise KeyStoreError(
            f"the offline root key directory {offline_path} is inside the OTA data directory "
            f"{data_path}, which the server reads; keep root keys elsewhere (removable media)",
            path=str(offline_path),
        )


async def initialize(
    repository: ImageRepository,
    online: KeyDirectory,
    offline: KeyDirectory,
    policy: KeyPolicy,
    now: datetime,
) -> CeremonyResult:
    """Generate every role's keys and sign version 1 of all four roles."""
    if await repository.current():
        raise RepositoryInitializedError("the image repository is already initialized")
    signers = {
        role: [(key, signer_for(key)) for key in _keys(policy.for_role(role).count)]
        for role in TOP_LEVEL_ROLES
    }
    extra = {role: [s for _, s in pairs] for role, pairs in signers.items()}
    async with repository.editing(now, extra_signers=extra) as editing:
        editing.core.initialize(
            {role: [s.public_key for s in extra[role]] for role in TOP_LEVEL_ROLES}, policy
        )
        for role, pairs in signers.items():
            directory = offline if role == ROOT else online
            for key, _ in pairs:
                await asyncio.to_thread(directory.add, role, key)
        root = editing.core.root()
    return _result(root)


async def rotate(
    repository: ImageRepository,
    online: KeyDirectory,
    offline: KeyDirectory,
    *,
    role: str,
    policy: KeyPolicy,
    now: datetime,
) -> CeremonyResult:
    """Replace every key of ``role``; root is signed by the old and the new root keys."""
    if role not in TOP_LEVEL_ROLES:
        raise KeyPolicyError(f"{role!r} is not a top-level TUF role", role=role)
    root_signers: list[CryptoSigner] = await asyncio.to_thread(offline.signers, ROOT)
    role_keys = policy.for_role(role)
    new = [(key, signer_for(key)) for key in _keys(role_keys.count)]
    new_signers = [s for _, s in new]
    extra = {ROOT: root_signers}
    extra[role] = [*extra.get(role, []), *new_signers]
    directory = offline if role == ROOT else online
    async with repository.editing(now, extra_signers=extra) as editing:
        retiring = list(editing.core.root().roles[role].keyids)
        editing.core.rotate(role, [s.public_key for s in new_signers], role_keys.threshold)
        for key, _ in new:
            await asyncio.to_thread(directory.add, role, key)
        root = editing.core.root()
    await asyncio.to_thread(directory.retire, role, retiring)
    return _result(root)


def _keys(count: int) -> list[Ed25519PrivateKey]:
    return [generate_key() for _ in range(count)]


def _result(root: Root) -> CeremonyResult:
    return CeremonyResult(
        root_version=root.version,
        keyids={role: tuple(root.roles[role].keyids) for role in TOP_LEVEL_ROLES},
    )


async def ensure_initialized(
    repository: ImageRepository, settings: OtaSettings, offline_dir: Path, now: datetime
) -> CeremonyResult | None:
    """For the embedded runtime (``fleetlink up``): initialize on first start, with the root
    keys in ``offline_dir`` (a sibling of the OTA data directory, never inside it). Returns
    None when the repository already has metadata. A production deployment runs
    ``fleetlink ota keys init`` with the root keys on removable media instead."""
    offline = offline_directory(offline_dir)
    check_separate(offline, settings.data_dir)
    if await repository.current():
        return None
    log.warning(
        "OTA: created the image repository with its root keys in %s. Fine for a demo; in "
        "production keep root keys offline (docs/ota.md)",
        offline_dir,
    )
    return await initialize(
        repository,
        online_directory(settings.keys_dir),
        offline,
        KeyPolicy.from_settings(settings),
        now,
    )
