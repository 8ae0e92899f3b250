"""Creating the director's keys and root (Uptane 5.3.2 and Deployment Best Practices
"Director repository": the director root is offline, its targets, snapshot and timestamp keys
online, because the director signs for each vehicle as it asks).

The director's root keys go to an offline directory of their own, never the image
repository's (a compromise of one root must not give the other: the point of two
repositories, Uptane 4.2). Rotation follows the image repository's ceremony
(``ota.ceremony.rotate``) and is not automated here yet.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ota.ceremony import check_separate, offline_directory
from ota.director import Director
from ota.director_core import initial_root
from ota.director_errors import DirectorInitializedError
from ota.director_settings import DirectorSettings
from ota.keys import KeyDirectory, generate_key, signer_for
from ota.policy import ONLINE_ROLES, ROOT, TOP_LEVEL_ROLES, KeyPolicy, RoleKeys
from ota.settings import OtaSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DirectorInit:
    root_version: int
    keyids: dict[str, tuple[str, ...]]


def online_director_directory(path: Path) -> KeyDirectory:
    return KeyDirectory(path, roles=ONLINE_ROLES)


async def initialize_director(
    director: Director,
    online: KeyDirectory,
    offline: KeyDirectory,
    policy: KeyPolicy,
    now: datetime,
) -> DirectorInit:
    """Generate the director's keys and sign root version 1."""
    if await director.root() is not None:
        raise DirectorInitializedError("the director is already initialized")
    pairs = {}
    for role in TOP_LEVEL_ROLES:
        keys = [generate_key() for _ in range(policy.for_role(role).count)]
        pairs[role] = [(key, signer_for(key)) for key in keys]
    signers = {role: [s for _, s in found] for role, found in pairs.items()}
    root = initial_root(
        {role: [s.public_key for s in found] for role, found in signers.items()},
        policy,
        signers=signers,
        expiry=director.expiry,
        now=now,
    )
    # Keys first: a root stored without its keys on disk could never sign a vehicle's
    # metadata; key files without a stored root are ignored (the root decides).
    for role, found in pairs.items():
        directory = offline if role == ROOT else online
        for key, _ in found:
            await asyncio.to_thread(directory.add, role, key)
    await director.store_root(root, now)
    return DirectorInit(
        root.version, {role: tuple(s.public_key.keyid for s in signers[role]) for role in signers}
    )


async def ensure_director_initialized(
    director: Director,
    ota: OtaSettings,
    offline_dir: Path,
    now: datetime,
    settings: DirectorSettings | None = None,
) -> DirectorInit | None:
    """For the embedded runtime: create the director on first start, with its root key in
    ``offline_dir`` (outside the OTA data directory). None when it already exists."""
    offline = offline_directory(offline_dir)
    check_separate(offline, ota.data_dir)
    if await director.root() is not None:
        return None
    log.warning(
        "OTA: created the director with its root key in %s. Fine for a demo; in production "
        "keep director root keys offline (docs/ota.md)",
        offline_dir,
    )
    settings = settings or DirectorSettings()
    single = RoleKeys(1, 1)
    return await initialize_director(
        director,
        online_director_directory(settings.keys_path(ota)),
        offline,
        KeyPolicy(root=single, targets=single, snapshot=single, timestamp=single),
        now,
    )
