"""``fleetlink ota ...`` end to end through ``fleetlink.cli.main``: init with a 2-of-3
passphrase-protected root, publish, rotate, status, and the refusals."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import asyncpg
import pytest

from fleetlink.cli import main
from ota.director import Director
from ota.policy import ROOT, TARGETS, TIMESTAMP
from ota.service import OtaService
from ota.settings import OtaSettings
from ota.tuf_api import Metadata, Root, Targets

pytestmark = pytest.mark.integration


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> Path:
    data_dir = tmp_path / "ota"
    monkeypatch.setenv("FLEETLINK_DATABASE_URL", database_url)
    monkeypatch.setenv("FLEETLINK_OTA_DATA_DIR", str(data_dir))
    return data_dir


async def fleetlink(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = await asyncio.to_thread(main, list(argv), out)
    return code, out.getvalue()


async def test_keys_publish_rotate_status(
    env: Path, tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    offline = tmp_path / "usb"
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("correct horse battery staple\n")
    secret = ("--offline-dir", str(offline), "--passphrase-file", str(passphrase))

    code, out = await fleetlink(
        "ota", "keys", "init", *secret, "--root-keys", "3", "--root-threshold", "2"
    )
    assert code == 0, capsys.readouterr().err
    assert "root v1 stored" in out
    root_files = sorted(offline.glob("root.*.pem"))
    assert len(root_files) == 3
    assert all(b"ENCRYPTED" in f.read_bytes() for f in root_files)
    assert not await asyncio.to_thread(lambda: list(env.rglob("root.*.pem")))

    image = tmp_path / "tcu-fw.bin"
    image.write_bytes(b"\x01\x02" * 5000)
    publish = ("ota", "publish", str(image), "--hardware-id", "VW-GOLF-TCU-H1", "--version")
    code, out = await fleetlink(*publish, "1.0.0", "--release-counter", "3")
    assert code == 0, capsys.readouterr().err
    assert "published tcu-fw.bin-1.0.0 (10000 bytes" in out

    code, _ = await fleetlink(*publish, "0.9.0", "--release-counter", "2")
    assert code == 1
    assert "[release_counter_rollback]" in capsys.readouterr().err

    code, out = await fleetlink("ota", "keys", "rotate", "timestamp", *secret)
    assert code == 0, capsys.readouterr().err
    assert "root v2 stored" in out

    code, out = await fleetlink("ota", "status")
    assert code == 0
    assert "root       v2" in out
    assert "timestamp  v3" in out

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        repository = OtaService(pool, OtaSettings(data_dir=env)).repository
        root_body = await repository.metadata(ROOT, 2)
        targets_body = await repository.metadata(TARGETS)
    finally:
        await pool.close()
    assert root_body is not None and targets_body is not None
    root = Metadata[Root].from_bytes(root_body).signed
    assert (len(root.roles[ROOT].keyids), root.roles[ROOT].threshold) == (3, 2)
    assert len(root.roles[TIMESTAMP].keyids) == 1
    assert list(Metadata[Targets].from_bytes(targets_body).signed.targets) == ["tcu-fw.bin-1.0.0"]


async def test_refusals(env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "fw.bin"
    image.write_bytes(b"x")
    code, _ = await fleetlink(
        "ota",
        "publish",
        str(image),
        "--hardware-id",
        "HW",
        "--version",
        "1",
        "--release-counter",
        "1",
    )
    assert code == 1
    assert "[repository_not_initialized]" in capsys.readouterr().err

    code, _ = await fleetlink("ota", "keys", "init", "--offline-dir", str(env / "root-keys"))
    assert code == 1
    assert "[key_store_invalid]" in capsys.readouterr().err

    offline = ("--offline-dir", str(tmp_path / "usb"))
    assert (await fleetlink("ota", "keys", "init", *offline))[0] == 0
    code, _ = await fleetlink("ota", "keys", "init", *offline)
    assert code == 1
    assert "[repository_already_initialized]" in capsys.readouterr().err

    code, _ = await fleetlink(
        "ota", "keys", "rotate", "root", "--offline-dir", str(tmp_path / "empty")
    )
    assert code == 1
    assert "[threshold_not_met]" in capsys.readouterr().err


async def test_director_init(
    env: Path, tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    image_offline = ("--offline-dir", str(tmp_path / "image-usb"))
    assert (await fleetlink("ota", "keys", "init", *image_offline))[0] == 0
    # The image repository's root directory is refused: one compromise must not give both.
    code, _ = await fleetlink("ota", "director", "init", *image_offline)
    assert code == 1
    assert "[key_store_invalid]" in capsys.readouterr().err

    offline = tmp_path / "director-usb"
    director = ("ota", "director", "init", "--offline-dir", str(offline))
    code, out = await fleetlink(*director, "--root-keys", "3", "--root-threshold", "2")
    assert code == 0, capsys.readouterr().err
    assert "root v1 stored" in out
    assert len(list(offline.glob("root.*.pem"))) == 3
    online = sorted(p.name.split(".")[0] for p in (env / "director-keys").glob("*.pem"))
    assert online == ["snapshot", "targets", "timestamp"]

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        stored = await Director.from_settings(pool, OtaSettings(data_dir=env)).root()
    finally:
        await pool.close()
    assert stored is not None
    root = Metadata[Root].from_bytes(stored.body).signed
    assert len(root.roles[ROOT].keyids) == 3 and root.roles[ROOT].threshold == 2

    code, _ = await fleetlink(*director[:3], "--offline-dir", str(tmp_path / "other-usb"))
    assert code == 1
    assert "[director_already_initialized]" in capsys.readouterr().err
