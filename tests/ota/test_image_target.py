"""Image facts: validation, the TUF target they become, and reading one back."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ota.errors import ArtifactInvalidError
from ota.image_target import ImageSpec, ImageTarget
from ota.policy import ExpiryPolicy, KeyPolicy, RoleKeys
from ota.settings import OtaSettings
from ota.tuf_api import TargetFile

SHA = "ab" * 32


def spec(**overrides: object) -> ImageSpec:
    fields: dict[str, object] = {
        "name": "tcu-fw",
        "version": "2.1.0",
        "hardware_ids": ("VW-GOLF-TCU-H1",),
        "release_counter": 7,
    }
    return ImageSpec(**{**fields, **overrides})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "../etc"),
        ("name", "a/b"),
        ("name", ""),
        ("name", "x" * 129),
        ("version", "1 0"),
        ("hardware_ids", ()),
        ("hardware_ids", ("A", "A")),
        ("hardware_ids", ("with space",)),
        ("release_counter", -1),
        ("release_counter", 2**31),
        ("release_counter", True),
        ("dependencies", ("tcu-fw-2.1.0",)),  # itself
        ("conflicts", ("x/y",)),
    ],
)
def test_invalid_facts_are_refused_with_their_field(field: str, value: object) -> None:
    with pytest.raises(ArtifactInvalidError) as caught:
        spec(**{field: value})
    assert caught.value.field == field
    assert caught.value.code == "artifact_invalid"


def test_a_dependency_cannot_also_be_a_conflict() -> None:
    with pytest.raises(ArtifactInvalidError):
        spec(dependencies=("bcm-1",), conflicts=("bcm-1",))


def test_target_round_trip_with_uptane_custom_fields() -> None:
    image = ImageTarget(spec(dependencies=("bcm-fw-1.4.0",), conflicts=("x-1",)), 1234, SHA)
    target = image.to_target_file()
    assert target.path == "tcu-fw-2.1.0"
    assert target.to_dict() == {
        "length": 1234,
        "hashes": {"sha256": SHA},
        "custom": {
            "name": "tcu-fw",
            "version": "2.1.0",
            "hardwareIds": ["VW-GOLF-TCU-H1"],
            "releaseCounter": 7,
            "dependencies": ["bcm-fw-1.4.0"],
            "conflicts": ["x-1"],
        },
    }
    assert (
        ImageTarget.from_target_file(TargetFile.from_dict(target.to_dict(), target.path)) == image
    )


@pytest.mark.parametrize(
    "custom",
    [
        None,
        {"name": "tcu-fw", "version": "2.1.0", "releaseCounter": 7},  # no hardware ids
        {"name": "tcu-fw", "version": "2.1.0", "hardwareIds": ["H"], "releaseCounter": "7"},
        {"name": "other", "version": "2.1.0", "hardwareIds": ["H"], "releaseCounter": 7},
    ],
)
def test_foreign_targets_are_refused(custom: object) -> None:
    fields = {} if custom is None else {"custom": custom}
    target = TargetFile(10, {"sha256": SHA}, "tcu-fw-2.1.0", fields)
    with pytest.raises(ArtifactInvalidError):
        ImageTarget.from_target_file(target)


def test_an_empty_image_or_a_bad_hash_is_refused() -> None:
    with pytest.raises(ArtifactInvalidError):
        ImageTarget(spec(), 0, SHA)
    with pytest.raises(ArtifactInvalidError):
        ImageTarget(spec(), 1, "AB" * 32)


def test_settings_refuse_incoherent_policies() -> None:
    with pytest.raises(ValidationError, match="ROOT_THRESHOLD"):
        OtaSettings(root_key_count=2, root_threshold=3)
    with pytest.raises(ValidationError, match="REFRESH_INTERVAL_S"):
        OtaSettings(timestamp_expiry_s=600, refresh_interval_s=300)
    settings = OtaSettings(root_key_count=3, root_threshold=2, timestamp_threshold=2)
    policy = KeyPolicy.from_settings(settings)
    assert policy.root == RoleKeys(3, 2)
    assert policy.timestamp == RoleKeys(2, 2)
    assert ExpiryPolicy.from_settings(settings).lifetime("timestamp").total_seconds() == 86_400


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETLINK_OTA_TIMESTAMP_EXPIRY_S", "7200")
    monkeypatch.setenv("FLEETLINK_OTA_MAX_ARTIFACT_BYTES", "1000")
    settings = OtaSettings()
    assert (settings.timestamp_expiry_s, settings.max_artifact_bytes) == (7200, 1000)
