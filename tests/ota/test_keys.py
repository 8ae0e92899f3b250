"""Key directories: 0600 files in a 0700 directory, one directory per trust level."""

from __future__ import annotations

from pathlib import Path

import pytest

from ota.ceremony import check_separate, offline_directory, online_directory
from ota.errors import KeyStoreError
from ota.keys import RETIRED_DIR, KeyDirectory, generate_key
from ota.policy import ROOT, TARGETS, TIMESTAMP


def test_keys_are_written_private_and_read_back(tmp_path: Path) -> None:
    keys = online_directory(tmp_path / "keys")
    signer = keys.add(TIMESTAMP, generate_key())
    files = list(keys.path.iterdir())
    assert [f.name for f in files] == [f"timestamp.{signer.public_key.keyid}.pem"]
    assert files[0].stat().st_mode & 0o777 == 0o600
    assert keys.path.stat().st_mode & 0o777 == 0o700
    loaded = keys.signers(TIMESTAMP)
    assert [s.public_key for s in loaded] == [signer.public_key]
    assert keys.signers(TARGETS) == []


def test_the_online_directory_never_takes_a_root_key(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError):
        online_directory(tmp_path / "keys").add(ROOT, generate_key())
    with pytest.raises(KeyStoreError):
        offline_directory(tmp_path / "offline").add(TIMESTAMP, generate_key())
    assert not (tmp_path / "keys").exists()


def test_keys_readable_by_others_are_refused(tmp_path: Path) -> None:
    keys = online_directory(tmp_path / "keys")
    keys.add(TIMESTAMP, generate_key())
    key_file = next(keys.path.iterdir())
    key_file.chmod(0o644)
    with pytest.raises(KeyStoreError, match="chmod 600"):
        keys.signers(TIMESTAMP)
    key_file.chmod(0o600)
    keys.path.chmod(0o755)
    with pytest.raises(KeyStoreError, match="chmod 700"):
        keys.signers(TIMESTAMP)


def test_a_renamed_key_file_is_refused(tmp_path: Path) -> None:
    keys = online_directory(tmp_path / "keys")
    keys.add(TIMESTAMP, generate_key())
    key_file = next(keys.path.iterdir())
    key_file.rename(keys.path / ("timestamp." + "0" * 64 + ".pem"))
    with pytest.raises(KeyStoreError, match="key id"):
        keys.signers(TIMESTAMP)


def test_passphrase_protected_root_keys(tmp_path: Path) -> None:
    locked = offline_directory(tmp_path / "offline", b"correct horse")
    signer = locked.add(ROOT, generate_key())
    assert b"ENCRYPTED" in next(locked.path.iterdir()).read_bytes()
    assert [s.public_key for s in locked.signers(ROOT)] == [signer.public_key]
    with pytest.raises(KeyStoreError):
        offline_directory(tmp_path / "offline", b"wrong").signers(ROOT)
    with pytest.raises(KeyStoreError):
        offline_directory(tmp_path / "offline").signers(ROOT)


def test_retired_keys_are_kept_but_never_loaded(tmp_path: Path) -> None:
    keys = online_directory(tmp_path / "keys")
    old = keys.add(TIMESTAMP, generate_key())
    new = keys.add(TIMESTAMP, generate_key())
    keys.retire(TIMESTAMP, [old.public_key.keyid])
    assert [s.public_key for s in keys.signers(TIMESTAMP)] == [new.public_key]
    assert (keys.path / RETIRED_DIR / f"timestamp.{old.public_key.keyid}.pem").exists()


def test_offline_directory_must_not_live_in_the_ota_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "ota"
    for inside in (data_dir, data_dir / "keys", data_dir / "root-keys"):
        with pytest.raises(KeyStoreError):
            check_separate(offline_directory(inside), data_dir)
    check_separate(offline_directory(tmp_path / "usb-stick"), data_dir)


def test_a_directory_holds_only_its_roles(tmp_path: Path) -> None:
    keys = KeyDirectory(tmp_path / "k", roles=(TARGETS,))
    with pytest.raises(KeyStoreError):
        keys.signers(TIMESTAMP)
