"""The car's Uptane cross-checks (simulator/ota_client/verify.py), pure: verified director and
image targets in, the installs to make or a refusal with its code out."""

from __future__ import annotations

from typing import Any

import pytest

from simulator.ota_client.errors import UpdateRejectedError
from simulator.ota_client.tuf_names import TargetFile, Targets
from simulator.ota_client.verify import EcuState, InstalledImage, plan_installs

VIN = "WVWZZZ1JZXW000001"
HW = "VOLKSWAG-GOLF-TCU-H1"
SERIAL = "TCU-000001"
SHA = "ab" * 32
NONCE = "0f" * 16
ECUS = {SERIAL: EcuState(SERIAL, HW, InstalledImage("2.0.0", 2, "tcu-fw-2.0.0", "cd" * 32, 9))}


def image_targets(
    *,
    counter: int = 3,
    hardware_ids: tuple[str, ...] = (HW,),
    length: int = 100,
    sha: str = SHA,
    path: str = "tcu-fw-2.1.0",
) -> Targets:
    custom = {
        "name": "tcu-fw",
        "version": "2.1.0",
        "hardwareIds": list(hardware_ids),
        "releaseCounter": counter,
    }
    targets = Targets()
    targets.targets[path] = TargetFile(length, {"sha256": sha}, path, {"custom": custom})
    return targets


def director_targets(
    *,
    vin: str = VIN,
    nonce: str = NONCE,
    serial: str = SERIAL,
    hw: str = HW,
    counter: int = 3,
    length: int = 100,
    sha: str = SHA,
    path: str = "tcu-fw-2.1.0",
) -> Targets:
    custom: dict[str, Any] = {
        "name": "tcu-fw",
        "version": "2.1.0",
        "hardwareIds": [HW],
        "releaseCounter": counter,
        "ecuIdentifiers": {serial: {"hardwareId": hw}},
    }
    targets = Targets()
    targets.targets[path] = TargetFile(length, {"sha256": sha}, path, {"custom": custom})
    targets.unrecognized_fields["custom"] = {"vin": vin, "reportNonce": nonce}
    return targets


def refusal(director: Targets, image: Targets, nonces: list[str] | None = None) -> str:
    with pytest.raises(UpdateRejectedError) as caught:
        plan_installs(
            director, image, vin=VIN, ecus=ECUS, recent_nonces=[NONCE] if nonces is None else nonces
        )
    return caught.value.code


def test_director_and_image_repository_agreeing_make_one_install() -> None:
    (plan,) = plan_installs(
        director_targets(), image_targets(), vin=VIN, ecus=ECUS, recent_nonces=[NONCE]
    )
    assert (plan.ecu_serial, plan.version, plan.release_counter) == (SERIAL, "2.1.0", 3)
    assert plan.target.hashes == {"sha256": SHA}


def test_an_image_already_running_is_not_installed_again() -> None:
    running = {SERIAL: EcuState(SERIAL, HW, InstalledImage("2.1.0", 3, "tcu-fw-2.1.0", SHA, 100))}
    assert (
        plan_installs(
            director_targets(), image_targets(), vin=VIN, ecus=running, recent_nonces=[NONCE]
        )
        == []
    )


@pytest.mark.parametrize(
    ("director", "image", "code"),
    [
        (director_targets(vin="WVWZZZ1JZXW000002"), image_targets(), "director_vin_mismatch"),
        (director_targets(nonce="11" * 16), image_targets(), "director_nonce_unknown"),
        (director_targets(serial="BCM-1"), image_targets(), "director_ecu_unknown"),
        (director_targets(hw="OTHER-HW"), image_targets(), "hardware_id_mismatch"),
        (director_targets(), image_targets(hardware_ids=("OTHER-HW",)), "hardware_id_mismatch"),
        (director_targets(), image_targets(path="tcu-fw-9.9.9"), "image_not_in_image_repository"),
        (director_targets(length=101), image_targets(), "image_mismatch"),
        (director_targets(sha="ef" * 32), image_targets(), "image_mismatch"),
        (director_targets(counter=4), image_targets(), "image_mismatch"),
        (director_targets(counter=1), image_targets(counter=1), "release_counter_rollback"),
    ],
    ids=[
        "foreign-vin",
        "stale-nonce",
        "unknown-ecu",
        "director-hw",
        "image-hw",
        "missing-image",
        "length",
        "hash",
        "counter-disagrees",
        "counter-lower",
    ],
)
def test_refusals(director: Targets, image: Targets, code: str) -> None:
    assert refusal(director, image) == code


def test_an_equal_release_counter_is_allowed_and_a_car_that_never_reported_skips_the_nonce() -> (
    None
):
    equal = plan_installs(
        director_targets(counter=2), image_targets(counter=2), vin=VIN, ecus=ECUS, recent_nonces=[]
    )
    assert len(equal) == 1


def test_director_targets_may_not_delegate() -> None:
    from tuf.api._payload import Delegations

    director = director_targets()
    director.delegations = Delegations({}, roles={})
    assert refusal(director, image_targets()) == "metadata_invalid"
