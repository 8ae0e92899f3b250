"""``fleetlink ota ...``: key ceremonies and publishing for administrators, without the API.

    fleetlink ota keys init --offline-dir DIR [--root-keys N --root-threshold M]
    fleetlink ota keys rotate ROLE --offline-dir DIR
    fleetlink ota director init --offline-dir DIR [--root-keys N --root-threshold M]
    fleetlink ota publish FILE --hardware-id HW [...] --version V --release-counter N
    fleetlink ota status

They act on FLEETLINK_DATABASE_URL and the online keys in FLEETLINK_OTA_DATA_DIR; the composition
root (``fleetlink.cli``) parses, passes the settings and a pool factory, and prints nothing
itself: errors are reported here as ``fleetlink: [code] message`` with exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ota.errors import KeyStoreError, OtaError
from ota.policy import TOP_LEVEL_ROLES

# Parsing stays light (`fleetlink --help` must not load python-tuf and asyncpg); running
# imports what it needs.
if TYPE_CHECKING:
    import asyncpg

    from ota.ceremony import CeremonyResult
    from ota.director_ceremony import DirectorInit
    from ota.service import OtaService
    from ota.settings import OtaSettings

EXIT_FAILED = 1
READ_CHUNK_BYTES = 1024 * 1024

PoolFactory = Callable[[], Awaitable["asyncpg.Pool"]]


def add_ota_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ota = commands.add_parser(
        "ota",
        help="OTA image repository and director: keys, publishing (FLEETLINK_DATABASE_URL)",
        description="Administer the TUF image repository served at /ota/image/. Online keys "
        "live in FLEETLINK_OTA_DATA_DIR/keys; root keys only in the --offline-dir you bring "
        "to a ceremony (see docs/ota.md).",
    )
    actions = ota.add_subparsers(dest="ota_command", required=True, metavar="ACTION")
    keys = actions.add_parser("keys", help="key ceremonies")
    key_actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")

    init = key_actions.add_parser(
        "init",
        help="create every role's keys and the first root, targets, snapshot and timestamp",
    )
    _offline_arguments(init)
    init.add_argument("--root-keys", type=int, default=None, help="root keys to create")
    init.add_argument("--root-threshold", type=int, default=None, help="root signatures needed")

    rotate_parser = key_actions.add_parser(
        "rotate",
        help="replace a role's keys: a new root signed by the old and new root keys",
        description="Every rotation writes a new root version, so every rotation needs the "
        "offline root keys (TUF spec 4.3: root lists each role's keys).",
    )
    rotate_parser.add_argument("role", choices=TOP_LEVEL_ROLES)
    _offline_arguments(rotate_parser)

    director = actions.add_parser("director", help="the Uptane director's key ceremony")
    director_actions = director.add_subparsers(
        dest="director_command", required=True, metavar="ACTION"
    )
    director_init = director_actions.add_parser(
        "init",
        help="create the director's keys and its first root (once per deployment)",
        description="The director's root keys go to --offline-dir, which must not be the "
        "image repository's (a compromise of one root must not give the other, Uptane 4.2); "
        "its online keys to FLEETLINK_OTA_DIRECTOR_KEYS_DIR (default "
        "FLEETLINK_OTA_DATA_DIR/director-keys), which every API process needs.",
    )
    _offline_arguments(director_init)
    director_init.add_argument("--root-keys", type=int, default=None, help="root keys to create")
    director_init.add_argument(
        "--root-threshold", type=int, default=None, help="root signatures needed"
    )

    publish = actions.add_parser(
        "publish", help="upload an image and publish it as a TUF target in one step"
    )
    publish.add_argument("file", type=Path)
    publish.add_argument("--name", default=None, help="image name (default: the file name)")
    publish.add_argument("--version", required=True, dest="image_version")
    publish.add_argument(
        "--hardware-id", action="append", required=True, help="ECU hardware id; repeatable"
    )
    publish.add_argument("--release-counter", type=int, required=True)
    publish.add_argument("--depends", action="append", default=[], help="target path; repeatable")
    publish.add_argument("--conflicts", action="append", default=[], help="target path; repeatable")

    actions.add_parser("status", help="versions and expiries of the current metadata")


def _offline_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--offline-dir",
        type=Path,
        required=True,
        help="the root keys' directory (removable media), never inside FLEETLINK_OTA_DATA_DIR",
    )
    parser.add_argument(
        "--passphrase-file",
        type=Path,
        default=None,
        help="encrypt (init) or decrypt (rotate) the root keys with this file's first line",
    )


async def run_ota_command(
    args: argparse.Namespace, *, settings: OtaSettings, open_pool: PoolFactory, out: TextIO
) -> int:
    from ota.service import OtaService

    pool = await open_pool()
    try:
        service = OtaService(pool, settings)
        if args.ota_command == "director":
            return await _init_director(args, pool, service, out)
        return await _run(args, service, out)
    except OtaError as exc:
        print(f"fleetlink: [{exc.code}] {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await pool.close()


async def _run(args: argparse.Namespace, service: OtaService, out: TextIO) -> int:
    from ota.ceremony import check_separate, initialize, offline_directory, online_directory
    from ota.ceremony import rotate as rotate_keys
    from ota.errors import ArtifactInvalidError, RepositoryNotInitializedError
    from ota.image_target import ImageSpec
    from ota.policy import KeyPolicy, RoleKeys

    settings = service.settings
    now = service.now()
    if args.ota_command == "keys":
        offline = offline_directory(args.offline_dir, _passphrase(args.passphrase_file))
        check_separate(offline, settings.data_dir)
        online = online_directory(settings.keys_dir)
        if args.keys_command == "init":
            root = RoleKeys(
                args.root_keys or settings.root_key_count,
                args.root_threshold or settings.root_threshold,
            )
            policy = KeyPolicy.from_settings(settings, root=root)
            result = await initialize(service.repository, online, offline, policy, now)
        else:
            policy = KeyPolicy.from_settings(settings)
            result = await rotate_keys(
                service.repository, online, offline, role=args.role, policy=policy, now=now
            )
        _print_keys(result, out)
        return 0
    if args.ota_command == "publish":
        if not await service.repository.current():
            raise RepositoryNotInitializedError(
                "the image repository has no metadata yet; run `fleetlink ota keys init`"
            )
        if not args.file.is_file():
            raise ArtifactInvalidError(f"{args.file} is not a file", field="file", value=args.file)
        spec = ImageSpec(
            name=args.name or args.file.name,
            version=args.image_version,
            hardware_ids=tuple(args.hardware_id),
            release_counter=args.release_counter,
            dependencies=tuple(args.depends),
            conflicts=tuple(args.conflicts),
        )
        artifact = await service.artifacts.upload(spec, _read_chunks(args.file), now)
        artifact = await service.publish(artifact.id, now)
        print(
            f"published {artifact.target_path} ({artifact.length} bytes, sha256 "
            f"{artifact.sha256}) in targets v{artifact.targets_version}; artifact {artifact.id}",
            file=out,
        )
        return 0
    assert args.ota_command == "status"
    for role, stored in sorted((await service.repository.current()).items()):
        print(f"{role:<10} v{stored.version:<6} expires {stored.expires.isoformat()}", file=out)
    return 0


async def _init_director(
    args: argparse.Namespace, pool: asyncpg.Pool, service: OtaService, out: TextIO
) -> int:
    from ota.ceremony import check_separate, offline_directory
    from ota.director import Director
    from ota.director_ceremony import initialize_director, online_director_directory
    from ota.director_settings import DirectorSettings
    from ota.policy import KeyPolicy, RoleKeys

    assert args.director_command == "init"
    settings = service.settings
    offline = offline_directory(args.offline_dir, _passphrase(args.passphrase_file))
    check_separate(offline, settings.data_dir)
    if offline.exists() and any(offline.path.glob("root.*")):
        raise KeyStoreError(
            f"{offline.path} already holds root keys (the image repository's?): the director's "
            "root keys need a directory of their own (Uptane 4.2)",
            path=str(offline.path),
        )
    director_settings = DirectorSettings()
    # One online key per role: the director signs for every car as it asks, so its online
    # roles cannot wait for a second signer.
    single = RoleKeys(1, 1)
    root = RoleKeys(
        args.root_keys or settings.root_key_count, args.root_threshold or settings.root_threshold
    )
    result = await initialize_director(
        Director.from_settings(pool, settings, director_settings),
        online_director_directory(director_settings.keys_path(settings)),
        offline,
        KeyPolicy(root=root, targets=single, snapshot=single, timestamp=single),
        service.now(),
    )
    _print_keys(result, out)
    return 0


def _print_keys(result: CeremonyResult | DirectorInit, out: TextIO) -> None:
    print(f"root v{result.root_version} stored; keys per role:", file=out)
    for role, keyids in result.keyids.items():
        print(f"  {role:<10} {', '.join(k[:16] for k in keyids)}", file=out)


def _passphrase(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        first_line = path.read_bytes().splitlines()[:1]
    except OSError as exc:
        raise KeyStoreError(f"cannot read {path}: {exc}", path=str(path)) from exc
    if not first_line or not first_line[0]:
        raise KeyStoreError(f"{path} holds no passphrase", path=str(path))
    return first_line[0]


async def _read_chunks(path: Path) -> AsyncIterator[bytes]:
    source = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(source.read, READ_CHUNK_BYTES):
            yield chunk
    finally:
        source.close()
