"""The metadata core in memory: versions, expiries, thresholds, refresh and key rotation, with
a stock python-tuf client (``tuf.ngclient.Updater``) as the judge of what it signs."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from tuf.api.exceptions import UnsignedMetadataError

from ota.errors import (
    RepositoryInitializedError,
    RepositoryNotInitializedError,
    SigningKeyMissingError,
    ThresholdNotMetError,
)
from ota.image_target import ImageSpec, ImageTarget
from ota.keys import generate_key, signer_for
from ota.policy import ROOT, SNAPSHOT, TARGETS, TIMESTAMP, TOP_LEVEL_ROLES, RoleKeys
from ota.tuf_api import Metadata, Root, Snapshot, Targets, Timestamp
from tests.ota.memory_repository import (
    EXPIRY,
    SINGLE,
    MemoryRepository,
    new_signers,
    policy,
    updater,
    wall_now,
)


def initialized(root: RoleKeys = SINGLE) -> MemoryRepository:
    key_policy = policy(root)
    signers = new_signers(key_policy)
    repo = MemoryRepository(signers)
    keys = {role: [s.public_key for s in signers[role]] for role in TOP_LEVEL_ROLES}
    repo.change(wall_now(), lambda core: core.initialize(keys, key_policy))
    return repo


def image(content: bytes, version: str = "1.0.0", counter: int = 1) -> ImageTarget:
    spec = ImageSpec("tcu-fw", version, ("VW-GOLF-TCU-H1",), counter)
    return ImageTarget(spec, len(content), hashlib.sha256(content).hexdigest())


def publish(repo: MemoryRepository, content: bytes, version: str = "1.0.0") -> ImageTarget:
    target = image(content, version)
    repo.change(wall_now(), lambda core: core.add_targets([target.to_target_file()]))
    repo.targets[f"{target.sha256}.{target.path}"] = content
    return target


def versions(repo: MemoryRepository) -> dict[str, int]:
    return {role: stored.version for role, stored in repo.latest().items()}


# -- initialisation, versions, expiries ----------------------------------------------------------


def test_initialize_signs_version_1_of_every_role_with_policy_expiries() -> None:
    now = wall_now()
    key_policy = policy(RoleKeys(3, 2))
    signers = new_signers(key_policy)
    repo = MemoryRepository(signers)
    keys = {role: [s.public_key for s in signers[role]] for role in TOP_LEVEL_ROLES}
    _, written = repo.change(now, lambda core: core.initialize(keys, key_policy))

    assert [(w.role, w.version) for w in written] == [
        (ROOT, 1),
        (TARGETS, 1),
        (SNAPSHOT, 1),
        (TIMESTAMP, 1),
    ]
    for stored in written:
        assert stored.expires == now + EXPIRY.lifetime(stored.role)
    root = Metadata[Root].from_bytes(repo.root_bytes()).signed
    assert root.consistent_snapshot is True
    assert root.roles[ROOT].threshold == 2
    assert len(root.roles[ROOT].keyids) == 3
    # Snapshot and timestamp pin the exact bytes they refer to.
    snapshot = Metadata[Snapshot].from_bytes(repo.latest()[SNAPSHOT].body).signed
    targets_body = repo.latest()[TARGETS].body
    assert snapshot.meta["targets.json"].version == 1
    assert snapshot.meta["targets.json"].length == len(targets_body)
    assert snapshot.meta["targets.json"].hashes == {
        "sha256": hashlib.sha256(targets_body).hexdigest()
    }
    timestamp = Metadata[Timestamp].from_bytes(repo.latest()[TIMESTAMP].body).signed
    assert timestamp.snapshot_meta.version == 1
    assert timestamp.snapshot_meta.hashes == {
        "sha256": hashlib.sha256(repo.latest()[SNAPSHOT].body).hexdigest()
    }


def test_initialize_twice_is_refused() -> None:
    repo = initialized()
    keys = {role: [s.public_key for s in repo.signers[role]] for role in TOP_LEVEL_ROLES}
    with pytest.raises(RepositoryInitializedError):
        repo.change(wall_now(), lambda core: core.initialize(keys, policy()))


def test_operations_on_an_empty_repository_are_refused() -> None:
    repo = MemoryRepository(new_signers(policy()))
    with pytest.raises(RepositoryNotInitializedError):
        repo.change(wall_now(), lambda core: core.refresh_due())


def test_adding_targets_bumps_targets_snapshot_and_timestamp_once_each() -> None:
    repo = initialized()
    target = publish(repo, b"image one")
    assert versions(repo) == {ROOT: 1, TARGETS: 2, SNAPSHOT: 2, TIMESTAMP: 2}
    listed = Metadata[Targets].from_bytes(repo.latest()[TARGETS].body).signed.targets
    assert listed[target.path].custom["hardwareIds"] == ["VW-GOLF-TCU-H1"]
    assert listed[target.path].custom["releaseCounter"] == 1
    publish(repo, b"image two", "1.1.0")
    assert versions(repo) == {ROOT: 1, TARGETS: 3, SNAPSHOT: 3, TIMESTAMP: 3}
    listed = Metadata[Targets].from_bytes(repo.latest()[TARGETS].body).signed.targets
    assert sorted(listed) == ["tcu-fw-1.0.0", "tcu-fw-1.1.0"]


# -- refresh ------------------------------------------------------------------------------------


def test_nothing_is_due_right_after_signing() -> None:
    repo = initialized()
    refreshed, written = repo.change(wall_now(), lambda core: core.refresh_due())
    assert refreshed == ()
    assert written == []


def test_timestamp_alone_is_refreshed_past_half_its_lifetime() -> None:
    repo = initialized()
    later = wall_now() + timedelta(hours=12, seconds=1)
    refreshed, _ = repo.change(later, lambda core: core.refresh_due())
    assert refreshed == (TIMESTAMP,)
    assert versions(repo) == {ROOT: 1, TARGETS: 1, SNAPSHOT: 1, TIMESTAMP: 2}
    assert repo.latest()[TIMESTAMP].expires == later.replace(microsecond=0) + timedelta(days=1)


def test_snapshot_refresh_carries_a_new_timestamp() -> None:
    repo = initialized()
    refreshed, _ = repo.change(wall_now() + timedelta(days=4), lambda core: core.refresh_due())
    assert refreshed == (SNAPSHOT, TIMESTAMP)
    assert versions(repo) == {ROOT: 1, TARGETS: 1, SNAPSHOT: 2, TIMESTAMP: 2}
    timestamp = Metadata[Timestamp].from_bytes(repo.latest()[TIMESTAMP].body).signed
    assert timestamp.snapshot_meta.version == 2


def test_targets_refresh_carries_snapshot_and_timestamp() -> None:
    repo = initialized()
    refreshed, _ = repo.change(wall_now() + timedelta(days=46), lambda core: core.refresh_due())
    assert refreshed == (TARGETS, SNAPSHOT, TIMESTAMP)
    assert versions(repo) == {ROOT: 1, TARGETS: 2, SNAPSHOT: 2, TIMESTAMP: 2}


# -- thresholds and keys ----------------------------------------------------------------------


def test_an_online_role_without_its_key_cannot_sign() -> None:
    repo = initialized()
    without_timestamp = {**repo.signers, TIMESTAMP: [signer_for(generate_key())]}
    with pytest.raises(SigningKeyMissingError) as caught:
        repo.change(
            wall_now() + timedelta(hours=13),
            lambda core: core.refresh_due(),
            signers=without_timestamp,
        )
    assert caught.value.role == TIMESTAMP
    assert caught.value.threshold == 1
    assert versions(repo)[TIMESTAMP] == 1


def test_root_below_its_threshold_is_never_written() -> None:
    key_policy = policy(RoleKeys(3, 2))
    signers = new_signers(key_policy)
    signers[ROOT] = signers[ROOT][:1]  # one of the three root keys at hand, two needed
    repo = MemoryRepository(signers)
    keys = {role: [s.public_key for s in signers[role]] for role in TOP_LEVEL_ROLES}
    strangers = [signer_for(generate_key()).public_key for _ in range(2)]
    keys[ROOT] = [*keys[ROOT], *strangers]
    with pytest.raises(ThresholdNotMetError) as caught:
        repo.change(wall_now(), lambda core: core.initialize(keys, key_policy))
    assert caught.value.role == ROOT
    assert repo.versions == {}


def test_root_with_threshold_two_verifies_only_with_two_signatures() -> None:
    repo = initialized(RoleKeys(3, 2))
    md = Metadata[Root].from_bytes(repo.root_bytes())
    root = md.signed
    root.verify_delegate(ROOT, md.signed_bytes, md.signatures)
    one = dict(list(md.signatures.items())[:1])
    with pytest.raises(UnsignedMetadataError):
        root.verify_delegate(ROOT, md.signed_bytes, one)


# -- rotation ---------------------------------------------------------------------------------


def rotate(repo: MemoryRepository, role: str, count: int = 1, threshold: int = 1) -> None:
    new = [signer_for(generate_key()) for _ in range(count)]
    signers = dict(repo.signers)
    if role == ROOT:
        signers[ROOT] = [*repo.signers[ROOT], *new]  # old and new root keys sign the new root
    else:
        signers[role] = new
    repo.change(
        wall_now(),
        lambda core: core.rotate(role, [s.public_key for s in new], threshold),
        signers=signers,
    )
    repo.signers[role] = new


@pytest.mark.parametrize("role", [TIMESTAMP, SNAPSHOT, TARGETS])
def test_rotating_an_online_role_resigns_what_it_signed(role: str) -> None:
    repo = initialized()
    before = versions(repo)
    rotate(repo, role)
    after = versions(repo)
    assert after[ROOT] == 2
    resigned = {TIMESTAMP: {TIMESTAMP}, SNAPSHOT: {SNAPSHOT, TIMESTAMP}}.get(
        role, {TARGETS, SNAPSHOT, TIMESTAMP}
    )
    for other in (TARGETS, SNAPSHOT, TIMESTAMP):
        assert after[other] == before[other] + (1 if other in resigned else 0)
    root = Metadata[Root].from_bytes(repo.root_bytes(2)).signed
    assert root.roles[role].keyids == [repo.signers[role][0].public_key.keyid]


def test_new_root_is_signed_by_old_and_new_root_keys() -> None:
    repo = initialized()
    old_root = Metadata[Root].from_bytes(repo.root_bytes(1)).signed
    rotate(repo, ROOT)
    md = Metadata[Root].from_bytes(repo.root_bytes(2))
    result = md.signed.get_root_verification_result(old_root, md.signed_bytes, md.signatures)
    assert result.verified
    assert result.first.signed.keys() == set(old_root.roles[ROOT].keyids)
    assert result.second.signed.keys() == set(md.signed.roles[ROOT].keyids)
    assert result.first.signed.keys().isdisjoint(result.second.signed.keys())


def test_rotating_root_without_the_old_root_keys_is_refused() -> None:
    repo = initialized()
    new = [signer_for(generate_key())]
    with pytest.raises(ThresholdNotMetError):
        repo.change(
            wall_now(),
            lambda core: core.rotate(ROOT, [s.public_key for s in new], 1),
            signers={**repo.signers, ROOT: new},
        )
    assert versions(repo)[ROOT] == 1


# -- a stock client judges ----------------------------------------------------------------------


def test_stock_client_downloads_a_published_target(tmp_path: Path) -> None:
    repo = initialized()
    target = publish(repo, b"firmware bytes" * 100)
    client = updater(repo, tmp_path, trusted_root=repo.root_bytes())
    client.refresh()
    info = client.get_targetinfo(target.path)
    assert info is not None
    assert info.custom["version"] == "1.0.0"
    path = client.download_target(info)
    assert Path(path).read_bytes() == b"firmware bytes" * 100


@pytest.mark.parametrize("role", [ROOT, TARGETS, SNAPSHOT, TIMESTAMP])
def test_client_holding_root_v1_walks_to_root_v2_after_rotation(tmp_path: Path, role: str) -> None:
    repo = initialized(RoleKeys(2, 2))
    first = publish(repo, b"first image")
    client = updater(repo, tmp_path, trusted_root=repo.root_bytes(1))
    client.refresh()
    assert client.get_targetinfo(first.path) is not None

    rotate(repo, role, count=2, threshold=2)
    second = publish(repo, b"second image", "2.0.0")
    resumed = updater(repo, tmp_path, trusted_root=None)  # from its cache: root v1
    resumed.refresh()
    assert "2.root.json" in resumed._fetcher.fetched  # type: ignore[attr-defined]
    info = resumed.get_targetinfo(second.path)
    assert info is not None
    assert Path(resumed.download_target(info)).read_bytes() == b"second image"


def test_client_accepts_a_refreshed_timestamp(tmp_path: Path) -> None:
    repo = initialized()
    target = publish(repo, b"an image")
    client = updater(repo, tmp_path, trusted_root=repo.root_bytes())
    client.refresh()
    # Expiry moves forward from "now"; signing later than the wall clock is what the refresh
    # loop does as time passes.
    repo.change(wall_now() + timedelta(hours=13), lambda core: core.refresh_due())
    assert versions(repo)[TIMESTAMP] == 3
    resumed = updater(repo, tmp_path, trusted_root=None)
    resumed.refresh()
    assert resumed.get_targetinfo(target.path) is not None
