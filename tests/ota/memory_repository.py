"""Test helpers: the metadata core driven in memory, served to a stock python-tuf client
through an in-memory fetcher (the HTTP layer has tests of its own)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from tuf.api.exceptions import DownloadHTTPError
from tuf.ngclient.fetcher import FetcherInterface
from tuf.ngclient.updater import Updater

from ota.keys import generate_key, signer_for
from ota.policy import TOP_LEVEL_ROLES, ExpiryPolicy, KeyPolicy, RoleKeys
from ota.signing_repository import SignedMetadata, SigningRepository
from ota.tuf_api import CryptoSigner

BASE_URL = "https://repo.test/ota/image/"
T = TypeVar("T")

EXPIRY = ExpiryPolicy(
    root=timedelta(days=365),
    targets=timedelta(days=90),
    snapshot=timedelta(days=7),
    timestamp=timedelta(days=1),
    refresh_remaining_ratio=0.5,
)


def wall_now() -> datetime:
    """ngclient checks expiry against the wall clock, so metadata a client reads is signed
    'now'; the cores still receive it as an argument."""
    return datetime.now(UTC).replace(microsecond=0)


SINGLE = RoleKeys(1, 1)


def policy(root: RoleKeys = SINGLE) -> KeyPolicy:
    return KeyPolicy(root=root, targets=SINGLE, snapshot=SINGLE, timestamp=SINGLE)


def new_signers(key_policy: KeyPolicy) -> dict[str, list[CryptoSigner]]:
    return {
        role: [signer_for(generate_key()) for _ in range(key_policy.for_role(role).count)]
        for role in TOP_LEVEL_ROLES
    }


@dataclass
class MemoryRepository:
    """Every stored version, as the database would hold them."""

    signers: dict[str, list[CryptoSigner]]
    versions: dict[tuple[str, int], SignedMetadata] = field(default_factory=dict)
    targets: dict[str, bytes] = field(default_factory=dict)  # "<sha256>.<path>" -> content

    def latest(self) -> dict[str, SignedMetadata]:
        latest: dict[str, SignedMetadata] = {}
        for (role, version), stored in sorted(self.versions.items()):
            if role not in latest or version > latest[role].version:
                latest[role] = stored
        return latest

    def change(
        self,
        now: datetime,
        operation: Callable[[SigningRepository], T],
        *,
        signers: dict[str, list[CryptoSigner]] | None = None,
    ) -> tuple[T, list[SignedMetadata]]:
        core = SigningRepository(
            self.latest(), signers=signers or self.signers, expiry=EXPIRY, now=now
        )
        result = operation(core)
        for written in core.written:
            key = (written.role, written.version)
            assert key not in self.versions, f"{key} written twice"
            self.versions[key] = written
        return result, core.written

    def root_bytes(self, version: int = 1) -> bytes:
        return self.versions[("root", version)].body

    def fetcher(self) -> MemoryFetcher:
        return MemoryFetcher(self)


class MemoryFetcher(FetcherInterface):
    def __init__(self, repository: MemoryRepository) -> None:
        self._repository = repository
        self.fetched: list[str] = []

    def _fetch(self, url: str) -> Iterator[bytes]:
        assert url.startswith(BASE_URL), url
        name = url.removeprefix(BASE_URL)
        self.fetched.append(name)
        body = self._lookup(name)
        if body is None:
            raise DownloadHTTPError(f"{name} not found", 404)
        return iter([body])

    def _lookup(self, name: str) -> bytes | None:
        if name.startswith("targets/"):
            return self._repository.targets.get(name.removeprefix("targets/"))
        if name == "timestamp.json":
            latest = self._repository.latest().get("timestamp")
            return latest.body if latest else None
        version, _, rest = name.partition(".")
        role = rest.removesuffix(".json")
        stored = self._repository.versions.get((role, int(version))) if version.isdigit() else None
        return stored.body if stored else None


def updater(repository: MemoryRepository, workdir: Path, *, trusted_root: bytes | None) -> Updater:
    """A stock client; ``trusted_root=None`` resumes from what it cached in ``workdir``."""
    metadata_dir = workdir / "metadata"
    metadata_dir.mkdir(parents=True, exist_ok=True)
    downloads = workdir / "downloads"
    downloads.mkdir(exist_ok=True)
    return Updater(
        metadata_dir=str(metadata_dir),
        metadata_base_url=BASE_URL,
        target_dir=str(downloads),
        target_base_url=BASE_URL + "targets/",
        fetcher=repository.fetcher(),
        bootstrap=trusted_root,
    )
