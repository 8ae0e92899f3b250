"""The artifact store and publishing against PostgreSQL: duplicates, release counters,
dependencies, idempotent publishing."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from ota.errors import (
    ArtifactContentMissingError,
    ArtifactExistsError,
    ArtifactNotFoundError,
    DependencyNotPublishedError,
    ReleaseCounterRollbackError,
)
from ota.image_target import ImageSpec
from ota.policy import SNAPSHOT, TARGETS, TIMESTAMP
from ota.tuf_api import Metadata, Targets
from tests.ota.conftest import OtaFixture, chunks_of
from tests.ota.memory_repository import wall_now

pytestmark = pytest.mark.integration

HW_A = "VW-GOLF-TCU-H1"
HW_B = "VW-POLO-TCU-H2"


def spec(
    version: str = "1.0.0",
    counter: int = 1,
    hardware: tuple[str, ...] = (HW_A,),
    name: str = "tcu-fw",
    depends: tuple[str, ...] = (),
) -> ImageSpec:
    return ImageSpec(name, version, hardware, counter, dependencies=depends)


async def upload(
    ota: OtaFixture, image: ImageSpec, content: bytes | None = None, now: datetime | None = None
) -> uuid.UUID:
    data = content if content is not None else f"{image.target_path}".encode() * 50
    artifact = await ota.service.artifacts.upload(image, chunks_of(data), now or wall_now())
    return artifact.id


async def test_upload_records_hash_length_and_facts(ota: OtaFixture) -> None:
    data = b"\x7fELF" + bytes(range(256)) * 40
    image = ImageSpec("tcu-fw", "1.0.0", (HW_A, HW_B), 4, ("bcm-fw-1.0.0",), ("tcu-old-0.9",))
    artifact_id = await upload(ota, image, data)
    stored = await ota.service.artifacts.get(artifact_id)
    assert stored is not None
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.length == len(data)
    assert stored.spec == image
    assert not stored.published
    assert ota.service.artifacts.files.path(stored.sha256).read_bytes() == data


async def test_duplicate_name_and_version_is_refused_before_reading_the_body(
    ota: OtaFixture,
) -> None:
    await upload(ota, spec())
    read = 0

    async def counted() -> AsyncIterator[bytes]:
        nonlocal read
        read += 1
        yield b"never stored"

    with pytest.raises(ArtifactExistsError) as caught:
        await ota.service.artifacts.upload(spec(), counted(), wall_now())
    assert (caught.value.name, caught.value.version) == ("tcu-fw", "1.0.0")
    assert read == 0


async def test_target_path_collision_is_a_duplicate(ota: OtaFixture) -> None:
    await upload(ota, ImageSpec("a-b", "1", (HW_A,), 1))
    with pytest.raises(ArtifactExistsError):
        await upload(ota, ImageSpec("a", "b-1", (HW_A,), 1))  # also "a-b-1"


async def test_concurrent_uploads_of_one_version_store_one_row(ota: OtaFixture) -> None:
    results = await asyncio.gather(
        upload(ota, spec(), b"first"), upload(ota, spec(), b"second"), return_exceptions=True
    )
    assert sum(isinstance(r, uuid.UUID) for r in results) == 1
    assert sum(isinstance(r, ArtifactExistsError) for r in results) == 1
    _, count = await ota.service.artifacts.page(limit=10, offset=0)
    assert count == 1


async def test_release_counter_below_a_published_one_is_refused(ota: OtaFixture) -> None:
    published = await upload(ota, spec("2.0.0", counter=5, hardware=(HW_A, HW_B)))
    await ota.service.publish(published, wall_now())
    with pytest.raises(ReleaseCounterRollbackError) as caught:
        await upload(ota, spec("1.9.0", counter=4, hardware=(HW_B,)))
    assert (caught.value.hardware_id, caught.value.published) == (HW_B, 5)
    # Equal counters are fine (Uptane refuses only lower), other hardware ids unaffected.
    await upload(ota, spec("2.0.1", counter=5))
    await upload(ota, spec("1.0.0", counter=1, hardware=("OTHER-HW",)))


async def test_unpublished_counters_do_not_block(ota: OtaFixture) -> None:
    await upload(ota, spec("3.0.0", counter=9))
    await upload(ota, spec("2.0.0", counter=2))


async def test_publishing_rechecks_the_counter_against_what_was_published_since(
    ota: OtaFixture,
) -> None:
    low = await upload(ota, spec("1.0.0", counter=1))
    high = await upload(ota, spec("2.0.0", counter=2))
    await ota.service.publish(high, wall_now())
    with pytest.raises(ReleaseCounterRollbackError):
        await ota.service.publish(low, wall_now())
    stored = await ota.service.artifacts.get(low)
    assert stored is not None and not stored.published


async def test_publish_lists_the_target_and_is_idempotent(ota: OtaFixture) -> None:
    artifact_id = await upload(ota, spec())
    published = await ota.service.publish(artifact_id, wall_now())
    assert published.published and published.targets_version == 2
    again = await ota.service.publish(artifact_id, wall_now())
    assert again == published
    current = await ota.service.repository.current()
    assert {r: current[r].version for r in (TARGETS, SNAPSHOT, TIMESTAMP)} == {
        TARGETS: 2,
        SNAPSHOT: 2,
        TIMESTAMP: 2,
    }
    targets = Metadata[Targets].from_bytes(current[TARGETS].body).signed
    listed = targets.targets["tcu-fw-1.0.0"]
    assert listed.hashes == {"sha256": published.sha256}
    assert listed.length == published.length
    images = await ota.service.repository.image_targets()
    assert images["tcu-fw-1.0.0"] == published.image_target()


async def test_dependencies_must_be_published_first(ota: OtaFixture) -> None:
    base = await upload(ota, spec(name="bcm-fw"))
    dependent = await upload(ota, spec(depends=("bcm-fw-1.0.0",)))
    with pytest.raises(DependencyNotPublishedError) as caught:
        await ota.service.publish(dependent, wall_now())
    assert caught.value.dependencies == ("bcm-fw-1.0.0",)
    await ota.service.publish(base, wall_now())
    assert (await ota.service.publish(dependent, wall_now())).published


async def test_publishing_an_unknown_artifact(ota: OtaFixture) -> None:
    with pytest.raises(ArtifactNotFoundError):
        await ota.service.publish(uuid.uuid4(), wall_now())


async def test_publishing_refuses_an_artifact_whose_file_vanished(ota: OtaFixture) -> None:
    artifact_id = await upload(ota, spec())
    stored = await ota.service.artifacts.get(artifact_id)
    assert stored is not None
    ota.service.artifacts.files.path(stored.sha256).unlink()
    with pytest.raises(ArtifactContentMissingError):
        await ota.service.publish(artifact_id, wall_now())
    assert (await ota.service.repository.current())[TARGETS].version == 1


async def test_concurrent_publishes_make_one_linear_history(ota: OtaFixture) -> None:
    ids = [await upload(ota, spec(f"1.0.{n}", counter=1)) for n in range(5)]
    await asyncio.gather(*(ota.service.publish(i, wall_now()) for i in ids))
    current = await ota.service.repository.current()
    assert current[TARGETS].version == 6
    assert current[TIMESTAMP].version == 6
    targets = Metadata[Targets].from_bytes(current[TARGETS].body).signed
    assert len(targets.targets) == 5
    stored = [await ota.service.artifacts.get(i) for i in ids]
    assert sorted(a.targets_version for a in stored if a and a.targets_version) == [2, 3, 4, 5, 6]


async def test_page_is_newest_first_with_a_total(ota: OtaFixture) -> None:
    start = wall_now()
    for n in range(3):
        await upload(ota, spec(f"1.0.{n}"), now=start + timedelta(seconds=n))
    first, count = await ota.service.artifacts.page(limit=2, offset=0)
    rest, _ = await ota.service.artifacts.page(limit=2, offset=2)
    assert count == 3
    assert [a.spec.version for a in first + rest] == ["1.0.2", "1.0.1", "1.0.0"]
